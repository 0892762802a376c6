import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, uniquePrefix, type FerryProcess } from '../support/agent-process.js';
import { backlogThroughServerRestart, expectAllDelivered } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';
import { restartPostgres } from '../support/server-restart.js';
import { postgresCdcWorkspace, postgresWorkload } from '../support/workload-dialects.js';

/**
 * Postgres restarted while the agent streams a backlog from its slot: the
 * agent (the same process) reconnects with backoff, resumes from the slot at
 * its last confirmed LSN, and every committed change reaches the sink, in
 * per-key order, nothing rolled back. A fault test: it restarts the shared
 * server, so it runs alone after the rest (vitest.fault.config.ts).
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_pgrestart_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const TABLES = ['orders', 'customers'] as const;
const running: FerryProcess[] = [];
const prefix = uniquePrefix('pgrestart');

beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  for (const t of TABLES) {
    await pgQuery(URL, `CREATE TABLE public.${t} (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
    await pgQuery(URL, `INSERT INTO public.${t} SELECT g, 1, 'seed' FROM generate_series(1, 1000) g`);
  }
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropDatabaseAndSlots(ADMIN, DB);
  await deleteRedisPrefix(prefix);
});

const workload = postgresWorkload(URL);

describe('postgres-cdc through a Postgres restart', () => {
  it('reconnects the same agent, resumes from the slot and loses nothing', async () => {
    const ws = postgresCdcWorkspace({ name: 'pg-restart', prefix, url: URL, slot: `${DB}_slot`, publication: 'ferry_restart' });
    const { agent, expected, atRestart } = await backlogThroughServerRestart({ ...ws, running, tables: TABLES, seedRows: 1000, workload, restartServer: restartPostgres });
    // The restart hit the agent mid-stream: some of the 150,000-change backlog at the sink, not all of it.
    expect(atRestart).toBeGreaterThan(0);
    expect(atRestart).toBeLessThan(150_000);
    await expectAllDelivered(agent, ws.out, expected);
    expect(agent.stderr()).toContain('source failed; reopening from the last committed position');
    // The waits of test/support (snapshot 60 s, first streamed events 60 s, server back 60 s, every change 240 s) add up
    // to 420 s; the rest is the two workloads (170,000 changes), the restart itself and the agents' stops.
  }, 600_000);
});
