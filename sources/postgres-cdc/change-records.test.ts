import { describe, expect, it } from 'vitest';
import { changeRecord, type TransactionContext } from './change-records.js';
import { UNCHANGED_TOAST, type Relation } from './pgoutput-decoder.js';

const relation = (replicaIdentity: Relation['replicaIdentity']): Relation => ({
  oid: 16384,
  schema: 'public',
  name: 'docs',
  replicaIdentity,
  columns: [
    { name: 'id', typeOid: 23, isKey: true },
    { name: 'payload', typeOid: 3802, isKey: false },
    { name: 'notes', typeOid: 25, isKey: false },
    { name: 'n', typeOid: 23, isKey: false },
  ],
});
const txn: TransactionContext = { commitLsn: '0/16B3800', xid: 4711, commitTime: '2026-11-23T10:00:00.000000Z', index: 0 };
const U: typeof UNCHANGED_TOAST = UNCHANGED_TOAST;

describe('change records of unchanged TOASTed values', () => {
  it('leaves a value Postgres did not send out of data and names its column, not a placeholder', () => {
    const r = changeRecord({ tag: 'update', relation: relation('default'), newTuple: ['1', U, U, '2'] }, txn, 0, '0/16B3748');
    expect(r.data).toEqual({ id: 1, n: 2 });
    expect(Object.keys(r.data)).toEqual(['id', 'n']);
    expect(r.unchanged).toEqual(['payload', 'notes']);
    expect(r.before).toEqual({ id: 1 });
  });

  it('sets no unchanged list when every value was sent: NULLs are values', () => {
    const r = changeRecord({ tag: 'update', relation: relation('default'), newTuple: ['1', '{"a":1}', null, '2'] }, txn, 0, '0/16B3748');
    expect(r.data).toEqual({ id: 1, payload: { a: 1 }, notes: null, n: 2 });
    expect('unchanged' in r).toBe(false);
    const c = changeRecord({ tag: 'insert', relation: relation('default'), newTuple: ['1', '{}', 'x', '2'] }, txn, 0, '0/16B3748');
    expect('unchanged' in c).toBe(false);
  });

  it('fills unchanged values from the old tuple under REPLICA IDENTITY FULL', () => {
    const r = changeRecord(
      { tag: 'update', relation: relation('full'), oldTuple: ['1', '{"big":true}', 'old', '1'], newTuple: ['1', U, U, '2'] },
      txn,
      0,
      '0/16B3748',
    );
    expect(r.data).toEqual({ id: 1, payload: { big: true }, notes: 'old', n: 2 });
    expect('unchanged' in r).toBe(false);
  });

  it('shows an unchanged value in the raw tuples of an undecodable change', () => {
    const r = changeRecord({ tag: 'update', relation: relation('default'), newTuple: ['1', '{not json', U, '2'] }, txn, 0, '0/16B3748');
    expect(r.invalid).toMatch(/^cannot decode change: /);
    expect(r.data).toEqual({ _raw: { new: ['1', '{not json', '(unchanged TOAST value, not sent)', '2'], old: undefined, key: undefined } });
    expect('unchanged' in r).toBe(false);
  });
});
