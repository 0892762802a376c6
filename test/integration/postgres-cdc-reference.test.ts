import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, REPO, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { ordersAndCustomers, rowPipelineWorkspace, underPipeline, type RowEvent } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';

/**
 * The reference source configuration of issue 3, run exactly as written: the
 * role `ferry` (LOGIN REPLICATION, a password given through
 * `${env:PG_PASSWORD}`) on the database `shop`, publication and slot
 * `ferry_shop` created by Ferry, an initial snapshot, then the stream.
 *
 * The names are the document's, server-wide and fixed: no other test file
 * uses the database `shop` or the role `ferry`, and this one removes them
 * (with the slot) when it ends.
 */

const REFERENCE = `source:
  type: postgres-cdc
  connection: "postgres://ferry:\${env:PG_PASSWORD}@127.0.0.1:5432/shop"
  publication: ferry_shop      # created if missing and the role may
  slot: ferry_shop             # created if missing
  tables: [public.orders, public.customers]
  snapshot: initial            # initial | never | when_needed
  heartbeatMs: 10000
`;

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const SHOP = 'postgres://postgres@127.0.0.1:5432/shop';
const PG_PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
const prefix = uniquePrefix('pgref');
const running: FerryProcess[] = [];

async function dropShop(): Promise<void> {
  await dropDatabaseAndSlots(ADMIN, 'shop');
  await pgQuery(ADMIN, 'DROP ROLE IF EXISTS ferry');
}

beforeAll(async () => {
  // A run killed before its cleanup leaves them behind; they are this file's alone.
  await dropShop();
  await pgQuery(ADMIN, `CREATE ROLE ferry WITH LOGIN REPLICATION PASSWORD '${PG_PASSWORD}'`);
  await pgQuery(ADMIN, 'CREATE DATABASE shop');
  // The grants of docs/sources/postgres-cdc.md; owning the tables and CREATE
  // on the database is what lets Ferry create the publication itself.
  await pgQuery(
    SHOP,
    `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL);
     CREATE TABLE public.customers (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL);
     INSERT INTO public.orders SELECT g, 1, 'seed' FROM generate_series(1, 3) g;
     INSERT INTO public.customers SELECT g, 1, 'seed' FROM generate_series(1, 2) g;
     GRANT CONNECT ON DATABASE shop TO ferry;
     GRANT USAGE ON SCHEMA public TO ferry;
     GRANT SELECT ON public.orders, public.customers TO ferry;
     ALTER TABLE public.orders OWNER TO ferry;
     ALTER TABLE public.customers OWNER TO ferry;
     GRANT CREATE ON DATABASE shop TO ferry;`,
  );
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropShop();
  await deleteRedisPrefix(prefix);
});

describe('postgres-cdc reference configuration (issue 3)', () => {
  it('is the one the docs show', () => {
    expect(readFileSync(join(REPO, 'docs/sources/postgres-cdc.md'), 'utf8')).toContain(`\`\`\`yaml\n${REFERENCE}\`\`\``);
  });

  it('works as written: Ferry creates publication and slot, snapshots both tables, then streams, connected as ferry', async () => {
    const ws = rowPipelineWorkspace({
      name: 'pg-reference',
      prefix,
      logLevel: 'info',
      tables: ordersAndCustomers((t) => `public.${t}`),
      source: underPipeline(REFERENCE),
    });
    const env = { PG_PASSWORD };

    const check = await runFerry(['check', '--config', ws.config], { env });
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toMatch(/^✓ shop\/source \(postgres-cdc\) +replication privilege +role ferry may replicate/m);
    expect(check.stdout).toMatch(/^✓ shop\/source \(postgres-cdc\) +publication ferry_shop +missing; Ferry creates it at start/m);

    const agent = startAgent(ws.config, { env });
    running.push(agent);
    const events = () => readJsonLines<RowEvent>(ws.out);
    await waitFor('the snapshot of both tables', () => events().length >= 5 || agent.proc.exitCode !== null, 120_000, 200);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    expect(events().map((e) => [e.type, e.data.id]).sort()).toEqual([
      ['customer.snapshot', 1], ['customer.snapshot', 2],
      ['order.snapshot', 1], ['order.snapshot', 2], ['order.snapshot', 3],
    ]);

    expect(await pgQuery(SHOP, `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = 'ferry_shop' ORDER BY 1`)).toEqual([
      { t: 'public.customers' },
      { t: 'public.orders' },
    ]);
    // The slot is read by a session of the role ferry: the configured login, not a superuser.
    const [slot] = await pgQuery(ADMIN, `SELECT s.plugin, s.database, a.usename FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = 'ferry_shop'`);
    expect(slot).toEqual({ plugin: 'pgoutput', database: 'shop', usename: 'ferry' });

    await pgQuery(SHOP, `INSERT INTO public.orders VALUES (4, 1, 'streamed'); UPDATE public.customers SET version = 2, note = 'streamed' WHERE id = 2`);
    await waitFor('the streamed changes', () => events().length >= 7 || agent.proc.exitCode !== null, 120_000, 200);
    // Two keys, two partitions: their order at the sink is not defined.
    expect(events().slice(5).map((e) => [e.type, e.data]).sort()).toEqual([
      ['customer.updated', { id: 2, version: 2, note: 'streamed' }],
      ['order.created', { id: 4, version: 1, note: 'streamed' }],
    ]);
    expect(await agent.stop()).toBe(0);
    expect(agent.stdout() + agent.stderr()).not.toContain(PG_PASSWORD);
  }, 300_000); // the two waits for the sink add up to 240 s; the rest is `ferry check` and the agent's stop
});
