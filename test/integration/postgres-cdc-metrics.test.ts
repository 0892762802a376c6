import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countLines, deleteRedisPrefix, freePort, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';
import { startStallingProxy, type StallingProxy } from '../support/stalling-proxy.js';
import { Driver, makeSource, TestDatabase } from './postgres-cdc.helpers.js';

/**
 * The replication slot lag of a running agent, as an operator's Prometheus
 * scrapes it from the admin server: present while the agent streams, rising
 * while the agent is behind (its queue stopped answering, so nothing it reads
 * becomes durable and the slot may not move), falling once it has caught up.
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_pgmetrics_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const running: FerryProcess[] = [];
const prefix = uniquePrefix('pgmetrics');
let redis: StallingProxy | undefined;

beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  await pgQuery(URL, `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
});

afterAll(async () => {
  redis?.resume();
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await redis?.close();
  await dropDatabaseAndSlots(ADMIN, DB);
  await deleteRedisPrefix(prefix);
});

/** `ferry_source_lag{pipeline="shop",unit="bytes"}` as /metrics shows it now; undefined while absent. */
async function scrapeLag(admin: string): Promise<number | undefined> {
  const res = await fetch(`http://${admin}/metrics`);
  expect(res.status).toBe(200);
  const line = (await res.text()).split('\n').find((l) => l.startsWith('ferry_source_lag{') && l.includes('pipeline="shop"') && l.includes('unit="bytes"'));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function walLsn(): Promise<string> {
  return String((await pgQuery(URL, `SELECT pg_current_wal_lsn()::text AS lsn`))[0]!.lsn);
}

async function walBytesBetween(from: string, to: string): Promise<number> {
  return Number((await pgQuery(URL, `SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS n`, [from, to]))[0]!.n);
}

describe('postgres-cdc slot lag on /metrics', () => {
  it('shows the slot lag in bytes, rising while the queue holds the agent back and falling once it caught up', async () => {
    redis = await startStallingProxy({ host: '127.0.0.1', port: 6379 });
    const admin = `127.0.0.1:${await freePort()}`;
    const ws = rowPipelineWorkspace({
      name: 'pg-metrics',
      prefix,
      logLevel: 'warn',
      admin,
      redis: `redis://127.0.0.1:${redis.port}`,
      tables: [{ mapping: 'orders', entity: 'order', table: 'public.orders' }],
      delivery: '{ partitions: 2, batch: { maxEvents: 500, maxWaitMs: 20 } }',
      source: `      type: postgres-cdc
      connection: "${URL}"
      publication: ferry_metrics
      slot: ${DB}_slot
      tables: [public.orders]
      snapshot: never
      heartbeatMs: 300`,
    });
    const agent = startAgent(ws.config);
    running.push(agent);

    // Includes the agent's start and the slot's creation, which waits for every transaction running on the server.
    await waitFor('the slot lag on /metrics', async () => (await scrapeLag(admin)) !== undefined || agent.proc.exitCode !== null, 60_000, 250);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    await pgQuery(URL, `INSERT INTO public.orders SELECT g, 1, 'warm-up' FROM generate_series(1, 100) g`);
    await waitFor('the first rows at the sink', () => countLines(ws.out) >= 100, 30_000, 100);

    // Behind: what the agent reads from here on cannot be made durable, so it may not confirm it.
    redis.stall();
    const before = await walLsn();
    // About 20 MB of WAL: well above what the other test files write on this server within a heartbeat or two.
    await pgQuery(URL, `INSERT INTO public.orders SELECT g, 1, repeat('x', 300) FROM generate_series(101, 50100) g`);
    const backlog = await walBytesBetween(before, await walLsn());
    expect(backlog).toBeGreaterThan(15_000_000);
    const behind = await waitFor('the lag to cover the backlog', async () => {
      const lag = await scrapeLag(admin);
      return lag !== undefined && lag >= backlog ? lag : undefined;
    }, 30_000, 250);
    // Nothing of the backlog got through: the agent really was behind, not just slow to report.
    expect(countLines(ws.out)).toBe(100);

    redis.resume();
    await waitFor('the backlog at the sink', () => countLines(ws.out) >= 50_100 || agent.proc.exitCode !== null, 120_000, 200);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    const caughtUp = await waitFor('the lag to fall below half the backlog', async () => {
      const lag = await scrapeLag(admin);
      return lag !== undefined && lag < backlog / 2 ? { lag } : undefined;
    }, 30_000, 250);
    expect(caughtUp.lag).toBeLessThan(behind);
    expect(await agent.stop()).toBe(0);
  }, 360_000); // the waits above add up to 270 s; the rest is the 50,000-row INSERT and the agent's stop
});

describe('postgres-cdc slot lag sampling', () => {
  const db = new TestDatabase();
  beforeAll(async () => {
    await db.create();
    await db.sql(`CREATE TABLE public.events (id int PRIMARY KEY, v text)`);
  });
  afterAll(() => db.drop());

  it('keeps sampling the slot lag while a heartbeatQuery fails', async () => {
    // A role that may not write the heartbeat table: the docs promise a warning, not a blind spot.
    const driver = await new Driver(
      makeSource(db, { slot: 'lag_bad_heartbeat', publication: 'pub_lag', tables: ['public.events'], snapshot: 'never', heartbeatMs: 200, heartbeatQuery: 'UPDATE public.no_such_heartbeat SET ts = now()' }),
    ).open();
    try {
      await db.sql(`INSERT INTO public.events VALUES (1, 'x')`);
      await driver.count(1);
      await expect.poll(() => driver.source.lag(), { timeout: 30_000 }).toEqual([{ unit: 'bytes', value: expect.any(Number) }]);
    } finally {
      await driver.close();
    }
  });
});
