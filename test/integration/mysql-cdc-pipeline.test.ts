import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, uniquePrefix, type FerryProcess } from '../support/agent-process.js';
import { expectAllDelivered, replayDifferences, replayedTables, snapshotThenWorkloadThroughKills, snapshotWhileWriting } from '../support/change-ledger.js';
import { mariadbTableRows, mariadbWorkload, mysqlCdcWorkspace } from '../support/workload-dialects.js';

/**
 * MariaDB binlog CDC through the whole agent: a mixed workload over two tables
 * (≥ 200,000 row changes, some transactions rolled back) while the agent is
 * killed with SIGKILL at random moments and restarted; at the file sink every
 * committed change is present, per-key order holds and nothing rolled back
 * appears.
 */

const ADMIN = 'mysql://root@127.0.0.1:3306/';
const DB = `ferry_mye2e_${randomBytes(4).toString('hex')}`;
const URL = `mysql://root@127.0.0.1:3306/${DB}`;
const TABLES = ['orders', 'customers'] as const;
const running: FerryProcess[] = [];
let prefix = '';

async function admin(sql: string): Promise<void> {
  const c = await mysql.createConnection(ADMIN);
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await admin(`CREATE DATABASE ${DB}`);
  const c = await mysql.createConnection(URL);
  for (const t of TABLES) await c.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL)`);
  // Rows present before the agent starts come through the initial snapshot (op r).
  for (const t of TABLES) await c.query(`INSERT INTO ${t} SELECT seq, 1, 'seed' FROM seq_1_to_1000`);
  await c.end();
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await admin(`DROP DATABASE IF EXISTS ${DB}`).catch(() => {});
  if (prefix) await deleteRedisPrefix(prefix);
});

function workspace(): { dir: string; config: string; out: string } {
  prefix = uniquePrefix('mye2e');
  return mysqlCdcWorkspace({ name: 'my-e2e', prefix, url: URL, database: DB, logLevel: 'info' });
}

const workload = mariadbWorkload(URL);

describe('mysql-cdc → queue → file sink', () => {
  it('delivers every committed change of a 200,000-change workload through SIGKILLs and restarts, in per-key order, nothing rolled back', async () => {
    const ws = workspace();
    // The snapshot first (2 × 1,000 seed rows as op r), then 200,000 changes through SIGKILLs.
    const { agent, expected } = await snapshotThenWorkloadThroughKills({ ...ws, running, tables: TABLES, seedRows: 1000, workload: () => workload(200_000) });
    expect(expected.size).toBeGreaterThanOrEqual(200_000);

    await expectAllDelivered(agent, ws.out, expected);
    // A consumer applying the events in order ends with the tables as they are.
    expect(replayDifferences(replayedTables(ws.out), await mariadbTableRows(URL, TABLES))).toEqual([]);
  }, 480_000);

  it('takes its snapshot while the tables are written to: replaying the sink gives the tables as they are, in per-key order', async () => {
    const db = `${DB}_busy`;
    const url = `mysql://root@127.0.0.1:3306/${db}`;
    await admin(`CREATE DATABASE ${db}`);
    const busyPrefix = uniquePrefix('mybusy');
    try {
      const c = await mysql.createConnection(url);
      try {
        for (const t of TABLES) {
          await c.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL)`);
          await c.query(`INSERT INTO ${t} SELECT seq, 1, 'seed' FROM seq_1_to_30000`);
        }
      } finally {
        await c.end();
      }
      const ws = mysqlCdcWorkspace({ name: 'my-busy', prefix: busyPrefix, url, database: db });
      await snapshotWhileWriting({
        ...ws,
        running,
        seedRows: 30_000,
        tableCount: TABLES.length,
        changes: 20_000,
        workload: mariadbWorkload(url),
        tables: () => mariadbTableRows(url, TABLES),
      });
    } finally {
      await admin(`DROP DATABASE IF EXISTS ${db}`).catch(() => {});
      await deleteRedisPrefix(busyPrefix);
    }
  }, 300_000);
});
