import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSource } from '../../sources/db-poll/testing/harness.js';
import { dbPollSuite, type PollTestDatabase } from '../../sources/db-poll/testing/scenarios.js';

// A fresh database per run, with ICU en-US as its default collation so that
// byte order (what db-poll sorts keys by) differs from the database's order.
const suffix = randomBytes(4).toString('hex');
const database = `ferry_dbpoll_${suffix}`;
const reader = `ferry_ro_${suffix}`;
const writer = `ferry_rw_${suffix}`;
const admin = (db = 'postgres'): pg.Client => new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
let conn: pg.Client;

async function run(sql: string, db = 'postgres'): Promise<void> {
  const c = admin(db);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const postgres: PollTestDatabase = {
  bigPageSize: 10_000,
  async setup() {
    await run(`CREATE DATABASE ${database} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    await run(`CREATE ROLE ${reader} LOGIN PASSWORD 'reader-pw'; CREATE ROLE ${writer} LOGIN PASSWORD 'writer-pw'`);
    conn = admin(database);
    await conn.connect();
    await conn.query(`
      CREATE SCHEMA erp;
      CREATE TABLE erp.orders (order_no int PRIMARY KEY, updated_at timestamptz NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL, amount numeric(12,2) NOT NULL, version int NOT NULL);
      CREATE VIEW erp.v_open_orders AS SELECT order_no, updated_at, created_at, status, amount, version FROM erp.orders;
      -- pg_sleep in an InitPlan runs once per query: every page of this view takes ~100 ms.
      CREATE VIEW erp.v_slow_orders AS SELECT * FROM erp.orders WHERE (SELECT true FROM pg_sleep(0.1));
      CREATE TABLE erp.customers (customer_no text PRIMARY KEY, name text NOT NULL, balance numeric(14,2) NOT NULL);
      CREATE VIEW erp.v_customers AS SELECT customer_no, name, balance FROM erp.customers;
      CREATE TABLE erp.items (item_no bigint PRIMARY KEY, label text NOT NULL, qty int NOT NULL);
      CREATE VIEW erp.v_items AS SELECT * FROM erp.items;
      CREATE TABLE erp.readings (reading_no int PRIMARY KEY, taken_at timestamp NOT NULL, value int NOT NULL);
      CREATE VIEW erp.v_readings AS SELECT * FROM erp.readings;
      GRANT USAGE ON SCHEMA erp TO ${reader}, ${writer};
      GRANT SELECT ON ALL TABLES IN SCHEMA erp TO ${reader};
      GRANT SELECT, INSERT, UPDATE ON erp.v_open_orders TO ${writer};
    `);
  },
  async teardown() {
    await conn?.end();
    await run(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await run(`DROP ROLE IF EXISTS ${reader}; DROP ROLE IF EXISTS ${writer}`);
  },
  readOnlyUrl: () => `postgres://${reader}:reader-pw@127.0.0.1:5432/${database}`,
  writerUrl: () => `postgres://${writer}:writer-pw@127.0.0.1:5432/${database}`,
  // The local server trusts every login on 127.0.0.1, so a wrong password passes: a role that does not exist is refused (28000).
  badLogin: () => ({ url: `postgres://ferry_nobody_${suffix}:wrong-pw-4711@127.0.0.1:5432/${database}`, login: `ferry_nobody_${suffix}@127.0.0.1:5432/${database}` }),
  view: (base) => `erp.${base}`,
  table: (base) => `erp.${base}`,
  async exec(sql) {
    await conn.query(sql);
  },
  async execAsWriter(sql) {
    const c = new pg.Client({ connectionString: postgres.writerUrl() });
    await c.connect();
    try {
      await c.query('BEGIN');
      const r = await c.query(sql);
      await c.query('ROLLBACK');
      return r.rowCount ?? 0;
    } finally {
      await c.end();
    }
  },
  readOnlyRefusal: { code: '25006' },
  async seedOrders(n, distinctTimes) {
    await conn.query(
      `INSERT INTO erp.orders SELECT i, t, t, 'open', 1.25 * i, 1
       FROM generate_series(1, $1::int) i, LATERAL (SELECT date_trunc('second', now()) - interval '1 hour' + (i % $2) * interval '1 second' AS t) x`,
      [n, distinctTimes],
    );
  },
  async insertOrder(orderNo, agoMs, holdMs) {
    const c = admin(database);
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query(`INSERT INTO erp.orders VALUES ($1, clock_timestamp() - $2 * interval '1 millisecond', clock_timestamp() - $2 * interval '1 millisecond', 'late', 9.99, 1)`, [orderNo, agoMs]);
      // created_at = updated_at: both from one expression evaluated twice, so align them.
      await c.query('UPDATE erp.orders SET created_at = updated_at WHERE order_no = $1', [orderNo]);
      await new Promise((r) => setTimeout(r, holdMs));
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  },
  async touchOrders(orderNos) {
    await conn.query(`UPDATE erp.orders SET version = version + 1, updated_at = clock_timestamp(), status = 'touched' WHERE order_no = ANY($1::int[])`, [orderNos]);
  },
  async orderVersions() {
    const r = await conn.query<{ order_no: number; version: number }>('SELECT order_no, version FROM erp.orders ORDER BY order_no');
    return r.rows.map((x) => [x.order_no, x.version]);
  },
  async seedCustomers(n) {
    await conn.query(
      `INSERT INTO erp.customers SELECT (ARRAY['b','B','ä'])[i % 3 + 1] || '-' || lpad(i::text, 7, '0'), 'customer ' || i, i * 0.01 FROM generate_series(1, $1::int) i`,
      [n],
    );
  },
  async seedItems(n) {
    await conn.query(`INSERT INTO erp.items SELECT i, 'item ' || i, i % 17 FROM generate_series(1, $1::int) i`, [n]);
  },
  async seedReadings(n) {
    await conn.query(`INSERT INTO erp.readings SELECT i, timestamp '2024-01-01 00:00:00' + (i - 1) * interval '1 second', i % 100 FROM generate_series(1, $1::int) i`, [n]);
  },
  async killReaderSessions() {
    await conn.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [reader]);
  },
  async lockOrdersWithPendingRow(orderNo) {
    const c = admin(database);
    await c.connect();
    await c.query('BEGIN');
    await c.query(`INSERT INTO erp.orders VALUES ($1, clock_timestamp(), clock_timestamp(), 'locked', 1, 1)`, [orderNo]);
    await c.query('LOCK TABLE erp.orders IN ACCESS EXCLUSIVE MODE');
    return async () => {
      await c.query('COMMIT');
      await c.end();
    };
  },
};

dbPollSuite('Postgres', postgres);

/**
 * Postgres roles: has_table_privilege counts what a user inherits. A user
 * that is a member of a writing role without inheriting it (NOINHERIT) can
 * still SET ROLE to it, so that role's privileges are reported too.
 */
describe('db-poll on Postgres: write privileges held through roles', () => {
  const db = `ferry_dbprole_${suffix}`;
  const group = `ferry_grp_${suffix}`;
  const inherits = `ferry_inh_${suffix}`;
  const noinherit = `ferry_noi_${suffix}`;
  const views = [{ name: 'erp.v_t', mode: 'diff' as const, key: ['id'] }];
  beforeAll(async () => {
    await run(`CREATE DATABASE ${db}`);
    await run(`CREATE ROLE ${group} NOLOGIN; CREATE ROLE ${inherits} LOGIN INHERIT; CREATE ROLE ${noinherit} LOGIN NOINHERIT; GRANT ${group} TO ${inherits}, ${noinherit}`);
    await run(
      `CREATE SCHEMA erp; CREATE TABLE erp.t (id int PRIMARY KEY); CREATE VIEW erp.v_t AS SELECT id FROM erp.t;
       GRANT USAGE ON SCHEMA erp TO ${inherits}, ${noinherit}, ${group}; GRANT SELECT ON erp.v_t TO ${inherits}, ${noinherit};
       GRANT INSERT ON erp.v_t TO ${group};`,
      db,
    );
  });
  afterAll(async () => {
    await run(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await run(`DROP ROLE IF EXISTS ${inherits}; DROP ROLE IF EXISTS ${noinherit}; DROP ROLE IF EXISTS ${group}`);
  });

  it('a role the user inherits, and one it can only SET ROLE to (NOINHERIT), are both reported', async () => {
    const inherited = (await makeSource({ connection: `postgres://${inherits}@127.0.0.1:5432/${db}`, requireReadOnly: true, views }).check()).find((r) => r.name === 'db-poll read-only role')!;
    expect(inherited).toMatchObject({ ok: false, severity: 'error' });
    expect(inherited.detail).toContain(`INSERT on "erp"."v_t" (held by "${inherits}", directly, through a role or PUBLIC)`);

    const settable = (await makeSource({ connection: `postgres://${noinherit}@127.0.0.1:5432/${db}`, requireReadOnly: true, views }).check()).find((r) => r.name === 'db-poll read-only role')!;
    expect(settable).toMatchObject({ ok: false, severity: 'error' });
    expect(settable.detail).toContain(`INSERT on "erp"."v_t" (held by "${group}", which "${noinherit}" can SET ROLE to)`);
    expect(settable.fix).toBe(`REVOKE INSERT ON "erp"."v_t" FROM "${group}"; (or REVOKE "${group}" FROM "${noinherit}";)`);
  });
});
