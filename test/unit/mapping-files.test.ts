import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadMappings } from '../../agent/mapping/load-mappings.js';
import type { MapOutcome } from '../../agent/mapping/types.js';
import type { SourceRecord } from '../../agent/plugin/source.js';

/**
 * Runs every `mappings/*.test.yaml`: each names a mapping and lists cases, a
 * source record and what it must become. Adding a mapping test is adding a
 * YAML file; nothing here changes. See docs/mappings.md, "Testing a mapping".
 */

const Fields = Type.Record(Type.String(), Type.Unknown());
const CaseSchema = Type.Object(
  {
    name: Type.String(),
    record: Type.Object(
      {
        origin: Type.Object({ file: Type.Optional(Type.String()), table: Type.Optional(Type.String()), script: Type.Optional(Type.String()) }, { additionalProperties: false, minProperties: 1, maxProperties: 1 }),
        op: Type.Optional(Type.Union([Type.Literal('c'), Type.Literal('u'), Type.Literal('d'), Type.Literal('r'), Type.Literal('t')])),
        data: Type.Optional(Fields),
        before: Type.Optional(Fields),
        unchanged: Type.Optional(Type.Array(Type.String())),
        changeId: Type.Optional(Type.String()),
        time: Type.Optional(Type.String()),
        position: Type.Optional(Type.String()),
      },
      { additionalProperties: false },
    ),
    expect: Type.Object(
      {
        event: Type.Optional(Fields),
        violations: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }, { additionalProperties: false }))),
        filtered: Type.Optional(Type.Literal(true)),
        noMatch: Type.Optional(Type.Literal(true)),
      },
      { additionalProperties: false, minProperties: 1, maxProperties: 1 },
    ),
  },
  { additionalProperties: false },
);
const TestFileSchema = Type.Object(
  { mapping: Type.String(), pipeline: Type.Optional(Type.String()), agent: Type.Optional(Type.String()), cases: Type.Array(CaseSchema, { minItems: 1 }) },
  { additionalProperties: false },
);
type TestCase = Static<typeof CaseSchema>;
type TestFile = Static<typeof TestFileSchema>;

const validate = new Ajv({ allErrors: true }).compile(TestFileSchema);
const dir = path.resolve(import.meta.dirname, '../../mappings');
const files = readdirSync(dir).filter((f) => f.endsWith('.test.yaml'));

function toRecord(c: TestCase, index: number, file: string): SourceRecord {
  const [kind, name] = Object.entries(c.record.origin)[0] as [SourceRecord['origin']['kind'], string];
  const position = c.record.position ?? `${file}#${index + 1}`;
  return {
    origin: { kind, name },
    op: c.record.op ?? 'c',
    data: c.record.data ?? {},
    ...(c.record.before ? { before: c.record.before } : {}),
    ...(c.record.unchanged ? { unchanged: c.record.unchanged } : {}),
    changeId: c.record.changeId ?? position,
    time: c.record.time ?? '2024-01-31T12:00:00.000Z',
    location: `${file} case ${index + 1}`,
    position,
  };
}

function check(outcomes: MapOutcome[], want: TestCase['expect']): void {
  expect(outcomes).toHaveLength(1);
  const out = outcomes[0]!;
  if (want.event) {
    expect(out.kind === 'violation' ? out.violations : out.kind).toBe('event');
    if (out.kind !== 'event') return;
    expect(out.event).toMatchObject(want.event);
    // Data is compared exactly: a field the mapping adds by mistake must fail.
    if (want.event.data !== undefined) expect(out.event.data).toEqual(want.event.data);
  } else if (want.violations) {
    expect(out).toMatchObject({ kind: 'violation', code: 'FERRY_CONTRACT_VIOLATION' });
    expect(out.kind === 'violation' && out.violations).toEqual(want.violations);
  } else if (want.filtered) {
    expect(out.kind).toBe('filtered');
  } else if (want.noMatch) {
    expect(out).toMatchObject({ kind: 'violation', code: 'FERRY_MAPPING_NO_MATCH' });
  }
}

it('finds the mapping tests', () => {
  expect(files).toContain('customers.test.yaml');
});

for (const file of files) {
  describe(`mappings/${file}`, () => {
    const spec = parse(readFileSync(path.join(dir, file), 'utf8')) as unknown;
    it('is a valid mapping test file', () => {
      expect(validate(spec) ? [] : validate.errors).toEqual([]);
    });
    if (!validate(spec)) return;
    const { mapping, pipeline = 'test', agent = 'test-agent', cases } = spec as TestFile;
    const set = loadMappings([mapping], { pipeline, agentId: agent, baseDir: dir });
    cases.forEach((c, i) => {
      it(c.name, async () => {
        check((await set).apply(toRecord(c, i, file)), c.expect);
      });
    });
  });
}
