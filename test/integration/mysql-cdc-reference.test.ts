import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, REPO, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { ordersAndCustomers, rowPipelineWorkspace, underPipeline, type RowEvent } from '../support/change-ledger.js';

/**
 * The reference source configuration of issue 4, run exactly as written: the
 * user `repl` with the documented grants and a password given through
 * `${env:REPL_PASSWORD}`, the database `shop`, serverId 4711, an initial
 * snapshot, then the binlog stream.
 *
 * The names are the document's and fixed: no other test file uses the
 * database `shop` or the user `repl`, and this one removes both when it
 * ends. The other mysql-cdc tests draw their serverIds from 5000–8999,
 * 20000–29999, 30000–30999 and 100000 up, so 4711 meets none of them on the
 * shared server.
 */

const REFERENCE = `source:
  type: mysql-cdc
  connection: "mysql://repl:\${env:REPL_PASSWORD}@127.0.0.1:3306/shop"
  serverId: 4711
  tables: [shop.orders, shop.customers]
  snapshot: initial            # initial | never | when_needed
`;

// A secret as a password manager makes one: characters a URL would need escaped, given raw.
const REPL_PASSWORD = `pw#${randomBytes(6).toString('hex')}/@?`;
const prefix = uniquePrefix('myref');
const running: FerryProcess[] = [];
let root: mysql.Connection;

beforeAll(async () => {
  root = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: true });
  // A run killed before its cleanup leaves them behind; they are this file's alone.
  await root.query(`DROP DATABASE IF EXISTS shop; DROP USER IF EXISTS 'repl'@'%'`);
  await root.query(`CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL);
    CREATE TABLE shop.customers (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL);
    INSERT INTO shop.orders VALUES (1, 1, 'seed'), (2, 1, 'seed'), (3, 1, 'seed');
    INSERT INTO shop.customers VALUES (1, 1, 'seed'), (2, 1, 'seed');`);
  // The user and grants of docs/sources/mysql-cdc.md, nothing more.
  await root.query(`CREATE USER 'repl'@'%' IDENTIFIED BY ?`, [REPL_PASSWORD]);
  await root.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%';
    GRANT SELECT ON shop.orders TO 'repl'@'%';
    GRANT SELECT ON shop.customers TO 'repl'@'%';`);
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await root?.query(`DROP DATABASE IF EXISTS shop; DROP USER IF EXISTS 'repl'@'%'`);
  await root?.end();
  await deleteRedisPrefix(prefix);
});

describe('mysql-cdc reference configuration (issue 4)', () => {
  it('is the one the docs show', () => {
    expect(readFileSync(join(REPO, 'docs/sources/mysql-cdc.md'), 'utf8')).toContain(`\`\`\`yaml\n${REFERENCE}\`\`\``);
  });

  it('works as written: snapshots both tables, then streams from the binlog as repl', async () => {
    const ws = rowPipelineWorkspace({
      name: 'my-reference',
      prefix,
      logLevel: 'info',
      tables: ordersAndCustomers((t) => `shop.${t}`),
      source: underPipeline(REFERENCE),
    });
    const env = { REPL_PASSWORD };

    const check = await runFerry(['check', '--config', ws.config], { env });
    expect(check.code, check.stdout).toBe(0);
    expect(check.stdout).toMatch(/^✓ shop\/source \(mysql-cdc\) +REPLICATION SLAVE +granted/m);
    expect(check.stdout).toMatch(/^✓ shop\/source \(mysql-cdc\) +server_id +server @@server_id = \d+, source\.serverId = 4711/m);

    const agent = startAgent(ws.config, { env });
    running.push(agent);
    const events = () => readJsonLines<RowEvent>(ws.out);
    await waitFor('the snapshot of both tables', () => events().length >= 5 || agent.proc.exitCode !== null, 120_000, 200);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    expect(events().map((e) => [e.type, e.data.id]).sort()).toEqual([
      ['customer.snapshot', 1], ['customer.snapshot', 2],
      ['order.snapshot', 1], ['order.snapshot', 2], ['order.snapshot', 3],
    ]);

    await root.query(`INSERT INTO shop.orders VALUES (4, 1, 'streamed'); UPDATE shop.customers SET version = 2, note = 'streamed' WHERE id = 2`);
    await waitFor('the streamed changes', () => events().length >= 7 || agent.proc.exitCode !== null, 120_000, 200);
    // Two keys, two partitions: their order at the sink is not defined.
    expect(events().slice(5).map((e) => [e.type, e.data]).sort()).toEqual([
      ['customer.updated', { id: 2, version: 2, note: 'streamed' }],
      ['order.created', { id: 4, version: 1, note: 'streamed' }],
    ]);
    // The binlog is read by the configured user (a password MariaDB did check), not by root.
    const [dumps] = await root.query<RowDataPacket[]>(`SELECT USER AS user FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'`);
    expect(dumps.map((d) => d.user)).toContain('repl');
    expect(await agent.stop()).toBe(0);
    expect(agent.stdout() + agent.stderr()).not.toContain(REPL_PASSWORD);
  }, 300_000); // the two waits for the sink add up to 240 s; the rest is `ferry check` and the agent's stop
});
