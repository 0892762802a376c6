import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../agent/errors/index.js';
import { MysqlDialect, StatementDeadline } from '../../sources/db-poll/dialects/mysql.js';
import { captureLogger, makeSource, sourceContext } from '../../sources/db-poll/testing/harness.js';
import { dbPollSuite, type PollTestDatabase } from '../../sources/db-poll/testing/scenarios.js';

// A fresh MariaDB database per run; the server's default collation
// (utf8mb4_general_ci) orders keys differently from the bytes db-poll sorts by.
const suffix = randomBytes(4).toString('hex');
const database = `ferry_dbpoll_${suffix}`;
const reader = `ferry_ro_${suffix}`;
const writer = `ferry_rw_${suffix}`;
const admin = (db?: string): Promise<mysql.Connection> => mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: db });
let conn: mysql.Connection;

const mariadb: PollTestDatabase = {
  bigPageSize: 10_000,
  async setup() {
    const root = await admin();
    try {
      await root.query(`CREATE DATABASE ${database}`);
      await root.query(`CREATE USER '${reader}'@'%' IDENTIFIED BY 'reader-pw'`);
      await root.query(`CREATE USER '${writer}'@'%' IDENTIFIED BY 'writer-pw'`);
    } finally {
      await root.end();
    }
    conn = await admin(database);
    for (const sql of [
      'CREATE TABLE orders (order_no INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, created_at DATETIME(6) NOT NULL, status VARCHAR(20) NOT NULL, amount DECIMAL(12,2) NOT NULL, version INT NOT NULL)',
      'CREATE VIEW v_open_orders AS SELECT order_no, updated_at, created_at, status, amount, version FROM orders',
      // A derived table without tables is evaluated once per query (twice, in fact): every page takes ~100 ms.
      'CREATE VIEW v_slow_orders AS SELECT o.* FROM orders o JOIN (SELECT SLEEP(0.05) AS s) z ON z.s = 0',
      'CREATE TABLE customers (customer_no VARCHAR(40) PRIMARY KEY, name VARCHAR(100) NOT NULL, balance DECIMAL(14,2) NOT NULL)',
      'CREATE VIEW v_customers AS SELECT customer_no, name, balance FROM customers',
      'CREATE TABLE items (item_no BIGINT PRIMARY KEY, label VARCHAR(40) NOT NULL, qty INT NOT NULL)',
      'CREATE VIEW v_items AS SELECT * FROM items',
      'CREATE TABLE readings (reading_no INT PRIMARY KEY, taken_at DATETIME NOT NULL, value INT NOT NULL)',
      'CREATE VIEW v_readings AS SELECT * FROM readings',
      `GRANT SELECT ON ${database}.* TO '${reader}'@'%'`,
      `GRANT SELECT, INSERT, UPDATE ON ${database}.v_open_orders TO '${writer}'@'%'`,
    ]) {
      await conn.query(sql);
    }
  },
  async teardown() {
    await conn?.end();
    const root = await admin();
    try {
      await root.query(`DROP DATABASE IF EXISTS ${database}`);
      await root.query(`DROP USER IF EXISTS '${reader}'@'%', '${writer}'@'%'`);
    } finally {
      await root.end();
    }
  },
  readOnlyUrl: () => `mysql://${reader}:reader-pw@127.0.0.1:3306/${database}`,
  writerUrl: () => `mysql://${writer}:writer-pw@127.0.0.1:3306/${database}`,
  badLogin: () => ({ url: `mysql://${reader}:wrong-pw-4711@127.0.0.1:3306/${database}`, login: `${reader}@127.0.0.1:3306/${database}` }),
  view: (base) => `${database}.${base}`,
  table: (base) => base,
  async exec(sql) {
    await conn.query(sql);
  },
  async execAsWriter(sql) {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: writer, password: 'writer-pw', database });
    try {
      await c.query('START TRANSACTION');
      const [r] = await c.query<mysql.ResultSetHeader>(sql);
      await c.query('ROLLBACK');
      return r.affectedRows;
    } finally {
      await c.end();
    }
  },
  readOnlyRefusal: { errno: 1792 },
  async seedOrders(n, distinctTimes) {
    await conn.query(
      `INSERT INTO orders SELECT seq, t, t, 'open', 1.25 * seq, 1 FROM (
         SELECT seq, CAST(DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s') AS DATETIME) - INTERVAL 1 HOUR + INTERVAL (seq % ?) SECOND AS t FROM seq_1_to_${Math.trunc(n)}) x`,
      [distinctTimes],
    );
  },
  async insertOrder(orderNo, agoMs, holdMs) {
    const c = await admin(database);
    try {
      await c.query('START TRANSACTION');
      await c.query(`SET @t = NOW(6) - INTERVAL ? MICROSECOND`, [agoMs * 1000]);
      await c.query(`INSERT INTO orders VALUES (?, @t, @t, 'late', 9.99, 1)`, [orderNo]);
      await new Promise((r) => setTimeout(r, holdMs));
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  },
  async touchOrders(orderNos) {
    await conn.query(`UPDATE orders SET version = version + 1, updated_at = NOW(6), status = 'touched' WHERE order_no IN (?)`, [orderNos]);
  },
  async orderVersions() {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT order_no, version FROM orders ORDER BY order_no');
    return rows.map((x) => [Number(x.order_no), Number(x.version)] as [number, number]);
  },
  async seedCustomers(n) {
    await conn.query(
      `INSERT INTO customers SELECT CONCAT(ELT(seq % 3 + 1, 'b', 'B', 'ä'), '-', LPAD(seq, 7, '0')), CONCAT('customer ', seq), seq * 0.01 FROM seq_1_to_${Math.trunc(n)}`,
    );
  },
  async seedItems(n) {
    await conn.query(`INSERT INTO items SELECT seq, CONCAT('item ', seq), seq % 17 FROM seq_1_to_${Math.trunc(n)}`);
  },
  async seedReadings(n) {
    await conn.query(`INSERT INTO readings SELECT seq, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL (seq - 1) SECOND, seq % 100 FROM seq_1_to_${Math.trunc(n)}`);
  },
  async killReaderSessions() {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT id FROM information_schema.processlist WHERE user = ?', [reader]);
    for (const r of rows) await conn.query(`KILL ${Number(r.id)}`);
  },
  async lockOrdersWithPendingRow(orderNo) {
    const c = await admin(database);
    await c.query('LOCK TABLES orders WRITE');
    await c.query(`INSERT INTO orders VALUES (?, NOW(6), NOW(6), 'locked', 1, 1)`, [orderNo]);
    return async () => {
      await c.query('UNLOCK TABLES');
      await c.end();
    };
  },
};

dbPollSuite('MariaDB', mariadb);

/**
 * MariaDB roles: a user with SELECT only, granted a role that may INSERT
 * (and, through a role granted to that role, UPDATE). The role's grants show
 * in SHOW GRANTS only while it is the session's role, so db-poll sets each
 * role in turn; the finding must name the role, whether it is the user's
 * default role or not, and the session must end up in the role it had.
 */
describe('db-poll on MariaDB: write privileges held through roles', () => {
  const db = `ferry_dbrole_${suffix}`;
  const user = `ferry_ru_${suffix}`;
  const role = `ferry_wr_${suffix}`;
  const nested = `ferry_nr_${suffix}`;
  const url = `mysql://${user}:role-pw@127.0.0.1:3306/${db}`;
  const views = [{ name: `${db}.v_t`, mode: 'diff' as const, key: ['id'] }];
  const asRoot = async (sqls: string[]): Promise<void> => {
    const root = await admin();
    try {
      for (const sql of sqls) await root.query(sql);
    } finally {
      await root.end();
    }
  };

  beforeAll(() =>
    asRoot([
      `CREATE DATABASE ${db}`,
      `CREATE TABLE ${db}.t (id INT PRIMARY KEY)`,
      `CREATE VIEW ${db}.v_t AS SELECT id FROM ${db}.t`,
      `CREATE ROLE ${role}`,
      `CREATE ROLE ${nested}`,
      `GRANT INSERT ON ${db}.v_t TO ${role}`,
      `GRANT UPDATE ON ${db}.* TO ${nested}`,
      `GRANT ${nested} TO ${role}`,
      `CREATE USER '${user}'@'%' IDENTIFIED BY 'role-pw'`,
      `GRANT SELECT ON ${db}.* TO '${user}'@'%'`,
      `GRANT ${role} TO '${user}'@'%'`,
    ]),
  );
  afterAll(() => asRoot([`DROP DATABASE IF EXISTS ${db}`, `DROP USER IF EXISTS '${user}'@'%'`, `DROP ROLE IF EXISTS ${role}`, `DROP ROLE IF EXISTS ${nested}`]));

  const currentRole = async (dialect: MysqlDialect): Promise<unknown> => (await dialect.readOnly('SELECT CURRENT_ROLE() AS r', [], 5000)).rows[0]?.r;

  for (const defaultRole of [false, true]) {
    it(`a role ${defaultRole ? 'that is the default role' : 'granted but not set'} is expanded: check() and requireReadOnly name its INSERT and its nested role's UPDATE`, async () => {
      await asRoot([`SET DEFAULT ROLE ${defaultRole ? role : 'NONE'} FOR '${user}'@'%'`]);
      const found = await makeSource({ connection: url, requireReadOnly: true, views }).check();
      const readOnly = found.find((r) => r.name === 'db-poll read-only role')!;
      expect(readOnly.ok).toBe(false);
      expect(readOnly.detail).toContain(`INSERT on ${db}.v_t (GRANT INSERT ON \`${db}\`.\`v_t\` TO \`${role}\`, held through role \`${role}\` granted to \`${user}\`@\`%\`)`);
      expect(readOnly.detail).toContain(`UPDATE on ${db}.v_t (GRANT UPDATE ON \`${db}\`.* TO \`${nested}\``);
      expect(readOnly.fix).toContain(`REVOKE INSERT ON \`${db}\`.\`v_t\` FROM \`${role}\`; (or REVOKE \`${role}\` FROM \`${user}\`@\`%\`;)`);
      expect(readOnly.detail).not.toMatch(/IDENTIFIED|PASSWORD/);

      const { logger } = captureLogger();
      const source = makeSource({ connection: url, requireReadOnly: true, views });
      const refused = await source.open(undefined, await sourceContext(logger)).then(
        () => undefined,
        (e: unknown) => e,
      );
      await source.close();
      expect((refused as FerryError).code).toBe('FERRY_SOURCE_NOT_READ_ONLY');
      expect((refused as FerryError).message).toContain(`held through role \`${role}\``);

      // Inspecting sets each role in turn; the session is left in the role it logged in with.
      const dialect = await MysqlDialect.connect(url);
      try {
        const before = await currentRole(dialect);
        expect(before).toBe(defaultRole ? role : null);
        expect((await dialect.writeGrants(views.map((v) => v.name), 5000)).map((g) => g.privileges)).toEqual([['INSERT'], ['UPDATE']]);
        expect(await currentRole(dialect)).toBe(before);
      } finally {
        await dialect.close();
      }
    });
  }

  it('without the role, the same user is read-only', async () => {
    await asRoot([`SET DEFAULT ROLE NONE FOR '${user}'@'%'`, `REVOKE ${role} FROM '${user}'@'%'`]);
    try {
      const found = await makeSource({ connection: url, requireReadOnly: true, views }).check();
      expect(found.find((r) => r.name === 'db-poll read-only role')).toMatchObject({ ok: true });
    } finally {
      await asRoot([`GRANT ${role} TO '${user}'@'%'`]);
    }
  });
});

/**
 * Every statement is bounded, not only the page queries: EXPLAIN (the
 * snapshot's row estimate) waits on a table another session has locked.
 * MariaDB times it itself (max_statement_time, which also covers SHOW GRANTS
 * and SET ROLE). MySQL times SELECTs only, so run as `mysql` against MariaDB
 * (which reads MySQL's hint as a comment), the client's deadline must stop it.
 */
describe('db-poll on MariaDB: statements the server cannot time are stopped by the client', () => {
  const db = `ferry_dbtime_${suffix}`;
  const url = `mysql://root@127.0.0.1:3306/${db}`;
  beforeAll(async () => {
    const root = await admin();
    try {
      await root.query(`CREATE DATABASE ${db}`);
      await root.query(`CREATE TABLE ${db}.t (id INT PRIMARY KEY)`);
      await root.query(`CREATE VIEW ${db}.v_t AS SELECT id FROM ${db}.t`);
    } finally {
      await root.end();
    }
  });
  afterAll(async () => {
    const root = await admin();
    await root.query(`DROP DATABASE IF EXISTS ${db}`).finally(() => root.end());
  });

  for (const flavour of ['mariadb', 'mysql'] as const) {
    it(`${flavour}: EXPLAIN on a locked table ends as a timeout, ${flavour === 'mariadb' ? 'cancelled by the server at queryTimeoutMs' : 'the connection dropped a second later'}`, async () => {
      const lock = await admin(db);
      await lock.query('LOCK TABLES t WRITE');
      const dialect = await MysqlDialect.connect(url, { flavour });
      try {
        const started = Date.now();
        const failed: unknown = await dialect.estimateRows(`${db}.v_t`, undefined, 500).then(
          () => undefined,
          (e: unknown) => e,
        );
        const took = Date.now() - started;
        expect(failed, 'EXPLAIN returned while the table was locked').toBeDefined();
        expect(dialect.classify(failed)).toBe('timeout');
        if (flavour === 'mariadb') {
          expect((failed as { errno?: number }).errno).toBe(1969);
          expect(took).toBeLessThan(1400);
        } else {
          expect(failed).toBeInstanceOf(StatementDeadline);
          expect(took).toBeGreaterThanOrEqual(1400);
          expect(took).toBeLessThan(5000);
          // The connection is gone: the next statement says so, and the source reconnects.
          const next = await dialect.describe(`${db}.v_t`, 500).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(dialect.classify(next)).toBe('connection');
        }
      } finally {
        await lock.query('UNLOCK TABLES');
        await lock.end();
        await dialect.close();
      }
    }, 20_000);
  }
});
