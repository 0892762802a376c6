import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointKey } from '../../agent/queue/queue-names.js';
import { deleteRedisPrefix, readJsonLines, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { pgQuery } from '../support/postgres.js';

/**
 * db-poll through the whole agent, with a read-only role, on Postgres and on
 * MariaDB: an incremental view (many rows sharing one updated_at) and a slow
 * diff view are written to in rounds, and the agent is killed with SIGKILL
 * *while a poll is under way*: when the sink has part of the round's diff
 * changes (the poll has committed a mid-poll checkpoint and is still reading
 * pages). After restarts, every row version is at the sink under exactly one
 * event id, and replaying the events reproduces both views.
 */

const suffix = randomBytes(4).toString('hex');
const ROLE = `ferry_rd_${suffix}`;
const PASSWORD = 'reader-pw';
const redis = new Redis(6379, '127.0.0.1');
const running: FerryProcess[] = [];
const prefixes: string[] = [];

/** Seed sizes. Customers have the even keys only, so each round inserts odd keys inside its own key range. */
const ORDERS = 3000;
const CUSTOMERS = 10_000;
const ROUNDS = 3;
/** Rows per diff page: with the view's sleep (~50 ms a query), a poll of the customers takes 2–3 s. */
const PAGE = 200;

interface E2eDatabase {
  name: string;
  /** A database with erp orders/customers tables, seeded, their views (v_customers sleeps once per query), and the reader role. */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** The source connection, password as `${env:ERP_PASSWORD}`. */
  connection: string;
  /** A connection whose login the server rejects (with ERP_PASSWORD=wrong-pw-4711), and how the error names it. */
  badLogin: { connection: string; login: string };
  /** A view's name as ferry.yaml writes it. */
  view(base: 'v_open_orders' | 'v_customers'): string;
  /** Statements on an admin connection, in one transaction. */
  transaction(statements: string[]): Promise<void>;
  rows(sql: string): Promise<Array<Record<string, unknown>>>;
  /** SQL for the table's name and for "now" in the round's transaction. */
  table(base: 'orders' | 'customers'): string;
  now: string;
  grantUpdate(): Promise<void>;
  revokeUpdate(): Promise<void>;
}

const PG_DB = `ferry_dbpe2e_${suffix}`;
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_URL = `postgres://postgres@127.0.0.1:5432/${PG_DB}`;

const postgres: E2eDatabase = {
  name: 'Postgres',
  async setup() {
    await pgQuery(PG_ADMIN, `CREATE DATABASE ${PG_DB}`);
    await pgQuery(PG_ADMIN, `CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}'`);
    await pgQuery(
      PG_URL,
      `CREATE SCHEMA erp;
       CREATE TABLE erp.orders (order_no integer PRIMARY KEY, updated_at timestamptz NOT NULL, status text NOT NULL, version integer NOT NULL);
       CREATE TABLE erp.customers (customer_no integer PRIMARY KEY, name text NOT NULL, version integer NOT NULL);
       CREATE VIEW erp.v_open_orders AS SELECT order_no, updated_at, status, version FROM erp.orders;
       -- An InitPlan: pg_sleep runs once per query, so every page of a poll takes ~50 ms.
       CREATE VIEW erp.v_customers AS SELECT customer_no, name, version FROM erp.customers WHERE (SELECT true FROM pg_sleep(0.05));
       INSERT INTO erp.orders SELECT g, '2024-01-31 10:00:00+00', 'open', 1 FROM generate_series(1, ${ORDERS}) g;
       INSERT INTO erp.customers SELECT 2 * g, 'Kunde ' || 2 * g, 1 FROM generate_series(1, ${CUSTOMERS}) g;
       GRANT USAGE ON SCHEMA erp TO ${ROLE};
       GRANT SELECT ON erp.v_open_orders, erp.v_customers TO ${ROLE};`,
    );
  },
  async teardown() {
    await pgQuery(PG_ADMIN, `DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`).catch(() => {});
    await pgQuery(PG_ADMIN, `DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
  },
  connection: `postgres://${ROLE}:\${env:ERP_PASSWORD}@127.0.0.1:5432/${PG_DB}`,
  // The local server trusts logins from 127.0.0.1, so a wrong password would pass: a role that does not exist is refused.
  badLogin: { connection: `postgres://ferry_nobody_${suffix}:\${env:ERP_PASSWORD}@127.0.0.1:5432/${PG_DB}`, login: `ferry_nobody_${suffix}@127.0.0.1:5432/${PG_DB}` },
  view: (base) => `erp.${base}`,
  async transaction(statements) {
    await pgQuery(PG_URL, `BEGIN; ${statements.join('; ')}; COMMIT;`);
  },
  rows: (sql) => pgQuery(PG_URL, sql),
  table: (base) => `erp.${base}`,
  now: 'now()',
  grantUpdate: async () => void (await pgQuery(PG_URL, `GRANT UPDATE ON erp.v_open_orders TO ${ROLE}`)),
  revokeUpdate: async () => void (await pgQuery(PG_URL, `REVOKE UPDATE ON erp.v_open_orders FROM ${ROLE}`)),
};

const MY_DB = `ferry_dbpe2e_${suffix}`;
async function my<T>(fn: (c: mysql.Connection) => Promise<T>, database?: string): Promise<T> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database, multipleStatements: true });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const mariadb: E2eDatabase = {
  name: 'MariaDB',
  async setup() {
    await my(async (c) => {
      await c.query(`CREATE DATABASE ${MY_DB}`);
      await c.query(`CREATE USER '${ROLE}'@'%' IDENTIFIED BY '${PASSWORD}'`);
      await c.query(
        `USE ${MY_DB};
         CREATE TABLE orders (order_no INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, status VARCHAR(20) NOT NULL, version INT NOT NULL);
         CREATE TABLE customers (customer_no INT PRIMARY KEY, name VARCHAR(40) NOT NULL, version INT NOT NULL);
         CREATE VIEW v_open_orders AS SELECT order_no, updated_at, status, version FROM orders;
         -- A derived table without tables is evaluated once per query (twice, in fact: ~50 ms), not per row.
         CREATE VIEW v_customers AS SELECT c.customer_no, c.name, c.version FROM customers c JOIN (SELECT SLEEP(0.025) AS s) z ON z.s = 0;
         INSERT INTO orders SELECT seq, '2024-01-31 10:00:00', 'open', 1 FROM seq_1_to_${ORDERS};
         INSERT INTO customers SELECT 2 * seq, CONCAT('Kunde ', 2 * seq), 1 FROM seq_1_to_${CUSTOMERS};
         GRANT SELECT ON ${MY_DB}.v_open_orders TO '${ROLE}'@'%';
         GRANT SELECT ON ${MY_DB}.v_customers TO '${ROLE}'@'%';`,
      );
    });
  },
  async teardown() {
    await my(async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${MY_DB}`);
      await c.query(`DROP USER IF EXISTS '${ROLE}'@'%'`);
    }).catch(() => {});
  },
  connection: `mysql://${ROLE}:\${env:ERP_PASSWORD}@127.0.0.1:3306/${MY_DB}`,
  badLogin: { connection: `mysql://${ROLE}:\${env:ERP_PASSWORD}@127.0.0.1:3306/${MY_DB}`, login: `${ROLE}@127.0.0.1:3306/${MY_DB}` },
  view: (base) => `${MY_DB}.${base}`,
  async transaction(statements) {
    await my((c) => c.query(`START TRANSACTION; ${statements.join('; ')}; COMMIT;`), MY_DB);
  },
  rows: (sql) => my(async (c) => (await c.query<mysql.RowDataPacket[]>(sql))[0] as Array<Record<string, unknown>>, MY_DB),
  table: (base) => base,
  now: 'NOW(6)',
  grantUpdate: () => my(async (c) => void (await c.query(`GRANT UPDATE ON ${MY_DB}.v_open_orders TO '${ROLE}'@'%'`))),
  revokeUpdate: () => my(async (c) => void (await c.query(`REVOKE UPDATE ON ${MY_DB}.v_open_orders FROM '${ROLE}'@'%'`))),
};

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  for (const prefix of prefixes) await deleteRedisPrefix(prefix);
  redis.disconnect();
});

function workspace(db: E2eDatabase, connection = db.connection): { config: string; out: string; prefix: string } {
  const dir = tempWorkspace('dbpoll-e2e');
  const prefix = uniquePrefix('dbpe2e');
  prefixes.push(prefix);
  writeFile(join(dir, 'mappings/contracts/any.v1.schema.json'), JSON.stringify({ type: 'object' }));
  writeFile(
    join(dir, 'mappings/orders.yaml'),
    `entity: order
contract: contracts/any.v1.schema.json
match: { table: ${db.view('v_open_orders')} }
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
match: { table: ${db.view('v_customers')} }
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
      connection: "${connection}"
      every: 1s
      requireReadOnly: true
      lookBackMs: 2000
      pageSize: ${PAGE}
      views:
        - { name: ${db.view('v_open_orders')}, mode: incremental, cursor: [updated_at, order_no], key: [order_no] }
        - { name: ${db.view('v_customers')}, mode: diff, key: [customer_no] }
    mappings: [mappings/orders.yaml, mappings/customers.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
    delivery: { partitions: 2, batch: { maxEvents: 200, maxWaitMs: 20 } }
`,
  );
  return { config, out: join(dir, 'out/events.jsonl'), prefix };
}

type Event = { id: string; type: string; subject: string; data: Record<string, unknown> };

/** What a change is, whatever its event id: `order/17/v2`, `customer/8/v1`, `customer/8/deleted`. */
function identity(e: Event): string {
  const entity = e.type.split('.')[0]!;
  return e.type.endsWith('.deleted') ? `${entity}/${e.subject}/deleted` : `${entity}/${e.subject}/v${String(e.data.version)}`;
}

/** Reads the sink file as it grows, new complete lines only, so the test can watch it every few milliseconds. */
class SinkTail {
  private offset = 0;
  private partial = '';
  readonly identities = new Set<string>();

  constructor(private readonly file: string) {}

  poll(): void {
    if (!existsSync(this.file)) return;
    const size = statSync(this.file).size;
    if (size <= this.offset) return;
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, buf.length, this.offset);
    } finally {
      closeSync(fd);
    }
    this.offset = size;
    const lines = (this.partial + buf.toString('utf8')).split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) if (line) this.identities.add(identity(JSON.parse(line) as Event));
  }
}

/**
 * Round r's writes, one transaction: 300 orders updated (a fresh range; one
 * updated_at) and 100 inserted; in the customers' key range [600r+1, 600r+600]
 * 200 updated, 100 deleted and 200 odd keys inserted, and one customer
 * inserted after every other key. Every change touches a row no other round
 * touches, so each is exactly one event id. Returns the identities of the
 * customer changes: one diff poll emits them all, in chunks of `PAGE` near
 * the start of its key order, the last one only once it has read every page.
 */
async function writeRound(db: E2eDatabase, r: number): Promise<Set<string>> {
  const orders = db.table('orders');
  const customers = db.table('customers');
  const base = 600 * r;
  await db.transaction([
    `UPDATE ${orders} SET updated_at = ${db.now}, status = 'r${r}', version = version + 1 WHERE order_no BETWEEN ${300 * r + 1} AND ${300 * r + 300}`,
    `INSERT INTO ${orders} (order_no, updated_at, status, version) SELECT ${10_000 + 100 * r} + k, ${db.now}, 'new', 1 FROM (${numbers(100)}) n`,
    `UPDATE ${customers} SET name = CONCAT(name, '+'), version = version + 1 WHERE customer_no BETWEEN ${base + 1} AND ${base + 400}`,
    `DELETE FROM ${customers} WHERE customer_no BETWEEN ${base + 401} AND ${base + 600}`,
    `INSERT INTO ${customers} (customer_no, name, version) SELECT ${base - 1} + 2 * k, 'Neu', 1 FROM (${numbers(200)}) n`,
    `INSERT INTO ${customers} (customer_no, name, version) VALUES (${1_000_000 + r}, 'Letzter', 1)`,
  ]);
  const changes = new Set<string>();
  for (let k = 2; k <= 400; k += 2) changes.add(`customer/${base + k}/v2`);
  for (let k = 402; k <= 600; k += 2) changes.add(`customer/${base + k}/deleted`);
  for (let k = 1; k <= 200; k++) changes.add(`customer/${base - 1 + 2 * k}/v1`);
  changes.add(`customer/${1_000_000 + r}/v1`);
  return changes;
}

/** `SELECT k` for k = 1..n, in SQL both databases take. */
function numbers(n: number): string {
  return Array.from({ length: n }, (_, i) => `SELECT ${i + 1} AS k`).join(' UNION ALL ');
}

/** Every row version the rounds leave, by identity: what must be at the sink, each under one event id. */
function expectedIdentities(): Set<string> {
  const want = new Set<string>();
  for (let no = 1; no <= ORDERS; no++) want.add(`order/${no}/v1`);
  for (let r = 0; r < ROUNDS; r++) {
    for (let no = 300 * r + 1; no <= 300 * r + 300; no++) want.add(`order/${no}/v2`);
    for (let k = 1; k <= 100; k++) want.add(`order/${10_000 + 100 * r + k}/v1`);
  }
  for (let k = 1; k <= CUSTOMERS; k++) want.add(`customer/${2 * k}/v1`);
  return want;
}

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

async function tables(db: E2eDatabase): Promise<{ orders: Map<string, string>; customers: Map<string, string> }> {
  const orders = await db.rows(`SELECT order_no, status, version FROM ${db.table('orders')}`);
  const customers = await db.rows(`SELECT customer_no, name, version FROM ${db.table('customers')}`);
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

for (const db of [postgres, mariadb]) {
  describe(`db-poll → queue → file sink (${db.name})`, () => {
    beforeAll(() => db.setup());
    afterAll(() => db.teardown());

    it('SIGKILL while a poll is under way, three times: every row version arrives under one event id, and the sink reproduces both views', async () => {
      const ws = workspace(db);
      const env = { ERP_PASSWORD: PASSWORD };
      const tail = new SinkTail(ws.out);
      let agent = startAgent(ws.config, { env });
      running.push(agent);
      await waitFor('the first poll at the sink', () => (tail.poll(), tail.identities.size >= ORDERS + CUSTOMERS) || agent.proc.exitCode !== null, 90_000, 100);
      expect(agent.proc.exitCode, agent.stderr()).toBeNull();

      const want = expectedIdentities();
      const kills: Array<{ round: number; atSink: number; of: number; checkpoint: { views: Record<string, { gen?: number; partial?: unknown }> } }> = [];
      for (let r = 0; r < ROUNDS; r++) {
        const round = await writeRound(db, r);
        for (const id of round) want.add(id);
        const atSink = (): number => [...round].filter((id) => tail.identities.has(id)).length;
        // Kill at a moment that is mid-poll by construction, not after a guessed delay: a mid-poll checkpoint
        // stored (the reader's progress) while the sink does not yet hold the whole round. Not "part of the
        // round at the sink" as well: on a loaded machine delivery lags the reader by more than a poll, so the
        // sink may show nothing of the round until the poll that read it is long finished.
        const customersView = db.view('v_customers');
        await waitFor(
          `a mid-poll moment after round ${r}: a mid-poll checkpoint stored, the round not all at the sink`,
          async () => {
            if (agent.proc.exitCode !== null) return true;
            tail.poll();
            if (atSink() >= round.size) return false;
            const stored = JSON.parse((await redis.get(checkpointKey(ws.prefix, 'erp'))) ?? '{}') as { views?: Record<string, { partial?: unknown }> };
            return stored.views?.[customersView]?.partial !== undefined;
          },
          60_000,
          5,
        );
        expect(agent.proc.exitCode, agent.stderr()).toBeNull();
        const seenBeforeKill = atSink();
        await agent.kill();
        kills.push({ round: r, atSink: seenBeforeKill, of: round.size, checkpoint: JSON.parse((await redis.get(checkpointKey(ws.prefix, 'erp'))) ?? '{}') });
        agent = startAgent(ws.config, { env });
        running.push(agent);
      }

      const missing = (): string[] => (tail.poll(), [...want].filter((id) => !tail.identities.has(id)));
      await waitFor('every row version at the sink', () => missing().length === 0 || agent.proc.exitCode !== null, 120_000, 250).catch((err: Error) => {
        throw new Error(`${err.message}: ${missing().length} missing, e.g. ${missing().slice(0, 5).join(', ')}; the agent's last log lines:\n${agent.stderr().split('\n').slice(-40).join('\n')}`);
      });
      const current = await tables(db);
      await waitFor('the sink to reproduce both views', () => {
        const got = replay(ws.out);
        return differences(got.orders, current.orders) === 0 && differences(got.customers, current.customers) === 0;
      }, 30_000, 500);
      expect(agent.proc.exitCode, agent.stderr()).toBeNull();
      expect(await agent.stop()).toBe(0);

      // Each kill landed mid-poll: the stored checkpoint was a mid-poll one, and the sink did not hold the whole round.
      const customers = db.view('v_customers');
      expect(kills.map((k) => [k.round, k.atSink < k.of, k.checkpoint.views?.[customers]?.partial !== undefined])).toEqual(
        Array.from({ length: ROUNDS }, (_, r) => [r, true, true]),
      );
      // Nothing lost, nothing extra: one distinct event id per row version (a re-delivery repeats its id).
      const events = readJsonLines<Event>(ws.out);
      const ids = new Map<string, string>();
      for (const e of events) ids.set(e.id, identity(e));
      const delivered = new Set(ids.values());
      expect(delivered.size).toBe(ids.size);
      expect([...want].filter((id) => !delivered.has(id))).toEqual([]);
      expect(ids.size).toBe(want.size);
      // eslint-disable-next-line no-console
      console.log(`[db-poll e2e ${db.name}] ${events.length} events, ${ids.size} distinct ids = ${want.size} row versions; at each kill the sink had ${kills.map((k) => `${k.atSink}/${k.of}`).join(', ')} of the round's diff changes`);
    }, 300_000);

    it('refuses to start with requireReadOnly when the role can write, naming the grant', async () => {
      const ws = workspace(db);
      await db.grantUpdate();
      try {
        const agent = startAgent(ws.config, { env: { ERP_PASSWORD: PASSWORD } });
        running.push(agent);
        const code = await agent.exited;
        expect(code).toBe(2);
        expect(agent.stderr()).toMatch(/FERRY_SOURCE_NOT_READ_ONLY/);
        expect(agent.stderr()).toMatch(/UPDATE/);
        expect(agent.stderr()).not.toContain(PASSWORD);
      } finally {
        await db.revokeUpdate();
      }
    }, 60_000);

    it('a rejected login stops `ferry run` with exit 2 and FERRY_SOURCE_AUTH_FAILED naming the login, not the password', async () => {
      const ws = workspace(db, db.badLogin.connection);
      const agent = startAgent(ws.config, { env: { ERP_PASSWORD: 'wrong-pw-4711' } });
      running.push(agent);
      const code = await agent.exited;
      expect(code, agent.stderr()).toBe(2);
      expect(agent.stderr()).toContain('FERRY_SOURCE_AUTH_FAILED');
      expect(agent.stderr()).toContain(`log in as ${db.badLogin.login}`);
      expect(agent.stderr()).not.toContain('wrong-pw-4711');
    }, 60_000);
  });
}
