import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SourceRecord } from '../plugin/source.js';
import { loadMappings } from './load-mappings.js';
import type { MapOutcome, MappingSet } from './types.js';

/**
 * Columns a source could not send (`record.unchanged`: a Postgres update
 * leaves out its unchanged TOASTed values): the fields made from them are
 * left out of the event and listed in `ferryunchanged`, and neither the
 * mapping nor the contract counts their absence as a violation.
 */

const contract = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'n', 'payload', 'title'],
  properties: {
    id: { type: 'integer' },
    n: { type: 'integer' },
    payload: { type: 'object' },
    notes: { type: ['string', 'null'], pattern: '^note:' },
    title: { type: 'string' },
    origin: { const: 'erp' },
  },
  dependentRequired: { notes: ['payload'] },
};

const mapping = `entity: doc
contract: doc.v1.schema.json
match: { table: public.docs }
key: [id]
fields:
  id:      { from: id, type: integer, required: true }
  n:       { from: n, type: integer }
  payload: { from: payload, type: json, required: true }
  notes:   { from: notes }
  title:   { from: [first, last], required: true }
  origin:  { const: erp }
`;

let set: MappingSet;
let filtered: MappingSet;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-unchanged-'));
  await writeFile(path.join(dir, 'doc.v1.schema.json'), JSON.stringify(contract));
  await writeFile(path.join(dir, 'docs.yaml'), mapping);
  await writeFile(path.join(dir, 'filtered.yaml'), mapping.replace('key: [id]', 'key: [id]\nfilter: { not: { field: payload, exists: false } }'));
  const ctx = { pipeline: 'docs', agentId: 'host', baseDir: dir };
  set = await loadMappings(['docs.yaml'], ctx);
  filtered = await loadMappings(['filtered.yaml'], ctx);
});

const full = { id: 1, n: 2, payload: { big: 'x'.repeat(3000), tags: ['a'] }, notes: 'note: hi', first: 'Ada', last: 'Lovelace' };

function update(data: Record<string, unknown>, unchanged?: string[], op: SourceRecord['op'] = 'u'): SourceRecord {
  const r: SourceRecord = {
    origin: { kind: 'table', name: 'public.docs' },
    op,
    data,
    before: { id: data.id ?? 1 },
    changeId: '0/16B3800:0',
    time: '2026-11-23T10:00:00.000000Z',
    location: 'public.docs @ 0/16B3748 xid 4711',
    position: '0/16B3748',
    txid: '4711',
  };
  if (unchanged) r.unchanged = unchanged;
  return r;
}

const without = (keys: string[]) => Object.fromEntries(Object.entries(full).filter(([k]) => !keys.includes(k)));

function only(outcomes: MapOutcome[]): MapOutcome {
  expect(outcomes).toHaveLength(1);
  return outcomes[0]!;
}

describe('fields whose source columns were not sent (unchanged)', () => {
  it('maps the whole row, the jsonb column as an object, when every column is there', () => {
    const out = only(set.apply(update(full)));
    expect(out.kind === 'event' && out.event.data).toEqual({ id: 1, n: 2, payload: full.payload, notes: 'note: hi', title: 'Ada Lovelace', origin: 'erp' });
    expect(out.kind === 'event' && 'ferryunchanged' in out.event).toBe(false);
  });

  it('leaves an unchanged field out and lists it, although the mapping and the contract require it', () => {
    const out = only(set.apply(update(without(['payload']), ['payload'])));
    expect(out.kind, JSON.stringify(out)).toBe('event');
    if (out.kind !== 'event') return;
    expect(out.event.data).toEqual({ id: 1, n: 2, notes: 'note: hi', title: 'Ada Lovelace', origin: 'erp' });
    expect('payload' in out.event.data).toBe(false);
    expect(out.event.ferryunchanged).toBe('payload');
    expect(out.event).toMatchObject({ type: 'doc.updated', subject: '1', ferryop: 'u', ferrytxid: '4711' });
  });

  it('still holds the same row without the unchanged list to the contract: only a column the source names is excused', () => {
    const out = only(set.apply(update(without(['payload']))));
    expect(out.kind === 'violation' && out.violations).toEqual([{ field: 'payload', message: 'is required, but payload is missing' }]);
  });

  it('leaves out a field made from several columns when any one of them was not sent, and lists the fields in mapping order', () => {
    const out = only(set.apply(update(without(['payload', 'last']), ['last', 'payload'])));
    expect(out.kind === 'event' && out.event.data).toEqual({ id: 1, n: 2, notes: 'note: hi', origin: 'erp' });
    expect(out.kind === 'event' && out.event.ferryunchanged).toBe('payload,title');
  });

  it('reports every other violation of the record as before', () => {
    const out = only(set.apply(update({ ...without(['payload']), n: 'x', notes: 'no prefix' }, ['payload'])));
    expect(out.kind === 'violation' && out.violations).toEqual([
      { field: 'n', message: '"x" is not an integer' },
      { field: 'notes', message: '"no prefix" does not match the pattern ^note:' },
    ]);
  });

  it('never leaves out a key: an unsent key column is a violation that says why', () => {
    const out = only(set.apply(update(without(['id']), ['id'])));
    expect(out.kind === 'violation' && out.violations).toEqual([
      { field: 'id', message: 'key field: the source did not send id (unchanged, and not in its change log: for Postgres a TOASTed value, which REPLICA IDENTITY FULL sends)' },
    ]);
  });

  it('does not let a filter decide on a column it does not have', () => {
    expect(only(filtered.apply(update(full)))).toMatchObject({ kind: 'event' });
    const out = only(filtered.apply(update(without(['payload']), ['payload'])));
    expect(out.kind === 'violation' && out.violations).toEqual([
      { field: '_filter', message: 'the filter reads payload, but the source did not send payload (unchanged, and not in its change log: for Postgres a TOASTed value, which REPLICA IDENTITY FULL sends)' },
    ]);
  });

  it('ignores the list on a delete, which is mapped from its before-image', () => {
    const out = only(set.apply({ ...update({}, ['payload'], 'd'), before: { id: 1, payload: { a: 1 } } }));
    expect(out.kind === 'event' && out.event.data).toEqual({ id: 1, payload: { a: 1 } });
    expect(out.kind === 'event' && 'ferryunchanged' in out.event).toBe(false);
  });
});

describe('type json', () => {
  it('keeps JSON values as they are, writes dates as ISO 8601 and refuses what JSON cannot carry', () => {
    const payloadOf = (payload: unknown) => {
      const out = only(set.apply(update({ ...full, payload })));
      return out.kind === 'event' ? out.event.data.payload : out.kind === 'violation' ? out.violations : out;
    };
    expect(payloadOf({ a: [1, null, { b: true }] })).toEqual({ a: [1, null, { b: true }] });
    expect(payloadOf(new Date('2024-01-31T00:00:00Z'))).toEqual([{ field: 'payload', message: '"2024-01-31T00:00:00.000Z" is not of type object' }]);
    expect(payloadOf(12345678901234567890n)).toEqual([{ field: 'payload', message: '12345678901234567890 is beyond the numbers JSON carries exactly; use type decimal' }]);
    expect(payloadOf(Buffer.from('x'))).toEqual([{ field: 'payload', message: 'is binary data, not JSON; use type string' }]);
  });
});
