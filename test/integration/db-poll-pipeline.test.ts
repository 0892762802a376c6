import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { killAndRestart } from '../support/change-ledger.js';
import { pgQuery } from '../support/postgres.js';

/**
 * db-poll through the whole agent, with a read-only role: an incremental view
 * (many rows sharing one updated_at) and a diff view (inserts, updates and
 * deletes) written to while the agent polls and is killed with SIGKILL and
 * restarted; replaying the events at the file sink reproduces both views.
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_dbpe2e_${randomBytes(4).toString('hex')}`;
const ROLE = `ferry_rd_${randomBytes(3).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const running: FerryProcess[] = [];
let prefix = '';


beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  await pgQuery(ADMIN, `CREATE ROLE ${ROLE} LOGIN PASSWORD 'reader-pw'`);
  await pgQuery(
    URL,
    `CREATE SCHEMA erp;
     CREATE TABLE erp.orders (order_no integer PRIMARY KEY, updated_at timestamptz NOT NULL, status text NOT NULL, version integer NOT NULL);
     CREATE TABLE erp.customers (customer_no integer PRIMARY KEY, name text NOT NULL, version integer NOT NULL);
     CREATE VIEW erp.v_open_orders AS SELECT order_no, updated_at, status, version FROM erp.orders;
     CREATE VIEW erp.v_customers AS SELECT customer_no, name, version FROM erp.customers;
     INSERT INTO erp.orders SELECT g, '2024-01-31 10:00:00+00', 'open', 1 FROM generate_series(1, 5000) g;
     INSERT INTO erp.customers SELECT g, 'Kunde ' || g, 1 FROM generate_series(1, 20000) g;
     GRANT USAGE ON SCHEMA erp TO ${ROLE};
     GRANT SELECT ON erp.v_open_orders, erp.v_customers TO ${ROLE};`,
  );
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await pgQuery(ADMIN, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch(() => {});
  await pgQuery(ADMIN, `DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
  if (prefix) await deleteRedisPrefix(prefix);
});

function workspace(): { config: string; out: string } {
  const dir = tempWorkspace('dbpoll-e2e');
  prefix = uniquePrefix('dbpe2e');
  writeFile(join(dir, 'mappings/contracts/any.v1.schema.json'), JSON.stringify({ type: 'object' }));
  writeFile(
    join(dir, 'mappings/orders.yaml'),
    `entity: order
contract: contracts/any.v1.schema.json
match: { table: erp.v_open_orders }
key: [order_no]
fields:
  order_no: { from: order_no, type: integer, required: true }
  status:   { from: status }
  version:  { from: version, type: integer }
`,
  );
  writeFile(
    join(dir, 'mappings/customers.yaml'),
    `entity: customer
contract: contracts/any.v1.schema.json
match: { table: erp.v_customers }
key: [customer_no]
fields:
  customer_no: { from: customer_no, type: integer, required: true }
  name:        { from: name }
  version:     { from: version, type: integer }
`,
  );
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent: { id: dbpoll-e2e, dataDir: ./data, logLevel: warn }
queue: { redis: "redis://127.0.0.1:6379", prefix: ${prefix} }
pipelines:
  - name: erp
    source:
      type: db-poll
      connection: "postgres://${ROLE}:\${env:ERP_PASSWORD}@127.0.0.1:5432/${DB}"
      every: 1s
      requireReadOnly: true
      lookBackMs: 2000
      views:
        - { name: erp.v_open_orders, mode: incremental, cursor: [updated_at, order_no], key: [order_no] }
        - { name: erp.v_customers, mode: diff, key: [customer_no] }
    mappings: [mappings/orders.yaml, mappings/customers.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
`,
  );
  return { config, out: join(dir, 'out/events.jsonl') };
}

type Event = { id: string; type: string; subject: string; data: Record<string, unknown> };

/** Applies the events in arrival order (a repeated id is a duplicate, skipped): the state a consumer ends up with. */
function replay(out: string): { orders: Map<string, string>; customers: Map<string, string> } {
  const seen = new Set<string>();
  const state = { orders: new Map<string, string>(), customers: new Map<string, string>() };
  for (const e of readJsonLines<Event>(out)) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    const m = e.type.startsWith('order.') ? state.orders : state.customers;
    if (e.type.endsWith('.deleted')) m.delete(e.subject);
    else m.set(e.subject, e.type.startsWith('order.') ? `${e.data.status}/${e.data.version}` : `${e.data.name}/${e.data.version}`);
  }
  return state;
}

async function tables(): Promise<{ orders: Map<string, string>; customers: Map<string, string> }> {
  const orders = await pgQuery(URL, 'SELECT order_no, status, version FROM erp.orders');
  const customers = await pgQuery(URL, 'SELECT customer_no, name, version FROM erp.customers');
  return {
    orders: new Map(orders.map((r) => [String(r.order_no), `${r.status}/${r.version}`])),
    customers: new Map(customers.map((r) => [String(r.customer_no), `${r.name}/${r.version}`])),
  };
}

function differences(a: Map<string, string>, b: Map<string, string>): number {
  let n = 0;
  for (const [k, v] of a) if (b.get(k) !== v) n++;
  for (const k of b.keys()) if (!a.has(k)) n++;
  return n;
}

describe('db-poll → queue → file sink', () => {
  it('reproduces an incremental and a diff view at the sink through writes during polls and SIGKILL restarts', async () => {
    const ws = workspace();
    const env = { ERP_PASSWORD: 'reader-pw' };
    let agent = startAgent(ws.config, { env });
    running.push(agent);
    await waitFor('the first poll at the sink', () => readJsonLines(ws.out).length >= 25_000 || agent.proc.exitCode !== null, 90_000, 250);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();

    let finished = false;
    const writes = (async () => {
      let next = 5001;
      let nextCustomer = 20001;
      for (let round = 0; round < 40; round++) {
        // One transaction: every row it touches shares one updated_at (now()).
        await pgQuery(
          URL,
          `BEGIN;
           UPDATE erp.orders SET updated_at = now(), status = 'r${round}', version = version + 1 WHERE order_no IN (SELECT order_no FROM erp.orders ORDER BY random() LIMIT 300);
           INSERT INTO erp.orders SELECT g, now(), 'new', 1 FROM generate_series(${next}, ${next + 99}) g;
           INSERT INTO erp.customers SELECT g, 'Neu ' || g, 1 FROM generate_series(${nextCustomer}, ${nextCustomer + 99}) g;
           UPDATE erp.customers SET name = name || '+', version = version + 1 WHERE customer_no IN (SELECT customer_no FROM erp.customers ORDER BY random() LIMIT 200);
           DELETE FROM erp.customers WHERE customer_no IN (SELECT customer_no FROM erp.customers ORDER BY random() LIMIT 50);
           COMMIT;`,
        );
        next += 100;
        nextCustomer += 100;
        await new Promise((r) => setTimeout(r, 300));
      }
    })().finally(() => (finished = true));
    agent = await killAndRestart(ws.config, agent, running, () => finished, { env });
    await writes;
    if (agent.proc.exitCode !== null) {
      agent = startAgent(ws.config, { env });
      running.push(agent);
    }
    const want = await tables();
    await waitFor(
      'the sink to reproduce both views',
      () => {
        const got = replay(ws.out);
        return (differences(got.orders, want.orders) === 0 && differences(got.customers, want.customers) === 0) || agent.proc.exitCode !== null;
      },
      120_000,
      1000,
    ).catch((err: Error) => {
      const got = replay(ws.out);
      throw new Error(
        `${err.message}: orders differ in ${differences(got.orders, want.orders)} keys, customers in ${differences(got.customers, want.customers)}; the agent's last log lines:\n${agent.stderr().split('\n').slice(-40).join('\n')}`,
      );
    });
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    expect(await agent.stop()).toBe(0);
    const got = replay(ws.out);
    expect(differences(got.orders, want.orders)).toBe(0);
    expect(differences(got.customers, want.customers)).toBe(0);
    expect(readJsonLines<Event>(ws.out).some((e) => e.type === 'customer.deleted')).toBe(true);
  }, 300_000);

  it('refuses to start with requireReadOnly when the role can write, naming the grant', async () => {
    const ws = workspace();
    await pgQuery(URL, `GRANT UPDATE ON erp.v_open_orders TO ${ROLE}`);
    try {
      const agent = startAgent(ws.config, { env: { ERP_PASSWORD: 'reader-pw' } });
      running.push(agent);
      const code = await agent.exited;
      expect(code).toBe(2);
      expect(agent.stderr()).toMatch(/FERRY_SOURCE_NOT_READ_ONLY/);
      expect(agent.stderr()).toMatch(/UPDATE/);
      expect(agent.stderr()).not.toContain('reader-pw');
    } finally {
      await pgQuery(URL, `REVOKE UPDATE ON erp.v_open_orders FROM ${ROLE}`);
    }
  }, 60_000);
});
