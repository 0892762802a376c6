import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../agent/errors/index.js';
import type { Checkpoint, SourceRecord } from '../../agent/plugin/source.js';
import { compareLsn } from '../../sources/postgres-cdc/lsn.js';
import { ReplicationStream } from '../../sources/postgres-cdc/replication-stream.js';
import { createSlot, ensurePublication } from '../../sources/postgres-cdc/slot.js';
import { connect } from '../../sources/postgres-cdc/connection.js';
import { Driver, makeSource, TestDatabase } from './postgres-cdc.helpers.js';
import { settled } from '../support/agent-process.js';

const db = new TestDatabase();

beforeAll(async () => {
  await db.create();
  await db.sql(`
    CREATE TABLE public.events (id int PRIMARY KEY, v text);
    CREATE TABLE public.noise (id serial PRIMARY KEY, v text);
    CREATE TABLE public.heartbeat (id int PRIMARY KEY, ts timestamptz);
    INSERT INTO public.heartbeat VALUES (1, '2000-01-01');`);
});
afterAll(() => db.drop());

/** `promise`, or a failure naming `what` if it has not settled within `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('postgres-cdc stream faults', () => {
  it('turns a dropped connection into a RetryableError, and the reopened source loses nothing', async () => {
    const source = () => makeSource(db, { slot: 'fault_drop', publication: 'pub_events', tables: ['public.events'], snapshot: 'never' });
    const first = await new Driver(source()).open();
    let cp: Checkpoint;
    let uncommitted: SourceRecord[];
    try {
      await db.sql(`INSERT INTO public.events VALUES (1, 'a')`);
      await first.count(1);
      cp = await first.commitAll();
      await db.sql(`INSERT INTO public.events VALUES (2, 'b')`);
      uncommitted = (await first.count(2)).slice(1);
      const pid = (await db.slot('fault_drop'))?.active_pid;
      await db.sql(`SELECT pg_terminate_backend($1)`, [pid]);
      const error = await first.until(() => false, 30_000).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(RetryableError);
    } finally {
      await first.close();
    }
    await db.sql(`INSERT INTO public.events VALUES (3, 'while down')`);
    const second = await new Driver(source()).open(cp);
    try {
      const records = await second.count(2);
      expect(records[0]).toEqual(uncommitted[0]);
      expect(records.map((r) => r.data.id)).toEqual([2, 3]);
    } finally {
      await second.close();
    }
  });

  it('moves an idle slot forward with heartbeats, runs heartbeatQuery and reports slot lag', async () => {
    const driver = await new Driver(
      makeSource(db, { slot: 'fault_idle', publication: 'pub_events', tables: ['public.events'], snapshot: 'never', heartbeatMs: 200, heartbeatQuery: 'UPDATE public.heartbeat SET ts = now()' }),
    ).open();
    try {
      const startLsn = (await db.slot('fault_idle'))!.confirmed_flush_lsn;
      // Busy elsewhere: none of these tables is captured.
      for (let i = 0; i < 20; i++) await db.sql(`INSERT INTO public.noise (v) SELECT md5(g::text) FROM generate_series(1, 200) g`);
      const walAfterNoise = (await db.sql<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`))[0]!.lsn;
      await driver.until(() => driver.batches.length > 0 && compareLsn((driver.lastCheckpoint as { lsn: string }).lsn, walAfterNoise) >= 0, 30_000);
      expect(driver.records).toHaveLength(0);
      const cp = await driver.commitAll();
      await expect.poll(async () => (await db.slot('fault_idle'))!.confirmed_flush_lsn, { timeout: 30_000 }).toBe((cp as { lsn: string }).lsn);
      expect(compareLsn((cp as { lsn: string }).lsn, startLsn)).toBeGreaterThan(0);
      await expect.poll(async () => (await db.sql(`SELECT ts > now() - interval '1 minute' AS fresh FROM public.heartbeat`))[0]!.fresh, { timeout: 30_000 }).toBe(true);
      await expect.poll(() => driver.source.lag?.().length, { timeout: 30_000 }).toBe(1);
      expect(driver.source.lag()).toEqual([{ unit: 'bytes', value: expect.any(Number) }]);
    } finally {
      await driver.close();
    }
  });

  it('pauses the socket while nobody pulls: a large transaction stays bounded in memory', async () => {
    const client = await connect(db.url, 'query');
    await ensurePublication(client, 'pub_events', ['public.events'], 'test');
    const startLsn = await createSlot(client, 'fault_pause');
    await client.end();
    const stream = new ReplicationStream({
      connection: db.url, slot: 'fault_pause', publication: 'pub_events', tables: new Set(['public.events']),
      startLsn, heartbeatMs: 1000, highWater: 500, where: 'test', logger: pino({ level: 'silent' }),
    });
    await stream.start();
    const signal = new AbortController().signal;
    try {
      await db.sql(`INSERT INTO public.events SELECT g, repeat('x', 100) FROM generate_series(1000, 40999) g`);
      await expect.poll(() => stream.buffered, { timeout: 30_000 }).toBeGreaterThanOrEqual(500);
      // Then it stops growing: paused at highWater plus what one socket read can hold. Unpaused, it would grow
      // on towards 40,000 before it stood still, however slowly the machine delivers them.
      expect(await settled("the stream's buffer", () => stream.buffered)).toBeLessThan(2500);
      let changes = 0;
      for (;;) {
        const item = await stream.take(signal);
        if (item?.kind === 'change') changes++;
        if (item?.kind === 'commit') break;
      }
      expect(changes).toBe(40_000);
      // Stopping while paused must not hang on the unread socket.
      await db.sql(`INSERT INTO public.events SELECT g, 'y' FROM generate_series(50000, 59999) g`);
      await expect.poll(() => stream.buffered, { timeout: 30_000 }).toBeGreaterThanOrEqual(500);
      // A stop waiting for the server's end on a paused socket would wait forever (nothing reads it).
      await within(30_000, stream.stop(), 'stop() while paused');
    } finally {
      await stream.stop();
    }
  });

  it('finishes read promptly when the signal aborts, without throwing', async () => {
    const source = makeSource(db, { slot: 'fault_abort', publication: 'pub_events', tables: ['public.events'], snapshot: 'never' });
    const controller = new AbortController();
    await source.open(undefined, (await import('./postgres-cdc.helpers.js')).context());
    const iterator = source.read(controller.signal)[Symbol.asyncIterator]();
    let next = iterator.next();
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    // Heartbeat batches (WAL written by other tests) may still come; the end must follow on its own, not wait for
    // the server to time the connection out (wal_sender_timeout, 60 s by default) or forever.
    await within(30_000, (async () => {
      while (!(await next).done) next = iterator.next();
    })(), 'read() after the abort');
    await source.close();
  });
});
