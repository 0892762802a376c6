import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { compareLsn } from '../../sources/postgres-cdc/lsn.js';
import { RetryableError } from '../../agent/errors/index.js';
import { context, covers, Driver, makeSource, TestDatabase } from './postgres-cdc.helpers.js';

const db = new TestDatabase();

beforeAll(async () => {
  await db.create();
  await db.sql(`
    CREATE TABLE public.orders (
      region text, id int, amount numeric(30,10), big int8, doc jsonb, tags text[], nums int[],
      blob bytea, placed timestamptz, note text, PRIMARY KEY (region, id));
    CREATE TABLE public.docs (id int PRIMARY KEY, body text, n int);
    CREATE TABLE public.docs_full (id int PRIMARY KEY, body text, n int);
    ALTER TABLE public.docs_full REPLICA IDENTITY FULL;
    CREATE TABLE public.ledger (id int PRIMARY KEY, v int);
    CREATE TABLE public.ignored (id int PRIMARY KEY);`);
});
afterAll(() => db.drop());

const ops = (rs: SourceRecord[]) => rs.map((r) => `${r.op}:${r.origin.name}`);

describe('postgres-cdc streaming', () => {
  it('turns inserts, updates, deletes and truncates into c/u/d/t with exact types', async () => {
    const driver = await new Driver(makeSource(db, { slot: 'stream_types', publication: 'pub_types', tables: ['public.orders'], snapshot: 'never' })).open();
    try {
      await db.sql(`INSERT INTO public.ignored VALUES (1)`);
      await db.sql(`INSERT INTO public.orders VALUES
        ('eu', 1, 12345678901234567890.0123456789, 9223372036854775807, '{"a":{"b":[1,"x",null]}}',
         '{"a,b","say \\"hi\\"",NULL}', '{{1,2},{3,4}}', '\\x00ff10', '2024-02-29 23:59:59.123456+02', NULL)`);
      await db.sql(`UPDATE public.orders SET note = 'paid', amount = 0.1 WHERE region = 'eu' AND id = 1`);
      await db.sql(`DELETE FROM public.orders WHERE region = 'eu' AND id = 1`);
      await db.sql(`INSERT INTO public.orders (region, id) VALUES ('us', 2)`);
      await db.sql(`TRUNCATE public.orders`);
      const records = await driver.count(5);
      expect(ops(records)).toEqual(['c:public.orders', 'u:public.orders', 'd:public.orders', 'c:public.orders', 't:public.orders']);
      const [c, u, d, , t] = records as [SourceRecord, SourceRecord, SourceRecord, SourceRecord, SourceRecord];
      expect(c.data).toEqual({
        region: 'eu', id: 1, amount: '12345678901234567890.0123456789', big: '9223372036854775807',
        doc: { a: { b: [1, 'x', null] } }, tags: ['a,b', 'say "hi"', null], nums: [[1, 2], [3, 4]],
        blob: Buffer.from([0, 255, 16]).toString('base64'), placed: '2024-02-29T21:59:59.123456Z', note: null,
      });
      expect(c.origin).toEqual({ kind: 'table', name: 'public.orders' });
      expect(c.changeId).toMatch(/^[0-9A-F]+\/[0-9A-F]+:0$/);
      expect(c.location).toMatch(/^public\.orders @ [0-9A-F]+\/[0-9A-F]+ xid \d+$/);
      expect(c.position).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      // The transaction id travels as its own attribute (ferrytxid); each autocommit statement was its own transaction.
      expect(c.txid).toBe(/xid (\d+)$/.exec(c.location)?.[1]);
      expect(new Set(records.map((r) => r.txid)).size).toBe(5);
      expect(Date.parse(c.time)).toBeGreaterThan(Date.now() - 60_000);
      expect(u.data).toMatchObject({ note: 'paid', amount: '0.1000000000' });
      expect(u.before).toEqual({ region: 'eu', id: 1 });
      expect(d.data).toEqual({ region: 'eu', id: 1 });
      expect(d.before).toEqual({ region: 'eu', id: 1 });
      expect(t.data).toEqual({});
      const slot = await db.slot('stream_types');
      expect(slot?.active_pid).not.toBeNull();
    } finally {
      await driver.close();
    }
  });

  it('names unchanged TOASTed values under REPLICA IDENTITY DEFAULT instead of sending them, and carries before-images under FULL', async () => {
    const driver = await new Driver(makeSource(db, { slot: 'stream_toast', publication: 'pub_toast', tables: ['public.docs', 'public.docs_full'], snapshot: 'never' })).open();
    try {
      // md5 chains do not compress: the value is stored out of line (TOASTed).
      const big = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)`;
      await db.sql(`INSERT INTO public.docs VALUES (1, ${big}, 0); INSERT INTO public.docs_full VALUES (1, ${big}, 0)`);
      await db.sql(`UPDATE public.docs SET n = 1; UPDATE public.docs_full SET n = 1`);
      await db.sql(`DELETE FROM public.docs_full`);
      const records = await driver.count(5);
      const [, , uDefault, uFull, dFull] = records as SourceRecord[] as [SourceRecord, SourceRecord, SourceRecord, SourceRecord, SourceRecord];
      // The column is not in the row at all (no placeholder), and the record says why.
      expect(uDefault.data).toEqual({ id: 1, n: 1 });
      expect('body' in uDefault.data).toBe(false);
      expect(uDefault.unchanged).toEqual(['body']);
      expect(uDefault.before).toEqual({ id: 1 });
      expect((uFull.data.body as string).length).toBe(12800);
      expect(uFull.unchanged).toBeUndefined();
      expect(uFull.before).toMatchObject({ id: 1, n: 0 });
      expect((uFull.before?.body as string).length).toBe(12800);
      expect(dFull.before).toMatchObject({ id: 1, n: 1 });
      for (const r of records) if (r !== uDefault) expect('unchanged' in r, `${r.op} ${r.origin.name}`).toBe(false);
    } finally {
      await driver.close();
    }
  });

  it("stamps every change of a transaction with the transaction's commit time, not the statement's", async () => {
    const driver = await new Driver(makeSource(db, { slot: 'stream_time', publication: 'pub_ledger', tables: ['public.ledger'], snapshot: 'never' })).open();
    // Postgres' clock as microseconds since the epoch, comparable with the records' ISO times to the microsecond.
    const utc = (expr: string) => `to_char(${expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
    try {
      await db.sql('BEGIN');
      const [first] = await db.sql<{ at: string }>(`INSERT INTO public.ledger VALUES (8001, 1) RETURNING ${utc('statement_timestamp()')} AS at`);
      await db.sql('SELECT pg_sleep(1)');
      await db.sql('INSERT INTO public.ledger VALUES (8002, 2)');
      await db.sql('COMMIT');
      const [after] = await db.sql<{ at: string }>(`SELECT ${utc('clock_timestamp()')} AS at`);
      const records = await driver.count(2);
      expect(records.map((r) => r.data.id)).toEqual([8001, 8002]);
      const [a, b] = records as [SourceRecord, SourceRecord];
      expect(a.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(b.time).toBe(a.time);
      expect(micros(a.time) - micros(first!.at)).toBeGreaterThanOrEqual(1_000_000n);
      expect(micros(a.time)).toBeLessThanOrEqual(micros(after!.at));
    } finally {
      await db.sql('ROLLBACK').catch(() => undefined); // only when a step above failed mid-transaction
      await driver.close();
    }
  });

  it('never emits a rolled-back transaction', async () => {
    const driver = await new Driver(makeSource(db, { slot: 'stream_rollback', publication: 'pub_ledger', tables: ['public.ledger'], snapshot: 'never' })).open();
    try {
      await db.sql(`BEGIN; INSERT INTO public.ledger VALUES (7001, 1); ROLLBACK`);
      await db.sql(`INSERT INTO public.ledger VALUES (7002, 2)`);
      await driver.count(1);
      await new Promise((r) => setTimeout(r, 300));
      expect(driver.records.map((r) => r.data.id)).toEqual([7002]);
    } finally {
      await driver.close();
    }
  });

  it('sorts connection failures: unreachable is retryable, a bad database is not', async () => {
    const unreachable = makeSource(db, { connection: 'postgres://postgres@127.0.0.1:1/x', tables: ['public.ledger'] });
    await expect(unreachable.open(undefined, context())).rejects.toBeInstanceOf(RetryableError);
    await unreachable.close();
    const wrongDb = makeSource(db, { connection: 'postgres://postgres@127.0.0.1:5432/ferry_no_such_db', tables: ['public.ledger'] });
    const error = await wrongDb.open(undefined, context()).then(() => undefined, (e: unknown) => e);
    await wrongDb.close();
    expect(error).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringContaining('ferry_no_such_db') });
    expect(error).not.toBeInstanceOf(RetryableError);
    expect((error as Error).message + String((error as { where?: string }).where)).not.toContain('postgres://');
  });

  it('picks up a schema change without a restart', async () => {
    await db.sql(`CREATE TABLE public.evolving (id int PRIMARY KEY, a text)`);
    const driver = await new Driver(makeSource(db, { slot: 'stream_ddl', publication: 'pub_ddl', tables: ['public.evolving'], snapshot: 'never' })).open();
    try {
      await db.sql(`INSERT INTO public.evolving VALUES (1, 'x')`);
      await driver.count(1);
      await db.sql(`ALTER TABLE public.evolving ADD COLUMN b numeric DEFAULT 1.50`);
      await db.sql(`INSERT INTO public.evolving VALUES (2, 'y', 2.25)`);
      await db.sql(`ALTER TABLE public.evolving DROP COLUMN a`);
      await db.sql(`UPDATE public.evolving SET b = 3 WHERE id = 1`);
      const records = await driver.count(3);
      expect(records.map((r) => r.data)).toEqual([{ id: 1, a: 'x' }, { id: 2, a: 'y', b: '2.25' }, { id: 1, b: '3' }]);
    } finally {
      await driver.close();
    }
  });

  it('resumes after commit without loss, re-delivering only the uncommitted tail with the same ids', async () => {
    const source = () => makeSource(db, { slot: 'stream_resume', publication: 'pub_ledger', tables: ['public.ledger'], snapshot: 'never' });
    const first = await new Driver(source()).open();
    let committed;
    let tail: SourceRecord[];
    try {
      await db.sql(`INSERT INTO public.ledger VALUES (1, 1), (2, 1)`);
      await first.count(2);
      committed = await first.commitAll();
      // The slot holds exactly the durable position.
      await expect.poll(async () => (await db.slot('stream_resume'))?.confirmed_flush_lsn, { timeout: 30_000 }).toBe((committed as { lsn: string }).lsn);
      await db.sql(`UPDATE public.ledger SET v = 2 WHERE id = 1`);
      await db.sql(`DELETE FROM public.ledger WHERE id = 2`);
      tail = (await first.count(4)).slice(2);
    } finally {
      await first.close(); // no commit of the tail: a killed agent
    }
    await db.sql(`INSERT INTO public.ledger VALUES (3, 3)`);
    const second = await new Driver(source()).open(committed);
    try {
      const again = await second.count(3);
      expect(again.slice(0, 2).map((r) => r.changeId)).toEqual(tail.map((r) => r.changeId));
      expect(again.slice(0, 2)).toEqual(tail);
      expect(ops(again)).toEqual(['u:public.ledger', 'd:public.ledger', 'c:public.ledger']);
      expect(again[2]?.data).toEqual({ id: 3, v: 3 });
    } finally {
      await second.close();
    }
  });

  it('keeps a large transaction whole across batches: mid-transaction checkpoints never pass its start', async () => {
    const source = () => makeSource(db, { slot: 'stream_big', publication: 'pub_ledger', tables: ['public.ledger'], snapshot: 'never', batchSize: 200 });
    const first = await new Driver(source()).open();
    let midCp;
    let firstIds: string[];
    try {
      await db.sql(`INSERT INTO public.ledger VALUES (100, 0)`);
      await first.count(1);
      await first.commitAll();
      await db.sql(`INSERT INTO public.ledger SELECT g, g FROM generate_series(1000, 5999) g`);
      const all = await first.count(5001);
      firstIds = all.slice(1).map((r) => r.changeId);
      expect(new Set(firstIds).size).toBe(5000);
      const commitLsn = firstIds[0]!.split(':')[0]!;
      await first.until(() => covers(first.lastCheckpoint, all.at(-1)!)); // the batch carrying its commit
      const inside = first.batches.filter((b) => b.records.some((r) => r.changeId.startsWith(`${commitLsn}:`)));
      expect(inside.length).toBeGreaterThan(20);
      // No checkpoint passes the commit before the transaction's last change has been handed over.
      const lastInside = first.batches.lastIndexOf(inside.at(-1)!);
      for (const b of first.batches.slice(0, lastInside)) expect(compareLsn((b.checkpoint as { lsn: string }).lsn, commitLsn)).toBeLessThanOrEqual(0);
      expect(compareLsn((first.lastCheckpoint as { lsn: string }).lsn, commitLsn)).toBeGreaterThan(0);
      // Commit a mid-transaction checkpoint, as the runtime would, then stop abruptly.
      midCp = inside[5]!.checkpoint;
      await first.source.commit(midCp);
    } finally {
      await first.close();
    }
    const second = await new Driver(source()).open(midCp);
    try {
      const again = await second.count(5000);
      expect(again.map((r) => r.changeId)).toEqual(firstIds);
    } finally {
      await second.close();
    }
  });
});

/** `2024-02-29T21:59:59.123456Z` → microseconds since the epoch. */
function micros(iso: string): bigint {
  const m = /^(.+T\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(iso);
  if (!m) throw new Error(`not an ISO time with microseconds: ${iso}`);
  return BigInt(Date.parse(`${m[1]}Z`)) * 1000n + BigInt(m[2]!);
}
