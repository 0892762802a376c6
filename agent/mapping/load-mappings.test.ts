import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors/index.js';
import type { SourceRecord } from '../plugin/source.js';
import { loadMappings } from './load-mappings.js';
import type { MapOutcome } from './types.js';

const repo = path.resolve(import.meta.dirname, '../..');
const ctx = { pipeline: 'customers', agentId: 'demo-host', baseDir: repo };

function record(data: Record<string, unknown>, extra: Partial<SourceRecord> = {}): SourceRecord {
  return { origin: { kind: 'file', name: 'kunden_2024-01-31.csv' }, op: 'c', data, changeId: 'sha256:abc:2', time: '2024-01-31T10:00:00.000Z', location: 'kunden_2024-01-31.csv line 2', position: 'kunden_2024-01-31.csv:2', ...extra };
}

const good = { KUNDE_NR: '10001', VORNAME: ' Jürgen ', NACHNAME: 'Straßer', EMAIL: ' Juergen.Strasser@Example.DE ', SALDO: '1234,50', KUNDE_SEIT: '31.01.2024', STATUS: 'A' };

function only(outcomes: MapOutcome[]): MapOutcome {
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

/** A temporary config folder with the given files. */
async function folder(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-mapping-'));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

const contract = JSON.stringify({ type: 'object', required: ['id'], properties: { id: { type: 'string' }, n: { type: ['integer', 'null'], minimum: 0 } } });

describe('the reference mapping (mappings/customers.yaml)', () => {
  it('maps a legacy row to a customer/v1 CloudEvent', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    const out = only(set.apply(record(good)));
    expect(out).toEqual({
      kind: 'event',
      event: {
        specversion: '1.0',
        id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
        source: 'ferry://demo-host/customers',
        type: 'customer.created',
        subject: '10001',
        time: '2024-01-31T10:00:00.000Z',
        dataschema: 'urn:ferry:contract:customer:v1',
        datacontenttype: 'application/json',
        data: { id: '10001', name: 'Jürgen Straßer', email: 'juergen.strasser@example.de', balance: '1234.50', since: '2024-01-31', status: 'active', origin: 'legacy-erp' },
        ferryop: 'c',
        ferryposition: 'kunden_2024-01-31.csv:2',
        ferrypipeline: 'customers',
      },
    });
  });

  it('gives byte-identical events for the same record, and different ids for different changes', async () => {
    const a = await loadMappings(['mappings/customers.yaml'], ctx);
    const b = await loadMappings(['mappings/customers.yaml'], ctx);
    const first = JSON.stringify(a.apply(record(good)));
    expect(JSON.stringify(b.apply(record(good)))).toBe(first);
    expect(JSON.stringify(a.apply(record(good)))).toBe(first);
    const other = only(a.apply(record(good, { changeId: 'sha256:abc:3' })));
    const same = only(a.apply(record(good)));
    expect(other.kind === 'event' && same.kind === 'event' && other.event.id !== same.event.id).toBe(true);
  });

  it('filters records the filter excludes', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    expect(set.apply(record({ ...good, STATUS: 'D' }))).toEqual([{ kind: 'filtered', mapping: 'mappings/customers.yaml' }]);
  });

  it('lists every cast and contract violation of a record at once', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    const rec = record({ VORNAME: 'A', EMAIL: 'not-an-email', SALDO: '12,3,4', KUNDE_SEIT: '31.02.2024', STATUS: 'X' });
    const out = only(set.apply(rec));
    expect(out).toEqual({
      kind: 'violation',
      code: 'FERRY_CONTRACT_VIOLATION',
      mapping: 'mappings/customers.yaml',
      contract: 'customer/v1',
      record: rec,
      violations: [
        { field: 'id', message: 'is required, but KUNDE_NR is missing' },
        { field: 'balance', message: '"12,3,4" is not a decimal number (decimal separator ",")' },
        { field: 'since', message: '"31.02.2024" is not a valid date in format dd.MM.yyyy' },
        { field: 'email', message: '"not-an-email" is not a valid email' },
        { field: 'status', message: '"unknown" is not one of "active", "inactive"' },
      ],
    });
  });

  it('reports a missing required key', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    const out = only(set.apply(record({ ...good, KUNDE_NR: '' })));
    expect(out.kind === 'violation' && out.violations).toEqual([{ field: 'id', message: 'is required, but KUNDE_NR is empty' }]);
  });

  it('emits a delete with the key and what the before-image has, checking only the key', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    const out = only(set.apply(record({}, { op: 'd', before: { KUNDE_NR: '10001', KUNDE_SEIT: 'garbage' } })));
    expect(out.kind === 'event' && out.event).toMatchObject({ type: 'customer.deleted', subject: '10001', ferryop: 'd', data: { id: '10001' } });
    expect(out.kind === 'event' && Object.keys(out.event.data)).toEqual(['id']);
    const noKey = only(set.apply(record({ VORNAME: 'x' }, { op: 'd' })));
    expect(noKey.kind === 'violation' && noKey.violations).toEqual([{ field: 'id', message: 'key field is missing from the delete (no before-image value)' }]);
  });

  it('passes a truncate through with empty data and the table as subject', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    const out = only(set.apply(record({}, { op: 't' })));
    expect(out.kind === 'event' && out.event).toMatchObject({ type: 'customer.truncated', subject: 'kunden_2024-01-31.csv', data: {}, ferryop: 't' });
  });

  it('names the types of updates and snapshots', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    for (const [op, type] of [['u', 'customer.updated'], ['r', 'customer.snapshot']] as const) {
      const out = only(set.apply(record(good, { op })));
      expect(out.kind === 'event' && out.event.type).toBe(type);
    }
  });

  it('says when no mapping matches, and turns an unreadable record into a violation', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], ctx);
    expect(set.apply(record(good, { origin: { kind: 'file', name: 'orders_1.csv' } }))).toEqual([
      { kind: 'violation', code: 'FERRY_MAPPING_NO_MATCH', violations: [{ field: 'origin', message: 'no mapping matches file "orders_1.csv" (mappings: mappings/customers.yaml)' }], record: expect.anything() },
    ]);
    expect(set.apply(record(good, { origin: { kind: 'table', name: 'kunden_1.csv' } }))[0]).toMatchObject({ code: 'FERRY_MAPPING_NO_MATCH' });
    expect(set.apply(record(good, { origin: { kind: 'file', name: '/in/sub/kunden_9.csv' } }))[0]).toMatchObject({ kind: 'event' });
    const bad = only(set.apply(record({ _raw: 'x;y' }, { invalid: 'unterminated quote' })));
    expect(bad).toMatchObject({ kind: 'violation', violations: [{ field: '_record', message: 'the source could not read this record: unterminated quote' }] });
  });
});

describe('every option of a field', () => {
  it('joins, trims, cases, maps, defaults, nullIfs and casts', async () => {
    const dir = await folder({
      'c.schema.json': JSON.stringify({ type: 'object' }),
      'm.yaml': `entity: thing
contract: c.schema.json
match: { table: "erp.*" }
key: [a, b]
filter: { any: [{ not: { field: SKIP, exists: true } }, { field: SKIP, matches: "^no$" }] }
fields:
  a: { from: A, type: integer, thousandsSeparator: "'" }
  b: { from: [B1, B2, B3], join: "-", trim: true, case: upper }
  t: { from: T, case: title }
  c: { from: C, case: upper, map: { A: active, "1": true } }
  d: { from: D, default: none }
  n: { from: N, nullIf: ["", "00.00.0000"], type: date, format: dd.MM.yyyy }
  f: { from: F, type: boolean }
  k: { const: 7 }
  m: { from: M, map: { X: "5" }, type: integer }
  ts: { from: TS, type: timestamp, format: "yyyyMMddHHmmss", timeZone: Europe/Berlin }
`,
    });
    const set = await loadMappings(['m.yaml'], { ...ctx, baseDir: dir });
    const out = only(set.apply({ ...record({ A: "1'234", B1: ' x ', B2: '', B3: 'z', T: "o'NEIL-smith anna", C: 'a', N: '00.00.0000', F: 'Y', M: 'X', TS: '20240131101500' }), origin: { kind: 'table', name: 'erp.things' } }));
    expect(out.kind === 'event' && out.event.subject).toBe('1234|X-Z');
    expect(out.kind === 'event' && out.event.data).toEqual({ a: 1234, b: 'X-Z', t: "O'Neil-Smith Anna", c: 'active', d: 'none', n: null, f: true, k: 7, m: 5, ts: '2024-01-31T09:15:00.000Z' });
    const coded = only(set.apply({ ...record({ A: '1', B1: 'b', C: '1' }), origin: { kind: 'table', name: 'erp.things' } }));
    expect(coded.kind === 'event' && coded.event.data).toMatchObject({ c: true, n: null, f: null, ts: null });
    expect(set.apply({ ...record({ A: '1', B1: 'b', SKIP: 'yes' }), origin: { kind: 'table', name: 'erp.things' } })).toEqual([{ kind: 'filtered', mapping: 'm.yaml' }]);
    expect(only(set.apply({ ...record({ A: '1', B1: 'b', SKIP: 'no' }), origin: { kind: 'table', name: 'erp.things' } })).kind).toBe('event');
    const unknownCode = only(set.apply({ ...record({ A: '1', B1: 'b', C: 'q' }), origin: { kind: 'table', name: 'erp.things' } }));
    expect(unknownCode.kind === 'violation' && unknownCode.violations).toEqual([{ field: 'c', message: '"Q" is not in the code table (1, A) and the field has no default' }]);
  });
});

describe('load errors', () => {
  it('locates a typo and a bad value to file:line:column, with a did-you-mean', async () => {
    const dir = await folder({
      'contracts/x.v2.schema.json': contract,
      'mappings/m.yaml': `entity: thing
contract: ../contracts/x.v2.schema.json
match: { file: "*.csv" }
key: [id]
fields:
  id:  { fromm: KUNDE_NR }
  n:   { from: N, type: datum }
`,
    });
    const err = await loadMappings(['mappings/m.yaml'], { ...ctx, baseDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toBe('FERRY_MAPPING_INVALID');
    expect(e.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.field}`)).toEqual(['mappings/m.yaml:6:10 fields.id.fromm', 'mappings/m.yaml:7:25 fields.n.type']);
    expect(e.problems[0]!.message).toMatch(/^unknown key "fromm" — did you mean "from"\? allowed here: from, join/);
    expect(e.problems[1]!.message).toMatch(/^"datum" is not allowed here — expected one of string, integer, decimal, boolean, date, timestamp/);
    expect(e.describe()).toContain('mappings/m.yaml:6:10 (fields.id.fromm): unknown key "fromm"');
  });

  it('collects problems of every file, including contract paths and semantic mistakes', async () => {
    const dir = await folder({
      'good.schema.json': contract,
      'broken.schema.json': '{ "type": ',
      'a.yaml': `entity: thing
contract: missing/nope.schema.json
match: { file: "*.csv" }
key: [id]
fields:
  id: { from: A, typ: string }
`,
      'b.yaml': `entity: thing
contract: good.schema.json
match: { file: "*.csv" }
key: [id, nr]
filter: { field: S, in: [A], equals: B }
fields:
  id: { from: A, const: x }
  n:  { from: N, type: decimal, format: dd.MM.yyyy }
  t:  { from: T, type: timestamp, timeZone: Mars/Olympus }
`,
      'c.yaml': `entity: thing
contract: broken.schema.json
match: { file: "*.csv" }
key: [id]
fields:
  id: { from: A }
`,
      'd.yaml': 'entity: [unclosed\n',
    });
    const err = (await loadMappings(['a.yaml', 'b.yaml', 'c.yaml', 'd.yaml', 'nope.yaml'], { ...ctx, baseDir: dir }).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    const lines = err.problems.map((p) => `${p.file}:${p.line ?? '-'} ${p.field}: ${p.message}`);
    expect(lines).toEqual([
      expect.stringMatching(/^a\.yaml:6 fields\.id\.typ: unknown key "typ" — did you mean "type"\?/),
      expect.stringMatching(/^a\.yaml:2 contract: contract file .*missing\/nope\.schema\.json does not exist — the path is relative to the mapping file's folder$/),
      expect.stringMatching(/^b\.yaml:5 filter: field S needs exactly one condition .* found in, equals/),
      expect.stringMatching(/^b\.yaml:7 fields\.id: has both const and from; use one/),
      expect.stringMatching(/^b\.yaml:8 fields\.n: format only applies to type date or timestamp, but the type is decimal/),
      expect.stringMatching(/^b\.yaml:9 fields\.t: "Mars\/Olympus" is not an IANA time zone/),
      expect.stringMatching(/^b\.yaml:4 key\[1\]: key field "nr" is not one of the fields \(id, n, t\)/),
      expect.stringMatching(/^c\.yaml:2 contract: contract .*broken\.schema\.json is not valid JSON/),
      expect.stringMatching(/^d\.yaml:\d+ : YAML syntax: /),
      expect.stringMatching(/^nope\.yaml:- : cannot read the mapping file \(ENOENT\)/),
    ]);
  });

  it('takes dataschema from an absolute $id, and from the file name otherwise', async () => {
    const dir = await folder({
      'order.v3.schema.json': JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', type: 'object' }),
      'other.schema.json': JSON.stringify({ $id: 'https://hub.example/schemas/order/v4', type: 'object' }),
      'a.yaml': 'entity: order\ncontract: order.v3.schema.json\nmatch: { script: legacy-orders }\nkey: [id]\nfields:\n  id: { from: ID }\n',
      'b.yaml': 'entity: order2\ncontract: other.schema.json\nmatch: { script: "legacy-*" }\nkey: [id]\nfields:\n  id: { from: ID }\n',
    });
    const set = await loadMappings(['a.yaml', 'b.yaml'], { ...ctx, baseDir: dir });
    const out = set.apply(record({ ID: 1 }, { origin: { kind: 'script', name: 'legacy-orders' } }));
    expect(out.map((o) => o.kind === 'event' && o.event.dataschema)).toEqual(['urn:ferry:contract:order:v3', 'https://hub.example/schemas/order/v4']);
    expect(out.map((o) => o.kind === 'event' && o.event.type)).toEqual(['order.created', 'order2.created']);
  });
});
