import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../agent/errors/index.js';
import type { Checkpoint, SnapshotBatch, SnapshotRequest, SourceRecord } from '../../agent/plugin/source.js';
import { ADMIN_URL, context, Driver, makeSource, TestDatabase } from './postgres-cdc.helpers.js';
import { pgQuery } from '../support/postgres.js';
import type { PostgresCdcSource } from '../../sources/postgres-cdc/postgres-cdc-source.js';

const db = new TestDatabase();

beforeAll(async () => {
  await db.create();
  await db.sql(`
    CREATE TABLE public.accounts (id int PRIMARY KEY, balance numeric(12,2), owner text);
    INSERT INTO public.accounts SELECT g, g * 1.5, 'owner ' || g FROM generate_series(1, 3000) g;
    CREATE TABLE public.lines (order_id int, line int, qty int, PRIMARY KEY (order_id, line));
    INSERT INTO public.lines SELECT g / 10, g % 10, g FROM generate_series(0, 1999) g;
    CREATE TABLE public.audit (msg text);
    -- Keyless, so snapshots in ctid order stay covered; FULL, or Ferry would refuse to publish it (the application's UPDATEs would fail).
    ALTER TABLE public.audit REPLICA IDENTITY FULL;
    INSERT INTO public.audit SELECT 'same' FROM generate_series(1, 5);
    -- Shared by several tests with different table lists: each test must see all of them published.
    CREATE PUBLICATION pub_snap FOR TABLE public.accounts, public.lines, public.audit;`);
});
afterAll(() => db.drop());

type Row = Record<string, unknown>;

/** Applies events in order, as a sink upserting by key would. */
/** Opens a source, makes its first two snapshot chunks (rows 1–1,000) durable and dies there, as an agent killed mid-snapshot. */
async function killedAfterTwoChunks(source: () => PostgresCdcSource): Promise<{ cp: Checkpoint; durable: SourceRecord[] }> {
  const first = await new Driver(source()).open();
  try {
    await first.until((rs) => rs.length >= 1000);
    const cp = first.batches[1]!.checkpoint;
    await first.source.commit(cp);
    return { cp, durable: first.batches.slice(0, 2).flatMap((b) => b.records) };
  } finally {
    await first.close();
  }
}

/**
 * Waits until the walsender of `slot` has processed `n` more standby status
 * updates (pg_stat_replication.reply_time changes with each one it processes,
 * just before it applies the confirmed LSN the update carries).
 */
async function statusUpdatesProcessed(slot: string, n: number): Promise<void> {
  const replyTime = async () =>
    (await db.sql<{ t: string | null }>(`SELECT r.reply_time::text AS t FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`, [slot]))[0]?.t ?? null;
  let last = await replyTime();
  let seen = 0;
  await expect
    .poll(async () => {
      const t = await replyTime();
      if (t !== null && t !== last) {
        last = t;
        seen++;
      }
      return seen;
    }, { timeout: 30_000, interval: 50 })
    .toBeGreaterThanOrEqual(n);
}

function replay(records: SourceRecord[], table: string, key: (data: Row) => string): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const r of records.filter((x) => x.origin.name === table)) {
    if (r.op === 'd') rows.delete(key(r.data));
    else if (r.op === 't') rows.clear();
    else rows.set(key(r.data), r.data);
  }
  return rows;
}

describe('postgres-cdc snapshot', () => {
  it('snapshots in key-ordered chunks consistently with concurrent writes, then streams', async () => {
    const driver = await new Driver(
      makeSource(db, { slot: 'snap_consistent', publication: 'pub_snap', tables: ['public.accounts', 'public.lines', 'public.audit'], snapshotChunkSize: 400 }),
    ).open();
    try {
      // Written after the slot's consistent point, while the snapshot is being read.
      const writes = (async () => {
        for (let i = 0; i < 30; i++) {
          await db.sql(`UPDATE public.accounts SET balance = balance + 1 WHERE id = $1`, [i * 97 + 1]);
          await db.sql(`DELETE FROM public.accounts WHERE id = $1`, [i * 89 + 2]);
          await db.sql(`INSERT INTO public.accounts VALUES ($1, 0.01, 'new')`, [10_000 + i]);
          await db.sql(`UPDATE public.lines SET qty = -qty WHERE order_id = $1`, [i]);
        }
      })();
      await driver.until((rs) => rs.filter((r) => r.op === 'r').length >= 400);
      await writes;
      await db.sql(`INSERT INTO public.accounts VALUES (99999, 1, 'marker')`);
      const records = await driver.until((rs) => rs.some((r) => r.data.id === 99999));
      const snapshot = records.filter((r) => r.op === 'r');
      expect(snapshot.filter((r) => r.origin.name === 'public.accounts')).toHaveLength(3000);
      expect(snapshot.filter((r) => r.origin.name === 'public.lines')).toHaveLength(2000);
      expect(snapshot.filter((r) => r.origin.name === 'public.audit')).toHaveLength(5);
      // Snapshot first, stream after: no change is interleaved with it.
      const lastSnapshot = records.findLastIndex((r) => r.op === 'r');
      expect(records.slice(0, lastSnapshot).every((r) => r.op === 'r')).toBe(true);
      expect(new Set(records.map((r) => r.changeId)).size).toBe(records.length);
      // Key order within a table, chunk after chunk.
      const ids = snapshot.filter((r) => r.origin.name === 'public.accounts').map((r) => r.data.id as number);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      // Every write came after the slot's consistent point: the snapshot shows none of them.
      expect(ids).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
      for (const r of snapshot.filter((x) => x.origin.name === 'public.accounts')) expect(r.data.balance).toBe(((r.data.id as number) * 1.5).toFixed(2));
      expect(records.slice(lastSnapshot + 1).filter((r) => r.op !== 'r')).toHaveLength(30 * 13 + 1); // per round: update, delete, insert, 10 line updates; then the marker

      const accounts = replay(records, 'public.accounts', (d) => String(d.id));
      const table = await db.sql<{ id: number; balance: string; owner: string }>(`SELECT id, balance::text, owner FROM public.accounts ORDER BY id`);
      expect([...accounts.values()].sort((a, b) => (a.id as number) - (b.id as number))).toEqual(table);
      const lines = replay(records, 'public.lines', (d) => `${d.order_id}/${d.line}`);
      const lineRows = await db.sql(`SELECT order_id, line, qty FROM public.lines`);
      expect(lines.size).toBe(lineRows.length);
      for (const row of lineRows) expect(lines.get(`${row.order_id}/${row.line}`)).toEqual(row);
    } finally {
      await driver.close();
    }
  });

  it('resumes an interrupted snapshot after the last durable chunk', async () => {
    const source = () => makeSource(db, { slot: 'snap_resume', publication: 'pub_snap', tables: ['public.accounts', 'public.lines'], snapshotChunkSize: 500 });
    const first = await new Driver(source()).open();
    let cp: Checkpoint;
    try {
      await first.until((rs) => rs.length >= 1000);
      cp = first.batches[1]!.checkpoint; // two chunks durable
      await first.source.commit(cp);
      expect(cp).toMatchObject({ snapshot: { tables: ['public.accounts', 'public.lines'], lastKey: [expect.any(String)] } });
    } finally {
      await first.close(); // killed mid-snapshot
    }
    const durable = first.batches.slice(0, 2).flatMap((b) => b.records);
    const total = Number((await db.sql(`SELECT (SELECT count(*) FROM public.accounts) + (SELECT count(*) FROM public.lines) AS n`))[0]!.n);
    const second = await new Driver(source()).open(cp);
    try {
      const rest = await second.until((rs) => rs.length >= total - durable.length);
      await new Promise((r) => setTimeout(r, 300));
      const keys = [...durable, ...rest].filter((r) => r.op === 'r').map((r) => `${r.origin.name}:${JSON.stringify(r.data)}`);
      expect(keys.length).toBe(total);
      expect(new Set(keys).size).toBe(total);
      // The same snapshot id names the resumed rows.
      expect(rest[0]!.changeId.split(':').slice(0, 2)).toEqual(durable[0]!.changeId.split(':').slice(0, 2));
    } finally {
      await second.close();
    }
  });
});

describe('postgres-cdc snapshot resumed after changes', () => {
  it('streams what changed while it was down before the rest of the rows, so no key gets an older version after a newer one', async () => {
    await db.sql(`
      CREATE TABLE public.stock (id int PRIMARY KEY, version int NOT NULL);
      INSERT INTO public.stock SELECT g, 1 FROM generate_series(1, 2000) g;
      CREATE PUBLICATION pub_stock FOR TABLE public.stock;`);
    const source = () => makeSource(db, { slot: 'snap_resume_order', publication: 'pub_stock', tables: ['public.stock'], snapshotChunkSize: 500, heartbeatMs: 200 });
    const { cp, durable } = await killedAfterTwoChunks(source);
    // While the agent is down: rows on both sides of the resume point change twice; one of each is deleted; one is new.
    for (let round = 0; round < 2; round++) await db.sql(`UPDATE public.stock SET version = version + 1 WHERE id IN (10, 700, 1500, 1999)`);
    await db.sql(`DELETE FROM public.stock WHERE id IN (20, 1600); INSERT INTO public.stock VALUES (2500, 1)`);

    const second = await new Driver(source()).open(cp);
    try {
      // Written after the resume: comes after every snapshot row.
      await second.until((rs) => rs.filter((r) => r.op === 'r').length >= 2000 - 1000 - 1 + 1);
      await db.sql(`UPDATE public.stock SET version = version + 1 WHERE id IN (1500, 3); INSERT INTO public.stock VALUES (9999, 1)`);
      const rest = await second.until((rs) => rs.some((r) => r.data.id === 9999));
      const events = [...durable, ...rest];

      // Per key, versions never go down and a delete is last.
      const last = new Map<number, number>();
      const regressions: string[] = [];
      for (const e of events) {
        const id = e.data.id as number;
        const v = e.op === 'd' ? Number.MAX_SAFE_INTEGER : (e.data.version as number);
        if ((last.get(id) ?? 0) > v) regressions.push(`${id}: ${e.op} v${v} after v${last.get(id)}`);
        last.set(id, v);
      }
      expect(regressions).toEqual([]);
      // Rows beyond the resume point changed while down arrive changed first, then as read at the new point (op r, v3).
      expect(events.filter((e) => e.data.id === 1500).map((e) => `${e.op}${e.data.version}`)).toEqual(['u2', 'u3', 'r3', 'u4']);
      expect(events.filter((e) => e.data.id === 1600).map((e) => e.op)).toEqual(['d']);
      expect(events.filter((e) => e.data.id === 10).map((e) => `${e.op}${e.data.version}`)).toEqual(['r1', 'u2', 'u3']);
      // The resumed rows keep the snapshot's id.
      expect(rest.find((r) => r.op === 'r')!.changeId.split(':').slice(0, 2)).toEqual(durable[0]!.changeId.split(':').slice(0, 2));
      // Replaying every event reproduces the table.
      const replayed = replay(events, 'public.stock', (d) => String(d.id));
      const table = await db.sql<{ id: number; version: number }>(`SELECT id, version FROM public.stock ORDER BY id`);
      expect([...replayed.values()].sort((a, b) => (a.id as number) - (b.id as number))).toEqual(table);
      // The temporary slot of the resumed snapshot is gone; the pipeline's slot streams on.
      expect(await db.sql(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'ferry_resume_%' AND database = current_database()`)).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('tells the slot nothing past the stored checkpoint until the resumed snapshot is durable, so a crash then resumes again', async () => {
    await db.sql(`
      CREATE TABLE public.parcels (id int PRIMARY KEY, version int NOT NULL);
      INSERT INTO public.parcels SELECT g, 1 FROM generate_series(1, 1500) g;
      CREATE PUBLICATION pub_parcels FOR TABLE public.parcels;`);
    const slot = 'snap_resume_ack';
    const source = () => makeSource(db, { slot, publication: 'pub_parcels', tables: ['public.parcels'], snapshotChunkSize: 500, heartbeatMs: 200 });
    const lsnOf = (c: Checkpoint) => (c as { lsn: string }).lsn;
    const isAfter = async (a: string, b: string) => (await db.sql<{ after: boolean }>(`SELECT $1::pg_lsn > $2::pg_lsn AS after`, [a, b]))[0]!.after;

    const { cp, durable } = await killedAfterTwoChunks(source);
    // Changed while down: the resumed run's catch-up, and WAL that puts its new consistent point past `cp`.
    await db.sql(`UPDATE public.parcels SET version = 2 WHERE id IN (5, 1200); DELETE FROM public.parcels WHERE id = 1300`);

    // The resumed run reads the catch-up, the rest of the rows and a streamed change, and dies before any of it is durable.
    const second = await new Driver(source()).open(cp);
    try {
      await second.until((rs) => rs.filter((r) => r.op === 'r').length >= 499);
      await db.sql(`INSERT INTO public.parcels VALUES (5000, 1)`);
      await second.until((rs) => rs.some((r) => r.data.id === 5000));
      // The stream from the new consistent point is open: let several status updates (every heartbeatMs) reach the
      // server after the last record was read. Counted rather than slept for, so a slow machine waits longer
      // instead of checking the slot before the source has said anything to it.
      await statusUpdatesProcessed(slot, 3);
      const state = await db.slot(slot);
      expect(state?.active_pid).not.toBeNull();
      expect(await isAfter(state!.confirmed_flush_lsn, lsnOf(cp)), `slot confirmed ${state!.confirmed_flush_lsn}, stored checkpoint ${lsnOf(cp)}`).toBe(false);
    } finally {
      await second.close(); // killed: nothing it read was committed
    }

    // The stored checkpoint is still `cp`: a strict restart from it resumes the snapshot again, missing nothing.
    const third = await new Driver(source()).open(cp);
    try {
      // 1001-1500 but the deleted 1300, and 5000 (it came before the new consistent point): then a change streamed after them.
      await third.until((rs) => rs.filter((r) => r.op === 'r').length >= 500);
      await db.sql(`INSERT INTO public.parcels VALUES (6000, 1)`);
      const rest = await third.until((rs) => rs.some((r) => r.data.id === 6000));
      const events = [...durable, ...rest];
      const replayed = replay(events, 'public.parcels', (d) => String(d.id));
      const table = await db.sql<{ id: number; version: number }>(`SELECT id, version FROM public.parcels ORDER BY id`);
      expect([...replayed.values()].sort((a, b) => (a.id as number) - (b.id as number))).toEqual(table);
      // Once everything is durable the slot does move on, to the committed position.
      const committed = lsnOf(await third.commitAll());
      await expect.poll(async () => (await db.slot(slot))?.confirmed_flush_lsn, { timeout: 30_000 }).toBe(committed);
    } finally {
      await third.close();
    }
  });
});

describe('postgres-cdc snapshot on request (Source.snapshot)', () => {
  async function collect(source: ReturnType<typeof makeSource>, request: SnapshotRequest): Promise<SnapshotBatch[]> {
    const batches: SnapshotBatch[] = [];
    try {
      for await (const b of source.snapshot(request, context(), new AbortController().signal)) batches.push(b);
    } finally {
      await source.close();
    }
    return batches;
  }

  it('reads the chosen rows in key order with progress, without a slot or a stored position', async () => {
    const source = makeSource(db, { slot: 'snap_request', publication: 'pub_request', tables: ['public.accounts', 'public.lines'], snapshotChunkSize: 30 });
    const batches = await collect(source, { tables: ['public.accounts'], where: 'id BETWEEN 101 AND 200', runId: 'run1' });
    const rows = batches.flatMap((b) => b.records);
    const expected = await db.sql(`SELECT id FROM public.accounts WHERE id BETWEEN 101 AND 200 ORDER BY id`);
    expect(rows.map((r) => r.data.id)).toEqual(expected.map((r) => r.id));
    expect(rows.every((r) => r.op === 'r' && r.changeId.startsWith('snapshot:run1:public.accounts:'))).toBe(true);
    const n = expected.length; // earlier tests deleted a few
    expect(batches.map((b) => b.progress)).toEqual([30, 60, 90, n].map((rowsDone) => ({ table: 'public.accounts', rowsDone, rowsTotal: n })));
    // Nothing was created: no slot, no publication.
    expect(await db.slot('snap_request')).toBeUndefined();
    expect(await db.sql(`SELECT 1 FROM pg_publication WHERE pubname = 'pub_request'`)).toEqual([]);

    // All captured tables by default; the planner's estimate as the total.
    await db.sql('ANALYZE public.accounts, public.lines');
    const all = await collect(makeSource(db, { slot: 'snap_request', publication: 'pub_request', tables: ['public.accounts', 'public.lines'], snapshotChunkSize: 1000 }), { runId: 'run2' });
    const counts = await db.sql<{ a: string; l: string }>(`SELECT (SELECT count(*) FROM public.accounts) AS a, (SELECT count(*) FROM public.lines) AS l`);
    expect(all.at(-1)!.progress).toEqual({ table: 'public.lines', rowsDone: Number(counts[0]!.l), rowsTotal: Number(counts[0]!.l) });
    expect(all.flatMap((b) => b.records)).toHaveLength(Number(counts[0]!.a) + Number(counts[0]!.l));
  });

  it('refuses a table it does not capture, a second statement and a condition Postgres rejects', async () => {
    const source = () => makeSource(db, { slot: 'snap_request', publication: 'pub_request', tables: ['public.accounts'] });
    await expect(collect(source(), { tables: ['public.audit'], runId: 'x' })).rejects.toMatchObject({ code: 'FERRY_USAGE' });
    await expect(collect(source(), { where: 'id > 1; DELETE FROM public.accounts', runId: 'x' })).rejects.toMatchObject({ code: 'FERRY_USAGE', message: expect.stringContaining('";"') });
    await expect(collect(source(), { where: 'no_such_column = 1', runId: 'x' })).rejects.toMatchObject({ code: 'FERRY_USAGE', message: expect.stringContaining('no_such_column') });
    expect(await db.sql(`SELECT count(*)::int AS n FROM public.accounts`)).not.toEqual([{ n: 0 }]);
  });
});

describe('postgres-cdc slot faults', () => {
  it('stops on a rejected login with FERRY_SOURCE_AUTH_FAILED (exit 2, not retried)', async () => {
    // The test server trusts every login from 127.0.0.1, so a role that does not exist stands for a wrong password (both are class 28).
    const source = makeSource(db, { connection: db.url.replace('postgres@', 'no_such_role_x@'), slot: 'slot_auth', publication: 'pub_snap', tables: ['public.audit'] });
    const err = await source.open(undefined, context()).then(() => undefined, (e: unknown) => e);
    await source.close();
    expect(err).toBeInstanceOf(FerryError);
    expect(err).toMatchObject({ code: 'FERRY_SOURCE_AUTH_FAILED', where: expect.stringContaining('no_such_role_x@127.0.0.1:5432/') });
    expect((err as Error).message).toContain('no_such_role_x');
  });

  it('reports a slot in use by another reader, naming the slot and pid', async () => {
    const first = await new Driver(makeSource(db, { slot: 'slot_busy', publication: 'pub_snap', tables: ['public.audit'], snapshot: 'never' })).open();
    try {
      await db.sql(`INSERT INTO public.audit VALUES ('x')`);
      await first.count(1);
      const pid = (await db.slot('slot_busy'))?.active_pid;
      const second = makeSource(db, { slot: 'slot_busy', publication: 'pub_snap', tables: ['public.audit'], snapshot: 'never' });
      const error = await new Driver(second).open({ lsn: '0/0' }).then(() => undefined, (e: unknown) => e);
      await second.close();
      expect(error).toBeInstanceOf(FerryError);
      expect(error).toMatchObject({ code: 'FERRY_SOURCE_SLOT_IN_USE', message: `replication slot slot_busy is in use by pid ${pid}` });
    } finally {
      await first.close();
    }
  });

  it('stops with FERRY_SOURCE_POSITION_LOST when the slot was dropped, or re-snapshots with when_needed', async () => {
    const config = { slot: 'slot_dropped', publication: 'pub_snap', tables: ['public.audit'] };
    const first = await new Driver(makeSource(db, { ...config, snapshot: 'never' })).open();
    let cp: Checkpoint;
    try {
      await db.sql(`INSERT INTO public.audit VALUES ('before drop')`);
      await first.count(1);
      cp = await first.commitAll();
    } finally {
      await first.close();
    }
    await expect.poll(async () => (await db.slot('slot_dropped'))?.active_pid ?? null, { timeout: 30_000 }).toBeNull(); // the walsender exits after close()
    await db.sql(`SELECT pg_drop_replication_slot('slot_dropped')`);
    await db.sql(`INSERT INTO public.audit VALUES ('lost while down')`);

    const strict = makeSource(db, { ...config, snapshot: 'initial' });
    const error = await new Driver(strict).open(cp).then(() => undefined, (e: unknown) => e);
    await strict.close();
    expect(error).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST' });
    expect((error as Error).message).toContain('replication slot slot_dropped');

    const healing = await new Driver(makeSource(db, { ...config, snapshot: 'when_needed' })).open(cp);
    try {
      const records = await healing.until((rs) => rs.some((r) => r.data.msg === 'lost while down'));
      expect(records.every((r) => r.op === 'r')).toBe(true);
      expect(await db.slot('slot_dropped')).toBeDefined();
    } finally {
      await healing.close();
    }
  });

  it('reports a slot moved past the stored position by someone else as position lost', async () => {
    const config = { slot: 'slot_moved', publication: 'pub_snap', tables: ['public.audit'], snapshot: 'never' as const };
    const first = await new Driver(makeSource(db, config)).open();
    let cp: Checkpoint;
    try {
      await db.sql(`INSERT INTO public.audit VALUES ('seen')`);
      await first.count(1);
      cp = await first.commitAll();
    } finally {
      await first.close();
    }
    await expect.poll(async () => (await db.slot('slot_moved'))?.active_pid ?? null, { timeout: 30_000 }).toBeNull(); // the walsender exits after close()
    await db.sql(`INSERT INTO public.audit VALUES ('skipped by someone')`);
    await db.sql(`SELECT pg_replication_slot_advance('slot_moved', pg_current_wal_lsn())`);
    const source = makeSource(db, config);
    const error = await new Driver(source).open(cp).then(() => undefined, (e: unknown) => e);
    await source.close();
    expect(error).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST' });
    expect((error as Error).message).toMatch(/replication slot slot_moved: it was moved to .* past Ferry's durable position/);
  });

  it('refuses a slot of another database or plugin with a fix', async () => {
    await db.sql(`SELECT pg_create_logical_replication_slot('slot_other_plugin', 'test_decoding')`);
    const wrongPlugin = makeSource(db, { slot: 'slot_other_plugin', publication: 'pub_snap', tables: ['public.audit'] });
    await expect(wrongPlugin.open(undefined, context())).rejects.toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringContaining('uses plugin test_decoding') });
    await wrongPlugin.close();
    // A publishable table in the other database, so the slot is what is wrong there.
    const probe = `public.ferry_elsewhere_${db.name}`;
    await pgQuery(ADMIN_URL, `CREATE TABLE ${probe} (id int PRIMARY KEY)`);
    const elsewhere = makeSource(db, { connection: ADMIN_URL, slot: 'slot_other_plugin', publication: 'pub_elsewhere', tables: [probe] });
    try {
      await expect(elsewhere.open(undefined, context())).rejects.toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringContaining(`belongs to database ${db.name}`) });
    } finally {
      await elsewhere.close();
      await pgQuery(ADMIN_URL, `DROP PUBLICATION IF EXISTS pub_elsewhere; DROP TABLE IF EXISTS ${probe}`);
    }
    const found = (await elsewhere.check()).find((r) => r.name === 'slot slot_other_plugin');
    expect(found).toMatchObject({ ok: false, detail: `belongs to database ${db.name}, not postgres` });
  });

  it('preflights settings, privileges, tables, publication and slot with fixes', async () => {
    await db.sql(`CREATE TABLE IF NOT EXISTS public.full_ident (id int PRIMARY KEY, v int); ALTER TABLE public.full_ident REPLICA IDENTITY FULL`);
    await db.sql(`CREATE TABLE IF NOT EXISTS public.nokey (msg text)`);
    const source = makeSource(db, { slot: 'slot_check', publication: 'pub_check_missing', tables: ['public.accounts', 'public.nope', 'public.audit', 'public.full_ident', 'public.nokey'] });
    const results = await source.check();
    const byName = new Map(results.map((r) => [r.name, r]));
    // A table without a primary key under REPLICA IDENTITY DEFAULT: in a publication, Postgres would refuse the application's UPDATE and DELETE.
    expect(byName.get('table public.nokey replica identity')).toMatchObject({
      ok: false,
      fix: expect.stringContaining('ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL'),
    });
    expect(byName.get('table public.nokey replica identity')?.severity).not.toBe('warning');
    expect(byName.get('table public.audit replica identity')).toMatchObject({ ok: true, detail: 'REPLICA IDENTITY FULL, no primary key (before-images on updates and deletes)' });
    expect(byName.get('table public.full_ident replica identity')).toMatchObject({ ok: true, detail: 'REPLICA IDENTITY FULL (before-images on updates and deletes)' });
    expect(byName.get('wal_level')).toMatchObject({ ok: true });
    expect(byName.get('replication privilege')).toMatchObject({ ok: true });
    expect(byName.get('table public.nope')).toMatchObject({ ok: false, detail: 'does not exist' });
    expect(byName.get('table public.accounts replica identity')).toMatchObject({ ok: true });
    expect(byName.get('publication pub_check_missing')).toMatchObject({ severity: 'warning', fix: expect.stringContaining('CREATE PUBLICATION') });
    expect(byName.get('slot slot_check')?.detail).toContain('missing');
    expect(byName.get('max_slot_wal_keep_size')).toMatchObject({ severity: 'warning' });
  });
});
