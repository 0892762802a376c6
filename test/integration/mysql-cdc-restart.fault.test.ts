import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, uniquePrefix, type FerryProcess } from '../support/agent-process.js';
import { backlogThroughServerRestart, expectAllDelivered } from '../support/change-ledger.js';
import { restartMariadb } from '../support/server-restart.js';
import { mariadbWorkload, mysqlCdcWorkspace } from '../support/workload-dialects.js';

/**
 * MariaDB restarted while the agent streams a backlog from the binlog: the
 * agent (the same process) reconnects with backoff, resumes at its last
 * committed binlog position (the server starts a new binlog file on
 * restart), and every committed change reaches the sink, in per-key order,
 * nothing rolled back. A fault test: it restarts the shared server, so it
 * runs alone after the rest (vitest.fault.config.ts).
 */

const ADMIN = 'mysql://root@127.0.0.1:3306/';
const DB = `ferry_myrestart_${randomBytes(4).toString('hex')}`;
const URL = `mysql://root@127.0.0.1:3306/${DB}`;
const TABLES = ['orders', 'customers'] as const;
const running: FerryProcess[] = [];
const prefix = uniquePrefix('myrestart');

async function sql(url: string, text: string): Promise<void> {
  const c = await mysql.createConnection(url);
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await sql(ADMIN, `CREATE DATABASE ${DB}`);
  for (const t of TABLES) {
    await sql(URL, `CREATE TABLE ${t} (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL)`);
    await sql(URL, `INSERT INTO ${t} SELECT seq, 1, 'seed' FROM seq_1_to_1000`);
  }
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await sql(ADMIN, `DROP DATABASE IF EXISTS ${DB}`).catch(() => {});
  await deleteRedisPrefix(prefix);
});

const workload = mariadbWorkload(URL);

describe('mysql-cdc through a MariaDB restart', () => {
  it('reconnects the same agent, resumes at its binlog position and loses nothing', async () => {
    const ws = mysqlCdcWorkspace({ name: 'my-restart', prefix, url: URL, database: DB });
    const { agent, expected, atRestart } = await backlogThroughServerRestart({ ...ws, running, tables: TABLES, seedRows: 1000, workload, restartServer: restartMariadb });
    expect(atRestart).toBeGreaterThan(0);
    expect(atRestart).toBeLessThan(150_000);
    await expectAllDelivered(agent, ws.out, expected);
    expect(agent.stderr()).toContain('source failed; reopening from the last committed position');
    // The waits of test/support (snapshot 60 s, first streamed events 60 s, mariadbd gone 60 s and answering again
    // 60 s, every change 240 s) add up to 480 s; the rest is the two workloads (170,000 changes) and the agents' stops.
  }, 720_000);
});
