import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, FerryError, RetryableError } from '../errors/index.js';
import { defineSink, type SinkPlugin } from '../plugin/define.js';
import { SINKS } from '../registry.js';
import { formatProblem, loadConfig } from './load-config.js';
import { entryPath, locatePluginError } from './plugin-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-plugin-problems-'));
let n = 0;
function write(text: string): string {
  const file = join(dir, `ferry-${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** A file-drop pipeline; `source` is the YAML of its source fields (4-space indented), from line 8 on. */
const config = (source: string, sinks = '      - { name: out, type: stdout }') => `agent:
  id: test-host
queue:
  redis: "redis://127.0.0.1:6379"
pipelines:
  - name: orders
    source:
      type: file-drop
${source}
    mappings: [m.yaml]
    sinks:
${sinks}
`;

async function problems(file: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const err = await loadConfig(file, { env }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return (err as ConfigError).problems.map(formatProblem);
}

// A sink whose constructor refuses a value its schema allows, and counts what was created and closed.
let created = 0;
let closed = 0;
const strictSink = defineSink({
  type: 'strict-probe',
  summary: 'test only',
  config: Type.Object({ name: Type.String(), type: Type.Literal('strict-probe'), mode: Type.String({ description: 'a or b' }) }, { additionalProperties: false }),
  create: (config) => {
    if (config.mode !== 'a' && config.mode !== 'b') throw new FerryError('FERRY_CONFIG_INVALID', `mode "${config.mode}" is neither a nor b`, { where: 'sink.mode', fix: 'Set mode: a or mode: b.' });
    created++;
    return {
      open: async () => {},
      write: async () => {},
      close: async () => {
        closed++;
      },
    };
  },
});

describe('plugin validation during config loading', () => {
  beforeAll(() => (SINKS as SinkPlugin[]).push(strictSink as unknown as SinkPlugin));
  afterAll(() => {
    (SINKS as SinkPlugin[]).splice(SINKS.indexOf(strictSink as unknown as SinkPlugin), 1);
  });

  it('locates a file-drop encoding only the plugin knows to its line, with the full path and how to find a valid one', async () => {
    const file = write(config('      path: ./inbox\n      format: { type: csv, encoding: klingon }'));
    const lines = await problems(file);
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`^${file}:10:38  pipelines\\[0\\]\\.source\\.format\\.encoding: unknown encoding "klingon" — use a name iconv-lite knows, e\\.g\\. utf-8, windows-1252.*Supported-Encodings`),
      ),
    ]);
  });

  it('suggests the nearest encoding for a typo', async () => {
    const lines = await problems(write(config('      path: ./inbox\n      format:\n        type: jsonl\n        encoding: window-1252')));
    expect(lines).toEqual([expect.stringMatching(/:12:19  pipelines\[0\]\.source\.format\.encoding: unknown encoding "window-1252" \(did you mean `windows1252`\?\)/)]);
  });

  it('lists the plugin problems beside the schema problems, and every one of them', async () => {
    const lines = await problems(write(config('      path: ./inbox\n      pattern: "*.{csv"\n      format: { type: csv, encoding: klingon }\n      batchSize: 0')));
    // batchSize fails the schema: the plugin does not judge an entry its schema refused.
    expect(lines).toEqual([expect.stringMatching(/:12:18  pipelines\[0\]\.source\.batchSize: /)]);
    const both = await problems(write(config('      path: ./inbox\n      pattern: "*.{csv"\n      format: { type: csv, encoding: klingon }', '      - { name: out, type: stdout, pretty: maybe }')));
    expect(both).toEqual([
      expect.stringMatching(/:10:16  pipelines\[0\]\.source\.pattern: unclosed "\{" in glob "\*\.\{csv" — close every/),
      expect.stringMatching(/:11:38  pipelines\[0\]\.source\.format\.encoding: unknown encoding "klingon"/),
      expect.stringMatching(/:14:44  pipelines\[0\]\.sinks\[0\]\.pretty: expected boolean/),
    ]);
  });

  it('runs a plugin constructor that checks its config, and closes what it created', async () => {
    const sinks = '      - { name: a, type: strict-probe, mode: a }\n      - { name: c, type: strict-probe, mode: c }';
    const before = { created, closed };
    const lines = await problems(write(config('      path: ./inbox\n      format: { type: jsonl }', sinks)));
    expect(lines).toEqual([expect.stringMatching(/:14:46  pipelines\[0\]\.sinks\[1\]\.mode: mode "c" is neither a nor b — Set mode: a or mode: b\./)]);
    expect(created - before.created).toBe(1);
    expect(closed - before.closed).toBe(1);
  });

  it('accepts a config every plugin is happy with', async () => {
    const loaded = await loadConfig(write(config('      path: ./inbox\n      format: { type: csv, encoding: CP850 }')), { env: {} });
    expect(loaded.pipelines[0]!.source).toMatchObject({ type: 'file-drop', format: { encoding: 'CP850' } });
  });

  it('never quotes a resolved secret in a plugin message', async () => {
    const lines = await problems(write(config('      path: ./inbox\n      format: { type: csv, encoding: "${env:ENC}" }')), { ENC: 'topsecret-encoding' });
    expect(lines).toEqual([expect.stringMatching(/pipelines\[0\]\.source\.format\.encoding: unknown encoding "\[redacted\]"/)]);
    expect(lines.join('\n')).not.toContain('topsecret');
  });
});

describe('locatePluginError', () => {
  it('reads the field a plugin names in any of its spellings', () => {
    const entry = { tables: ['shop.a', 'shop.b'], views: [{ name: 'v1' }, { name: 'v2', cursor: ['x'] }], format: { encoding: 'x' } };
    expect(entryPath('source.format.encoding', entry, true)).toEqual(['format', 'encoding']);
    expect(entryPath('pipelines[3].source.tables[1]', entry, true)).toEqual(['tables', 1]);
    expect(entryPath('source.views (v2).cursor', entry, true)).toEqual(['views', 1, 'cursor']);
    expect(entryPath('sink.url', entry, true)).toEqual(['url']);
    expect(entryPath('source', entry, true)).toEqual([]);
    expect(entryPath('tables', entry, false)).toEqual(['tables']);
    expect(entryPath('tables', entry, true)).toBeUndefined();
    expect(entryPath('postgres://127.0.0.1:5432/shop slot s tables', entry, false)).toEqual(['tables']);
    expect(entryPath('binlog mysql-bin.000042:4', entry, false)).toBeUndefined();
    expect(entryPath('source.connection', entry, true)).toEqual(['connection']);
  });

  it('rewrites a ConfigError that names ferry.yaml and a source field to the file, line and pipeline, keeping what is not about the entry', async () => {
    const file = write(config('      path: ./inbox\n      format:\n        type: csv\n        columns: [KUNDE_NR, NAME, STATUS]'));
    const loaded = await loadConfig(file, { env: {} });
    const mapping = { file: 'mappings/x.yaml', line: 3, field: 'key', message: 'kept' };
    const err = new ConfigError([mapping, { file: 'ferry.yaml', field: 'source.format.columns', message: 'column NAME is not in the file' }]);
    const located = locatePluginError(loaded, err, ['pipelines', 0, 'source']) as ConfigError;
    expect(located).toBeInstanceOf(ConfigError);
    expect(located.problems).toEqual([mapping, { file, line: 12, column: 29, field: 'pipelines[0].source.format.columns[1]', message: 'column NAME is not in the file' }]);
    // Naming no single item, the list as a whole.
    const whole = locatePluginError(loaded, new ConfigError([{ file: 'ferry.yaml', field: 'source.format.columns', message: 'too few' }]), ['pipelines', 0, 'source']) as ConfigError;
    expect(whole.problems[0]).toMatchObject({ line: 12, column: 18, field: 'pipelines[0].source.format.columns' });
  });

  it('turns FERRY_CONFIG_INVALID into a located ConfigError, gives other plain FerryErrors the line, and leaves retryable ones', async () => {
    const file = write(config('      path: ./inbox\n      format: { type: jsonl }'));
    const loaded = await loadConfig(file, { env: {} });
    const invalid = locatePluginError(loaded, new FerryError('FERRY_CONFIG_INVALID', 'bad path', { where: 'source.path', fix: 'Use another.' }), ['pipelines', 0, 'source']) as ConfigError;
    expect(invalid.problems).toEqual([{ file, line: 9, column: 13, field: 'pipelines[0].source.path', message: 'bad path — Use another.' }]);
    const other = locatePluginError(loaded, new FerryError('FERRY_PREFLIGHT_FAILED', 'no binlog', { where: 'source.path' }), ['pipelines', 0, 'source']) as FerryError;
    expect(other.code).toBe('FERRY_PREFLIGHT_FAILED');
    expect(other.where).toBe(`${file}:9:13 (pipelines[0].source.path)`);
    const retryable = new RetryableError('later', { where: 'source.path', code: 'FERRY_SOURCE_UNAVAILABLE' });
    expect(locatePluginError(loaded, retryable, ['pipelines', 0, 'source'])).toBe(retryable);
    const plain = new Error('bug');
    expect(locatePluginError(loaded, plain, ['pipelines', 0, 'source'])).toBe(plain);
  });

  it('reads the file again for a config that crossed a thread (a structured clone)', async () => {
    const file = write(config('      path: ./inbox\n      format: { type: jsonl }'));
    const clone = structuredClone(await loadConfig(file, { env: {} }));
    const located = locatePluginError(clone, new ConfigError([{ file: 'ferry.yaml', field: 'sinks[0].name', message: 'taken' }]), ['pipelines', 0, 'sinks', 0]) as ConfigError;
    expect(located.problems[0]).toMatchObject({ line: 13, field: 'pipelines[0].sinks[0].name' });
  });
});
