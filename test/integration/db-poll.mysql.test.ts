import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
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
  view: (base) => `${database}.${base}`,
  table: (base) => base,
  async exec(sql) {
    await conn.query(sql);
  },
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
