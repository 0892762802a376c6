import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { E2E_DELIVERY, expectAllDelivered, replayDifferences, replayedTables, snapshotThenWorkloadThroughKills, snapshotWhileWriting, rowPipelineWorkspace } from '../support/change-ledger.js';
import { postgresCdcWorkspace, postgresTableRows, postgresWorkload } from '../support/workload-dialects.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';

/**
 * Postgres CDC through the whole agent: a mixed workload over two tables
 * (≥ 200,000 row changes, some transactions rolled back) while the agent is
 * killed with SIGKILL at random moments and restarted; at the file sink every
 * committed change is present, per-key order holds and nothing rolled back
 * appears.
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_pge2e_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const TABLES = ['orders', 'customers'] as const;
const running: FerryProcess[] = [];
let prefix = '';
const prefixes: string[] = [];


beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  const c = new pg.Client({ connectionString: URL });
  await c.connect();
  for (const t of TABLES) await c.query(`CREATE TABLE public.${t} (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
  // Rows present before the agent starts come through the initial snapshot (op r).
  for (const t of TABLES) await c.query(`INSERT INTO public.${t} SELECT g, 1, 'seed' FROM generate_series(1, 1000) g`);
  await c.end();
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropDatabaseAndSlots(ADMIN, DB);
  for (const p of [prefix, ...prefixes]) if (p) await deleteRedisPrefix(p);
});

function workspace(): { dir: string; config: string; out: string } {
  prefix = uniquePrefix('pge2e');
  return postgresCdcWorkspace({ name: 'pg-e2e', prefix, url: URL, slot: `${DB}_slot`, publication: 'ferry_e2e' });
}

const workload = postgresWorkload(URL);

describe('postgres-cdc → queue → file sink', () => {
  it('delivers every committed change of a 200,000-change workload through SIGKILLs and restarts, in per-key order, nothing rolled back', async () => {
    const ws = workspace();
    // The snapshot first (2 × 1,000 seed rows as op r), then 200,000 changes through SIGKILLs.
    const { agent, expected } = await snapshotThenWorkloadThroughKills({ ...ws, running, tables: TABLES, seedRows: 1000, workload: () => workload(200_000) });
    expect(expected.size).toBeGreaterThanOrEqual(200_000);

    // The slot's lag reaches ferry status through the agent's heartbeat.
    await waitFor(
      'the slot lag in ferry status',
      async () => {
        const st = await runFerry(['status', '--config', ws.config, '--json']);
        const agents = (JSON.parse(st.stdout) as { pipelines: Array<{ agents: Array<{ lag?: Array<{ unit: string; value: number }> }> }> }).pipelines[0]!.agents;
        return agents.some((a) => a.lag?.some((l) => l.unit === 'bytes' && l.value >= 0));
      },
      30_000,
      1000,
    );
    await expectAllDelivered(agent, ws.out, expected);
    // A consumer applying the events in order ends with the tables as they are.
    expect(replayDifferences(replayedTables(ws.out), await postgresTableRows(URL, TABLES))).toEqual([]);
  }, 480_000);

  it('takes its snapshot while the tables are written to: replaying the sink gives the tables as they are, in per-key order', async () => {
    const db = `${DB}_busy`;
    const url = `postgres://postgres@127.0.0.1:5432/${db}`;
    await pgQuery(ADMIN, `CREATE DATABASE ${db}`);
    try {
      for (const t of TABLES) {
        await pgQuery(url, `CREATE TABLE public.${t} (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
        await pgQuery(url, `INSERT INTO public.${t} SELECT g, 1, 'seed' FROM generate_series(1, 30000) g`);
      }
      const busyPrefix = uniquePrefix('pgbusy');
      prefixes.push(busyPrefix);
      const ws = postgresCdcWorkspace({ name: 'pg-busy', prefix: busyPrefix, url, slot: `${db}_slot`, publication: 'ferry_busy' });
      await snapshotWhileWriting({
        ...ws,
        running,
        seedRows: 30_000,
        tableCount: TABLES.length,
        changes: 20_000,
        workload: postgresWorkload(url),
        tables: () => postgresTableRows(url, TABLES),
      });
    } finally {
      await dropDatabaseAndSlots(ADMIN, db);
    }
  }, 300_000);

  it('stands a second agent on the same slot by with a clear error instead of exiting, and lets it take over when the first stops', async () => {
    await pgQuery(URL, `CREATE TABLE public.standby (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
    const shared = uniquePrefix('pgstandby');
    prefixes.push(shared);
    const slot = `${DB}_standby`;
    // Two agents (ids a and b) of one pipeline, as an operator would start a second by mistake or as a standby.
    const agentOn = (name: string) =>
      rowPipelineWorkspace({
        name,
        prefix: shared,
        tables: [{ mapping: 'standby', entity: 'row', table: 'public.standby' }],
        delivery: E2E_DELIVERY,
        source: `      type: postgres-cdc
      connection: "${URL}"
      publication: ferry_standby
      slot: ${slot}
      tables: [public.standby]
      snapshot: never
      heartbeatMs: 1000`,
      });
    const a = agentOn('pg-standby-a');
    const b = agentOn('pg-standby-b');
    const delivered = () => new Set([a.out, b.out].flatMap((f) => (existsSync(f) ? readJsonLines<{ subject: string }>(f).map((e) => e.subject) : []))).size;

    const first = startAgent(a.config);
    running.push(first);
    await waitFor('the first agent on the slot', async () => (await pgQuery(ADMIN, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]))[0]?.active_pid, 60_000, 200);
    await pgQuery(URL, `INSERT INTO public.standby SELECT g, 1, 'first' FROM generate_series(1, 100) g`);
    await waitFor('the first 100 rows', () => delivered() === 100, 60_000, 200);

    const second = startAgent(b.config);
    running.push(second);
    await waitFor('the slot-in-use error', () => second.stderr().includes('standing by'), 60_000, 200);
    const line = second.stderr().split('\n').find((l) => l.includes('standing by'))!;
    expect(JSON.parse(line)).toMatchObject({ code: 'FERRY_SOURCE_SLOT_IN_USE', err: expect.stringMatching(new RegExp(`^replication slot ${slot} is in use by pid \\d+$`)) });
    type Status = { pipelines: Array<{ agents: Array<{ agentId: string; reading: boolean; waitingFor?: { code: string } }> }> };
    // Agents report every 5 s; the standby's reason shows in ferry status with its next report.
    const agents = await waitFor(
      'the standby in ferry status',
      async () => {
        const st = JSON.parse((await runFerry(['status', '--config', b.config, '--json'])).stdout) as Status;
        const all = st.pipelines[0]!.agents;
        return all.some((x) => x.waitingFor) ? all : undefined;
      },
      30_000,
      1000,
    );
    expect(agents).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ agentId: 'pg-standby-a', reading: true }),
        expect.objectContaining({ agentId: 'pg-standby-b', reading: false, waitingFor: expect.objectContaining({ code: 'FERRY_SOURCE_SLOT_IN_USE' }) }),
      ]),
    );
    expect(second.proc.exitCode).toBeNull();

    // The first one stops; the standby gets the slot at its next try and reads on from the committed position.
    expect(await first.stop()).toBe(0);
    await pgQuery(URL, `INSERT INTO public.standby SELECT g, 1, 'second' FROM generate_series(101, 200) g`);
    await waitFor('the standby delivering rows 101-200', () => delivered() === 200, 60_000, 500);
    expect(second.proc.exitCode).toBeNull();
    expect(await second.stop()).toBe(0);
  }, 180_000);
});
