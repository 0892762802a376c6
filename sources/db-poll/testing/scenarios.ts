import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../agent/errors/codes.js';
import { FerryError, RetryableError } from '../../../agent/errors/index.js';
import type { Checkpoint, SourceRecord } from '../../../agent/plugin/source.js';
import type { DbPollSource } from '../source.js';
import { connectDialect } from '../dialects/connect.js';
import type { Dialect } from '../dialects/dialect.js';
import { pollIncremental, type IncrementalState } from '../incremental.js';
import { isoTime } from '../row-hash.js';
import { SeenWindow } from '../seen-window.js';
import { resolveView } from '../source.js';
import { captureLogger, makeSource, measureMemory, pollAndCommit, pollContext, readUntil, removeTempDirs, sourceContext } from './harness.js';

/**
 * What the shared db-poll suite needs from a real database. Each test file
 * (Postgres, MariaDB) implements it with its own SQL; the scenarios are the
 * same for both, as the configuration shape is.
 */
export interface PollTestDatabase {
  /**
   * Creates a fresh database, the tables `orders`, `customers`, `items`, `readings`, their `v_*` views
   * (and `v_slow_orders`: the orders, ~100 ms per query), a SELECT-only role and a role that may also write.
   */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  readOnlyUrl(): string;
  writerUrl(): string;
  /** A URL, password `wrong-pw-4711`, whose login the server rejects; `login` is how messages must name it (user@host:port/db). */
  badLogin(): { url: string; login: string };
  /** The view name as a user writes it in ferry.yaml (`erp.v_open_orders`). */
  view(base: 'v_open_orders' | 'v_slow_orders' | 'v_customers' | 'v_items' | 'v_readings'): string;
  /** Runs a statement as the writer role in an ordinary transaction, rolled back; returns the rows it changed. */
  execAsWriter(sql: string): Promise<number>;
  /** How the server refuses a write in a read-only transaction: Postgres SQLSTATE 25006, MariaDB error 1792. */
  readOnlyRefusal: { code?: string; errno?: number };
  /** Runs a statement of portable SQL on an admin connection (tables named by `table`). */
  exec(sql: string): Promise<void>;
  table(base: 'orders' | 'customers' | 'items' | 'readings'): string;
  /** `n` orders whose updated_at takes only `distinctTimes` values (an hour ago), created_at = updated_at, version 1. */
  seedOrders(n: number, distinctTimes: number): Promise<void>;
  /** One order whose updated_at is `agoMs` before now, committed `holdMs` after the insert (a late commit). */
  insertOrder(orderNo: number, agoMs: number, holdMs: number): Promise<void>;
  /** version + 1 and updated_at = now for these orders. */
  touchOrders(orderNos: number[]): Promise<void>;
  /** [order_no, version] of every order. */
  orderVersions(): Promise<Array<[number, number]>>;
  /** Customers keyOf(1..n), where keys sort differently by bytes than by the default collation. */
  seedCustomers(n: number): Promise<void>;
  seedItems(n: number): Promise<void>;
  /** Readings 1..n (reading_no, taken_at, value), taken one second apart from 2024-01-01 00:00:00 UTC on. */
  seedReadings(n: number): Promise<void>;
  /** Another session inserts order `orderNo` and holds an exclusive lock on `orders` until the returned function runs. */
  lockOrdersWithPendingRow(orderNo: number): Promise<() => Promise<void>>;
  /** Ends every server session of the read-only role, as a database restart or a network cut would. */
  killReaderSessions(): Promise<void>;
  /** pageSize for the 200k-row diff (MySQL sorts BINARY keys without an index, so bigger pages). */
  bigPageSize: number;
}

/** Customer keys: mixed case, umlauts and (for late inserts) emoji, so byte order and collation order differ. */
export function customerKey(i: number): string {
  const prefix = i > 200_000 && i % 2 === 0 ? '😀' : (['b', 'B', 'ä'][i % 3] ?? 'b');
  return `${prefix}-${String(i).padStart(7, '0')}`;
}

const sqlList = (values: readonly (string | number)[]): string => values.map((v) => (typeof v === 'number' ? String(v) : `'${v.replace(/'/g, "''")}'`)).join(', ');

/** Deterministic pseudo-random numbers, so a failing run can be repeated. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function pickDistinct(count: number, from: number, to: number, random: () => number, exclude: Set<number> = new Set()): number[] {
  const picked = new Set<number>();
  while (picked.size < count) {
    const n = from + Math.floor(random() * (to - from + 1));
    if (!exclude.has(n)) picked.add(n);
  }
  return [...picked];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The tests share one database; each that needs the 3000 seeded orders makes sure they are there, so any one can run alone. */
async function ensureOrders(db: PollTestDatabase): Promise<void> {
  if ((await db.orderVersions()).length < 3000) await db.seedOrders(3000, 4);
}

export function dbPollSuite(name: string, db: PollTestDatabase): void {
  describe(`db-poll on ${name}`, () => {
    beforeAll(() => db.setup());
    afterAll(async () => {
      await db.teardown();
      await removeTempDirs();
    });

    it('incremental: rows sharing updated_at and rows committed during polls are all delivered, none twice', async () => {
      await ensureOrders(db);
      const { logger } = captureLogger();
      const source = makeSource({
        connection: db.readOnlyUrl(),
        every: '150ms',
        pageSize: 200,
        // Wider than any commit lag a loaded machine gives the late rows below (~1.2 s behind their timestamp when
        // idle: 800 ms old plus a 400 ms hold), yet those rows still fall behind the cursor, which rows committed
        // meanwhile with the current time have moved past them: only the look-back catches them.
        lookBackMs: 10_000,
        requireReadOnly: true,
        views: [{ name: db.view('v_open_orders'), mode: 'incremental', cursor: ['updated_at', 'order_no'], key: ['order_no'], createdColumn: 'created_at' }],
      });
      await source.open(undefined, await sourceContext(logger));
      const random = rng(7);
      let expected: Array<[number, number]> | undefined;
      const writer = (async () => {
        for (let round = 0; round < 12; round++) {
          // Some rows land with an older timestamp than rows already committed: late commits the look-back must catch.
          await Promise.all([0, 1, 2, 3].map((j) => db.insertOrder(10_000 + round * 10 + j, j % 2 === 0 ? 800 : 0, j === 0 ? 400 : 0)));
          await db.touchOrders(pickDistinct(15, 1, 3000, random));
          await sleep(80);
        }
        expected = await db.orderVersions();
      })();
      const delivered = new Map<number, Set<number>>();
      const changeIds = new Map<string, number>();
      const seenUpTo = { batches: 0 };
      const note = (records: readonly SourceRecord[]): void => {
        for (const r of records) {
          const no = Number(r.data.order_no);
          const versions = delivered.get(no) ?? new Set<number>();
          versions.add(Number(r.data.version));
          delivered.set(no, versions);
          changeIds.set(r.changeId, (changeIds.get(r.changeId) ?? 0) + 1);
        }
      };
      const { batches, stoppedInMs } = await readUntil(
        source,
        (all) => {
          for (; seenUpTo.batches < all.length; seenUpTo.batches++) note(all[seenUpTo.batches]!.records);
          return expected !== undefined && expected.every(([no, v]) => delivered.get(no)?.has(v));
        },
        120_000,
      );
      await writer;
      await source.close();
      for (; seenUpTo.batches < batches.length; seenUpTo.batches++) note(batches[seenUpTo.batches]!.records);

      const missing = expected!.filter(([no, v]) => !delivered.get(no)?.has(v));
      expect(missing).toEqual([]);
      expect(expected!.length).toBe(3048);
      expect([...changeIds].filter(([, n]) => n > 1)).toEqual([]);
      expect(stoppedInMs).toBeLessThan(5000);

      const records = batches.flatMap((b) => b.records);
      const first = records.find((r) => r.data.order_no === 1)!;
      expect(first.origin).toEqual({ kind: 'table', name: db.view('v_open_orders') });
      expect(first.op).toBe('c');
      expect(first.data.amount).toBe('1.25');
      // timestamptz / TIMESTAMP carry Z; a zone-less DATETIME stays zone-less.
      expect(first.data.updated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?$/);
      expect(first.location).toMatch(new RegExp(`^${db.view('v_open_orders').replace('.', '\\.')} cursor \\(\\d{4}-\\d\\d-\\d\\dT[^,]+, 1\\)$`));
      expect(JSON.parse(first.position)).toHaveLength(2);
      expect(records.some((r) => r.op === 'u' && Number(r.data.version) > 1)).toBe(true);
      expect(records.every((r) => (Number(r.data.version) > 1 ? r.op === 'u' : r.op === 'c'))).toBe(true);
    }, 180_000); // the 120 s read, which outlasts the writer's twelve rounds, plus seeding

    it('incremental: the look-back memory holds only the rows inside the window, however many rows a poll reads', async () => {
      await db.seedReadings(20_000);
      const { logger } = captureLogger();
      const dialect = await connectDialect(db.readOnlyUrl());
      try {
        const config = { name: db.view('v_readings'), mode: 'incremental' as const, cursor: ['taken_at', 'reading_no'], key: ['reading_no'] };
        const view = resolveView(config, await dialect.describe(config.name, 30_000));
        const ctx = pollContext(dialect, logger, { pageSize: 500 });
        const state: IncrementalState = {};
        const seen = new SeenWindow();
        let emitted = 0;
        let most = 0;
        for await (const records of pollIncremental(view, state, 10_000, ctx, seen)) {
          emitted += records.length;
          most = Math.max(most, seen.size);
        }
        expect(emitted).toBe(20_000);
        // Readings are a second apart, so a 10 s window holds 11 of them, not the 20,000 the poll read.
        expect(most).toBe(11);
        expect(state.seen).toHaveLength(11);

        // The next poll re-reads the window without emitting it again, and does emit a reading committed late inside it.
        await db.exec(`INSERT INTO ${db.table('readings')} (reading_no, taken_at, value) VALUES (20001, '2024-01-01 05:33:15', 7)`);
        const again: SourceRecord[] = [];
        for await (const records of pollIncremental(view, state, 10_000, ctx)) again.push(...records);
        expect(again.map((r) => r.data.reading_no)).toEqual([20_001]);
        expect(state.seen).toHaveLength(12);
      } finally {
        await dialect.close();
      }
    });

    it('a slow poll never overlaps the next, however short the interval; records carry the poll start as time and the cursor as position', async () => {
      await ensureOrders(db);
      const { logger } = captureLogger();
      const view = db.view('v_slow_orders');
      const views = [{ name: view, mode: 'incremental' as const, cursor: ['updated_at', 'order_no'], key: ['order_no'] }];
      // Start at the end of the view, so that only the rows touched below are read (in pages of 3, ~100 ms each).
      const probe = makeSource({ connection: db.readOnlyUrl(), pageSize: 5000, lookBackMs: 0, views });
      await probe.open(undefined, await sourceContext(logger));
      const caughtUp = await pollAndCommit(probe, undefined, () => undefined);
      await probe.close();

      const source = makeSource({ connection: db.readOnlyUrl(), every: '10ms', pageSize: 3, lookBackMs: 0, views });
      await source.open(caughtUp, await sourceContext(logger));
      const random = rng(11);
      let writing = true;
      const writer = (async () => {
        while (writing) {
          await db.touchOrders(pickDistinct(2, 1, 3000, random));
          await sleep(100);
        }
      })();
      const polls: Array<{ time: string; first: number; last: number }> = [];
      const started = Date.now();
      const abort = new AbortController();
      const deadline = setTimeout(() => abort.abort(), 90_000);
      try {
        for await (const batch of source.read(abort.signal)) {
          const at = Date.now();
          await source.commit(batch.checkpoint);
          if (batch.records.length === 0) continue;
          expect(new Set(batch.records.map((r) => r.time)).size, 'one batch, one poll time').toBe(1);
          const time = batch.records[0]!.time;
          const current = polls[polls.length - 1];
          if (current?.time === time) current.last = at;
          else polls.push({ time, first: at, last: at });
          // The position is the record's cursor, in the driver's form; the batch's checkpoint holds the last record's.
          for (const r of batch.records) {
            const [updatedAt, orderNo] = JSON.parse(r.position) as [unknown, unknown];
            expect(Number(orderNo)).toBe(Number(r.data.order_no));
            expect(isoTime(String(updatedAt), false)).toBe(r.data.updated_at);
          }
          const checkpoint = batch.checkpoint as unknown as { views: Record<string, { cursor: unknown[] }> };
          expect(JSON.parse(batch.records[batch.records.length - 1]!.position)).toEqual(checkpoint.views[view]!.cursor);
          if (polls.length >= 6) abort.abort();
        }
      } finally {
        clearTimeout(deadline);
        writing = false;
        await writer;
        await source.close();
      }
      expect(polls.length).toBeGreaterThanOrEqual(6);
      expect(new Set(polls.map((p) => p.time)).size, 'a poll handed over a batch after the next poll had started').toBe(polls.length);
      for (const [i, poll] of polls.entries()) {
        const start = Date.parse(poll.time);
        expect(start).toBeGreaterThanOrEqual(started);
        // The time is the poll's start, before its first (slow, ~100 ms) page came back...
        expect(poll.first - start).toBeGreaterThanOrEqual(80);
        // ...and after everything the previous poll handed over: one poll at a time.
        if (i > 0) expect(start).toBeGreaterThanOrEqual(polls[i - 1]!.last);
      }
    }, 150_000);

    it('diff: 200,000 rows with random inserts, updates and deletes between polls emit exactly those changes, in bounded memory', async () => {
      const total = 200_000;
      const customers = db.table('customers');
      const { logger } = captureLogger();
      const config = { connection: db.readOnlyUrl(), pageSize: db.bigPageSize, views: [{ name: db.view('v_customers'), mode: 'diff' as const, key: ['customer_no'] }] };
      /** A first poll (every row `c`) of a fresh source, its live heap sampled after every batch. */
      const firstPoll = async (): Promise<{ source: DbPollSource; checkpoint: Checkpoint | undefined; created: number; mem: Awaited<ReturnType<typeof measureMemory>> }> => {
        const source = makeSource(config);
        await source.open(undefined, await sourceContext(logger));
        let created = 0;
        const mem = await measureMemory((sample) =>
          pollAndCommit(source, undefined, (records) => {
            created += records.filter((r) => r.op === 'c').length;
            sample();
          }),
        );
        return { source, checkpoint: mem.result, created, mem };
      };

      // The same poll over a tenth of the rows: what bounded memory costs anyway (a page, a chunk of records, the driver).
      await db.seedCustomers(total / 10);
      const small = await firstPoll();
      await small.source.close();
      expect(small.created).toBe(total / 10);
      await db.exec(`DELETE FROM ${customers}`);
      await db.seedCustomers(total);
      const big = await firstPoll();
      const { source } = big;
      expect(big.created).toBe(total);
      const first = big.mem;

      const random = rng(42);
      const deleted = pickDistinct(400, 1, total, random);
      const updated = pickDistinct(600, 1, total, random, new Set(deleted));
      const inserted = Array.from({ length: 300 }, (_, i) => total + 1 + i);
      await db.exec(`DELETE FROM ${customers} WHERE customer_no IN (${sqlList(deleted.map(customerKey))})`);
      await db.exec(`UPDATE ${customers} SET balance = balance + 1 WHERE customer_no IN (${sqlList(updated.map(customerKey))})`);
      await db.exec(`INSERT INTO ${customers} (customer_no, name, balance) VALUES ${inserted.map((i) => `(${sqlList([customerKey(i), `new ${i}`])}, 0.10)`).join(', ')}`);

      const changes: SourceRecord[] = [];
      const second = await measureMemory((sample) =>
        pollAndCommit(source, big.checkpoint, (records) => {
          changes.push(...records);
          sample();
        }),
      );
      const keysOf = (op: string): string[] => changes.filter((r) => r.op === op).map((r) => String(r.data.customer_no)).sort();
      expect(keysOf('c')).toEqual(inserted.map(customerKey).sort());
      expect(keysOf('u')).toEqual(updated.map(customerKey).sort());
      expect(keysOf('d')).toEqual(deleted.map(customerKey).sort());
      expect(changes).toHaveLength(1300);
      const aDelete = changes.find((r) => r.op === 'd')!;
      expect(aDelete.before).toEqual({ customer_no: aDelete.data.customer_no });

      // A poll with nothing changed emits nothing: shown on a smaller view in the stop-mid-poll test, to keep this file fast.
      await source.close();
      // eslint-disable-next-line no-console
      console.log(
        `[db-poll ${name}] diff of ${total} rows: first poll peak RSS ${first.peakRssMiB} MiB (+${first.rssGrowthMiB} MiB, heap +${first.heapGrowthMiB} MiB, ` +
          `per batch +${first.sampledHeapGrowthMiB} MiB vs +${small.mem.sampledHeapGrowthMiB} MiB for ${total / 10} rows); ` +
          `second poll peak RSS ${second.peakRssMiB} MiB (+${second.rssGrowthMiB} MiB, heap +${second.heapGrowthMiB} MiB, per batch +${second.sampledHeapGrowthMiB} MiB)`,
      );
      // Ten times the rows, the same memory: holding the 180,000 extra keys alone (a string and a hash each) would
      // add over 15 MiB, holding their rows far more. The margin covers what differs between two runs (JIT, caches).
      expect(first.sampledHeapGrowthMiB - small.mem.sampledHeapGrowthMiB).toBeLessThan(6);
      expect(second.sampledHeapGrowthMiB - small.mem.sampledHeapGrowthMiB).toBeLessThan(6);
    }, 300_000);

    it('a role with write grants: check() reports it, requireReadOnly refuses naming the grants, otherwise a warning', async () => {
      const views = [{ name: db.view('v_open_orders'), mode: 'incremental' as const, cursor: ['updated_at', 'order_no'], key: ['order_no'] }];
      const { logger, lines } = captureLogger();

      const writer = makeSource({ connection: db.writerUrl(), requireReadOnly: true, views });
      const found = await writer.check();
      const readOnly = found.find((r) => r.name === 'db-poll read-only role')!;
      expect(readOnly.ok).toBe(false);
      expect(readOnly.severity).toBe('error');
      expect(readOnly.detail).toMatch(/INSERT/);
      expect(readOnly.detail).toMatch(/UPDATE/);
      expect(readOnly.fix).toMatch(/^REVOKE .*INSERT.* FROM /);
      const refused = await writer.open(undefined, await sourceContext(logger)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await writer.close();
      expect(refused).toBeInstanceOf(FerryError);
      expect((refused as FerryError).code).toBe('FERRY_SOURCE_NOT_READ_ONLY');
      expect((refused as FerryError).message).toMatch(/INSERT, UPDATE|INSERT.*UPDATE/);
      expect((refused as FerryError).fix).toMatch(/REVOKE/);

      const lenient = makeSource({ connection: db.writerUrl(), requireReadOnly: false, views });
      await lenient.open(undefined, await sourceContext(logger));
      await lenient.close();
      expect(lines.some((l) => l.level === 40 && l.code === 'FERRY_SOURCE_NOT_READ_ONLY')).toBe(true);

      const unsafe = await makeSource({ connection: db.readOnlyUrl(), lookBackMs: 0, views }).check();
      expect(unsafe.filter((r) => !r.ok).map((r) => [r.name, r.severity])).toEqual([['db-poll look-back', 'warning']]);
      // The default look-back (one minute) needs no warning: the issue's reference config, as written, is safe.
      const reader = makeSource({ connection: db.readOnlyUrl(), requireReadOnly: true, views });
      const clean = await reader.check();
      expect(clean.filter((r) => !r.ok)).toEqual([]);
      expect(clean.map((r) => r.name)).toEqual(['db-poll connection', 'db-poll read-only role', `db-poll view ${db.view('v_open_orders')}`]);
    });

    it('every statement runs in a READ ONLY transaction: a write through the dialect\'s own query path is refused by the server', async () => {
      const insert = `INSERT INTO ${db.view('v_open_orders')} (order_no, updated_at, created_at, status, amount, version) VALUES (99999, '2024-01-01 00:00:00', '2024-01-01 00:00:00', 'sneaky', 1, 1)`;
      // The writer role may insert into the view: outside db-poll the statement works (and is rolled back).
      expect(await db.execAsWriter(insert)).toBe(1);
      const dialect = (await connectDialect(db.writerUrl())) as Dialect & { readOnly(sql: string, params: unknown[], timeoutMs: number): Promise<unknown> };
      try {
        const refused = await dialect.readOnly(insert, [], 5000).then(
          () => undefined,
          (e: unknown) => e as { code?: string; errno?: number; message: string },
        );
        expect(refused, 'the INSERT went through').toBeDefined();
        expect({ code: refused!.code, errno: refused!.errno }).toMatchObject(db.readOnlyRefusal);
        expect(refused!.message).toMatch(/read[- ]only transaction/i);
        // The connection is fine afterwards: the failed transaction was rolled back.
        expect(await dialect.describe(db.view('v_open_orders'), 5000)).not.toHaveLength(0);
      } finally {
        await dialect.close();
      }
      expect((await db.orderVersions()).filter(([no]) => no === 99999)).toEqual([]);
    });

    it('a rejected login is FERRY_SOURCE_AUTH_FAILED (exit 2, not retried), naming user@host:port/db and never the password', async () => {
      const { url, login } = db.badLogin();
      const { logger } = captureLogger();
      const source = makeSource({ connection: url, views: [{ name: db.view('v_items'), mode: 'diff', key: ['item_no'] }] });
      const failed = await source.open(undefined, await sourceContext(logger)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await source.close();
      expect(failed).toBeInstanceOf(FerryError);
      expect(failed).not.toBeInstanceOf(RetryableError);
      const error = failed as FerryError;
      expect(error.code).toBe('FERRY_SOURCE_AUTH_FAILED');
      expect(ERROR_CODES[error.code].exit).toBe(2);
      expect(error.message).toContain(`log in as ${login}: `);
      expect(error.where).toBe('source.connection');
      expect(error.fix).toContain(login);
      expect(`${error.describe()} ${JSON.stringify(error)}`).not.toContain('wrong-pw-4711');

      const checked = await makeSource({ connection: url, views: [{ name: db.view('v_items'), mode: 'diff', key: ['item_no'] }] }).check();
      expect(checked).toEqual([{ name: 'db-poll connection', ok: false, detail: error.message, fix: error.fix }]);
    });

    it('a query timeout on a locked table is a clear logged error; the next poll succeeds and nothing is lost', async () => {
      const { logger, lines } = captureLogger();
      const views = [{ name: db.view('v_open_orders'), mode: 'incremental' as const, cursor: ['updated_at', 'order_no'], key: ['order_no'] }];
      const source = makeSource({ connection: db.readOnlyUrl(), queryTimeoutMs: 700, views });
      await ensureOrders(db);
      await source.open(undefined, await sourceContext(logger));
      let count = 0;
      const caughtUp = await pollAndCommit(source, undefined, (r) => (count += r.length));
      expect(count).toBeGreaterThanOrEqual(3000);

      const release = await db.lockOrdersWithPendingRow(90_001);
      const during: SourceRecord[] = [];
      const started = Date.now();
      const afterTimeout = await pollAndCommit(source, caughtUp, (r) => during.push(...r));
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(during).toEqual([]);
      expect(afterTimeout).toEqual(caughtUp);
      const error = lines.find((l) => l.code === 'FERRY_SOURCE_QUERY_TIMEOUT');
      expect(error).toBeDefined();
      expect(String(error!.msg)).toContain(db.view('v_open_orders'));
      expect(String(error!.msg)).toContain('700 ms');

      // Stopping while a query waits on the lock: read() returns and close() finishes within seconds, not after the 20 s timeout.
      const patient = makeSource({ connection: db.readOnlyUrl(), queryTimeoutMs: 20_000, views });
      await patient.open(caughtUp, await sourceContext(logger));
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 300);
      const stopping = Date.now();
      for await (const batch of patient.read(abort.signal)) expect(batch.records).toEqual([]);
      await patient.close();
      expect(Date.now() - stopping).toBeLessThan(10_000);

      await release();
      const after: SourceRecord[] = [];
      await pollAndCommit(source, afterTimeout, (r) => after.push(...r));
      await source.close();
      expect(after.map((r) => r.data.order_no)).toContain(90_001);
    });

    it('a cursor that does not identify a row stops the source with FERRY_CONFIG_INVALID rather than skip rows', async () => {
      await ensureOrders(db);
      const { logger } = captureLogger();
      const source = makeSource({ connection: db.readOnlyUrl(), views: [{ name: db.view('v_open_orders'), mode: 'incremental', cursor: ['updated_at'], key: ['order_no'] }] });
      await source.open(undefined, await sourceContext(logger));
      const failed = await pollAndCommit(source, undefined, () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      await source.close();
      expect((failed as FerryError).code).toBe('FERRY_CONFIG_INVALID');
      expect((failed as FerryError).message).toContain('[updated_at]');
      expect((failed as FerryError).where).toContain('.cursor');
    });

    it('a dropped connection is a RetryableError; reopening from the checkpoint resumes without loss', async () => {
      const { logger } = captureLogger();
      const views = [{ name: db.view('v_open_orders'), mode: 'incremental' as const, cursor: ['updated_at', 'order_no'], key: ['order_no'] }];
      const source = makeSource({ connection: db.readOnlyUrl(), views });
      await source.open(undefined, await sourceContext(logger));
      const committed = await pollAndCommit(source, undefined, () => undefined);
      await db.killReaderSessions();
      await db.insertOrder(90_002, 0, 0);
      const failed = await pollAndCommit(source, committed, () => undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      await source.close();
      expect(failed).toBeInstanceOf(RetryableError);
      expect((failed as RetryableError).message).toContain(db.view('v_open_orders'));

      const reopened = makeSource({ connection: db.readOnlyUrl(), views });
      await reopened.open(committed, await sourceContext(logger));
      const resumed: SourceRecord[] = [];
      await pollAndCommit(reopened, committed, (r) => resumed.push(...r));
      await reopened.close();
      expect(resumed.map((r) => r.data.order_no)).toEqual([90_002]);
    });

    it('stopped mid-poll without commit: reopening from the last committed checkpoint re-delivers with the same change ids', async () => {
      // Incremental: commit after batch 2 of 5, then stop.
      const views = [{ name: db.view('v_open_orders'), mode: 'incremental' as const, cursor: ['updated_at', 'order_no'], key: ['order_no'] }];
      const { logger } = captureLogger();
      await ensureOrders(db);
      const first = makeSource({ connection: db.readOnlyUrl(), pageSize: 100, views });
      await first.open(undefined, await sourceContext(logger));
      const abort = new AbortController();
      const firstRun: SourceRecord[][] = [];
      let committed: Checkpoint | undefined;
      for await (const batch of first.read(abort.signal)) {
        firstRun.push(batch.records);
        if (firstRun.length === 2) {
          committed = batch.checkpoint;
          await first.commit(committed);
        }
        if (firstRun.length === 5) break;
      }
      await first.close();
      const second = makeSource({ connection: db.readOnlyUrl(), pageSize: 100, views });
      await second.open(committed, await sourceContext(logger));
      const secondRun: SourceRecord[] = [];
      await pollAndCommit(second, committed, (r) => secondRun.push(...r));
      await second.close();
      const all = new Set([...firstRun.slice(0, 2).flat(), ...secondRun].map((r) => Number(r.data.order_no)));
      const rows = await db.orderVersions();
      expect(rows.filter(([no]) => !all.has(no))).toEqual([]);
      const again = new Set(secondRun.map((r) => r.changeId));
      expect(firstRun.slice(2).flat().filter((r) => !again.has(r.changeId))).toEqual([]);

      // Diff: the second poll is stopped after two batches, before its last batch (the new generation) is committed.
      await db.seedItems(5000);
      const dataDir = (await sourceContext(logger)).dataDir;
      const diffViews = [{ name: db.view('v_items'), mode: 'diff' as const, key: ['item_no'] }];
      const a = makeSource({ connection: db.readOnlyUrl(), pageSize: 500, views: diffViews });
      await a.open(undefined, await sourceContext(logger, dataDir));
      const base = await pollAndCommit(a, undefined, () => undefined);
      const items = db.table('items');
      await db.exec(`DELETE FROM ${items} WHERE item_no % 100 = 7`);
      await db.exec(`UPDATE ${items} SET qty = qty + 1 WHERE item_no % 100 = 42`);
      await db.exec(`INSERT INTO ${items} (item_no, label, qty) VALUES ${Array.from({ length: 50 }, (_, i) => `(${6000 + i}, 'late ${i}', 1)`).join(', ')}`);
      const partial: SourceRecord[] = [];
      let pulled = 0;
      for await (const batch of a.poll(new AbortController().signal)) {
        partial.push(...batch.records);
        if (++pulled === 2) break;
      }
      await a.close();
      expect(partial.length).toBeGreaterThan(0);

      const b = makeSource({ connection: db.readOnlyUrl(), pageSize: 500, views: diffViews });
      await b.open(base, await sourceContext(logger, dataDir));
      const redone: SourceRecord[] = [];
      const next = await pollAndCommit(b, base, (r) => redone.push(...r));
      expect(redone.filter((r) => r.op === 'd')).toHaveLength(50);
      expect(redone.filter((r) => r.op === 'u')).toHaveLength(50);
      expect(redone.filter((r) => r.op === 'c')).toHaveLength(50);
      const redoneIds = new Set(redone.map((r) => r.changeId));
      expect(partial.filter((r) => !redoneIds.has(r.changeId))).toEqual([]);
      const quiet: SourceRecord[] = [];
      await pollAndCommit(b, next, (r) => quiet.push(...r));
      await b.close();
      expect(quiet).toEqual([]);
    });

    it('diff: a restart from a mid-poll checkpoint resumes after its key; without the unfinished generation it polls again, same change ids', async () => {
      await ensureOrders(db);
      const { logger, lines } = captureLogger();
      const views = [{ name: db.view('v_open_orders'), mode: 'diff' as const, key: ['order_no'] }];
      const config = { connection: db.readOnlyUrl(), pageSize: 400, views };
      const reference = makeSource(config);
      await reference.open(undefined, await sourceContext(logger));
      const all: string[] = [];
      await pollAndCommit(reference, undefined, (r) => all.push(...r.map((x) => x.changeId)));
      await reference.close();

      // Two batches are durable (the second one's checkpoint is stored), the third was read but not; then a crash.
      const dataDir = (await sourceContext(logger)).dataDir;
      const a = makeSource(config);
      await a.open(undefined, await sourceContext(logger, dataDir));
      const durable: string[] = [];
      let stored: Checkpoint | undefined;
      let pulled = 0;
      for await (const batch of a.poll(new AbortController().signal)) {
        if (++pulled === 3) break;
        durable.push(...batch.records.map((r) => r.changeId));
        stored = batch.checkpoint;
        await a.commit(stored);
      }
      await a.close();
      expect(stored).toMatchObject({ views: { [db.view('v_open_orders')]: { gen: 0, partial: { bytes: expect.any(Number) } } } });

      const b = makeSource(config);
      await b.open(stored, await sourceContext(logger, dataDir));
      const resumed: string[] = [];
      const finished = await pollAndCommit(b, stored, (r) => resumed.push(...r.map((x) => x.changeId)));
      await b.close();
      expect([...durable, ...resumed]).toEqual(all);
      expect(finished).toEqual({ views: { [db.view('v_open_orders')]: { gen: 1 } } });

      // The machine crashed too: the unfinished generation is gone. The poll is redone, with the same ids.
      await rm(join(dataDir, 'db-poll'), { recursive: true, force: true });
      const c = makeSource(config);
      await c.open(stored, await sourceContext(logger, dataDir));
      const redone: string[] = [];
      await pollAndCommit(c, stored, (r) => redone.push(...r.map((x) => x.changeId)));
      await c.close();
      expect(redone).toEqual(all);
      expect(lines.some((l) => l.level === 40 && /unfinished row hashes/.test(String(l.msg)))).toBe(true);
    });
  });
}
