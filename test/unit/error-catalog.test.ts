import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode } from '../../agent/errors/codes.js';

/**
 * docs/errors.md and agent/errors/codes.ts list the same codes (as fastify
 * holds lib/errors.js against its docs): a code users can see must be
 * explained, and the docs must not explain codes that no longer exist.
 */
const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
const sections = new Map(
  doc
    .split(/^(?=## )/m)
    .filter((s) => s.startsWith('## '))
    .map((s) => [s.slice(3, s.indexOf('\n')).trim(), s] as const),
);
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('error catalog (docs/errors.md)', () => {
  it('has a `## CODE` section for every code in agent/errors/codes.ts', () => {
    const missing = codes.filter((c) => !sections.has(c));
    expect(missing, `add a "## CODE" section to docs/errors.md for: ${missing.join(', ')}`).toEqual([]);
  });

  it('has no section for a code that does not exist', () => {
    const unknown = [...sections.keys()].filter((h) => !(h in ERROR_CODES));
    expect(unknown, `docs/errors.md has sections for codes missing from agent/errors/codes.ts: ${unknown.join(', ')}`).toEqual([]);
  });

  it('states the right exit code in every section', () => {
    const wrong = codes.filter((c) => sections.has(c) && !new RegExp(`^Exit code: ${ERROR_CODES[c].exit}\\b`, 'm').test(sections.get(c)!));
    expect(wrong, `these sections lack "Exit code: N." matching codes.ts: ${wrong.join(', ')}`).toEqual([]);
  });

  it('lists each code once', () => {
    const headings = doc.match(/^## .*/gm) ?? [];
    expect(headings.length).toBe(sections.size);
  });
});
