import { Readable } from 'node:stream';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../agent/errors/codes.js';
import { FerryError } from '../../agent/errors/index.js';
import type { Checkpoint, SourceRecord } from '../../agent/plugin/source.js';
import { checkpointKey } from '../../agent/queue/queue-names.js';
import type { MysqlCdcSource } from '../../sources/mysql-cdc/index.js';
import { comparePosition, formatPosition, type BinlogPosition } from '../../sources/mysql-cdc/position.js';
import { deleteRedisPrefix, readJsonLines, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace, type RowEvent } from '../support/change-ledger.js';
import { contextFor, drain, masterStatus, sourceFor, uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

/**
 * Row changes a session logs as SQL statements (binlog_format STATEMENT, or
 * MIXED for statements it deems safe) carry no row events: the source must
 * stop at them, not skip them. Only session settings change here (root may
 * set them), so this file runs with the others.
 */
const [fx, t] = useFixture('stmt');
let other = '';
/** A session that writes statements, as a legacy application might. */
let statements: Connection;
const running: FerryProcess[] = [];
let prefix = '';

beforeAll(async () => {
  other = `${fx.database}_other`;
  await fx.root.query(`CREATE DATABASE \`${other}\``);
  statements = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: true });
  await statements.query(`SET SESSION binlog_format = 'STATEMENT'`);
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await statements?.end();
  await fx.root.query(`DROP DATABASE IF EXISTS \`${other}\``);
  if (prefix) await deleteRedisPrefix(prefix);
});

interface Stopped {
  records: SourceRecord[];
  checkpoint: Checkpoint | undefined;
  error: unknown;
}

/** Reads until the source throws (or `timeoutMs` passes): what it handed over before, and the error. */
async function readUntilStopped(source: MysqlCdcSource, timeoutMs = 15_000): Promise<Stopped> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: Stopped = { records: [], checkpoint: undefined, error: undefined };
  try {
    for await (const batch of source.read(ac.signal)) {
      out.records.push(...batch.records);
      out.checkpoint = batch.checkpoint;
    }
  } catch (err) {
    out.error = err;
  } finally {
    clearTimeout(timer);
  }
  return out;
}

/** A statement in the binlog: its event, where its transaction starts (its GTID event), and the event's type. */
interface LoggedStatement {
  at: BinlogPosition;
  transaction: BinlogPosition;
  type: string;
}

/** The first binlog event after `from` whose statement contains `marker` (as SHOW BINLOG EVENTS prints it). */
async function findStatement(from: BinlogPosition, marker: string): Promise<LoggedStatement> {
  const [logs] = await fx.root.query<RowDataPacket[]>('SHOW BINARY LOGS');
  for (const file of logs.map((l) => String(l.Log_name)).filter((f) => comparePosition({ file: f, pos: 0 }, { file: from.file, pos: 0 }) >= 0)) {
    const [events] = await fx.root.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ? FROM ?`, [file, file === from.file ? from.pos : 4]);
    let gtid: number | undefined;
    for (const e of events) {
      if (e.Event_type === 'Gtid') gtid = Number(e.Pos);
      if (e.Event_type !== 'Annotate_rows' && String(e.Info).includes(marker)) {
        return { at: { file, pos: Number(e.Pos) }, transaction: { file, pos: gtid ?? Number(e.Pos) }, type: String(e.Event_type) };
      }
    }
  }
  throw new Error(`no binlog event with ${marker} after ${formatPosition(from)}`);
}

/**
 * Creates `table` (id, note), opens a source on it, runs `write` and reads
 * until the source stops: what it handed over, and the binlog event whose
 * statement contains `marker`.
 */
async function stopAtStatement(table: string, marker: string, write: () => Promise<unknown>): Promise<{ stopped: Stopped; stmt: LoggedStatement }> {
  await fx.root.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, note VARCHAR(40))`);
  const source = sourceFor(fx, { tables: [table] });
  await source.open(undefined, contextFor());
  const from = await masterStatus(fx);
  let stopped: Stopped;
  try {
    await write();
    stopped = await readUntilStopped(source);
  } finally {
    await source.close();
  }
  return { stopped, stmt: await findStatement(from, marker) };
}

function expectStoppedAt(stopped: Stopped, at: BinlogPosition): FerryError {
  const err = stopped.error as FerryError;
  expect(err, `no error; read ${JSON.stringify(stopped.records.map((r) => r.data))}`).toBeInstanceOf(FerryError);
  expect(err.name).toBe('FerryError'); // not a RetryableError: a reopen would only meet it again
  expect(err.code).toBe('FERRY_SOURCE_STATEMENT_BINLOG');
  expect(err.where).toBe(`binlog ${formatPosition(at)}`);
  expect(err.message).toContain(`binlog ${formatPosition(at)}`);
  return err;
}

const position = (cp: Checkpoint | undefined): BinlogPosition => cp as unknown as BinlogPosition;
const rowAt = (r: SourceRecord): BinlogPosition => {
  const colon = r.position.lastIndexOf(':');
  return { file: r.position.slice(0, colon), pos: Number(r.position.slice(colon + 1)) };
};

describe('mysql-cdc and row changes logged as statements', () => {
  it.each([
    ['INSERT', (tb: string) => `INSERT INTO ${tb} VALUES (3, 'stmt-secret-value')`],
    ['UPDATE', (tb: string) => `UPDATE ${tb} SET note = 'stmt-secret-value' WHERE id = 1`],
    ['DELETE', (tb: string) => `DELETE FROM ${tb} WHERE note <> 'stmt-secret-value' AND id = 2`],
  ])('stops at a STATEMENT-format %s on a captured table, after handing over the rows before it, and never commits past it', async (verb, statement) => {
    const table = t(`s_${verb.toLowerCase()}`);
    const { stopped, stmt } = await stopAtStatement(table, 'stmt-secret-value', async () => {
      await fx.root.query(`INSERT INTO ${table} VALUES (1, 'row')`);
      await fx.root.query(`INSERT INTO ${table} VALUES (2, 'row')`);
      // The application's session: its default database is the captured one, the table is named without it.
      await statements.query(`USE \`${fx.database}\`; ${statement(table.split('.')[1]!)}`);
      await fx.root.query(`INSERT INTO ${table} VALUES (4, 'after')`);
    });
    expect(stmt.type).toBe('Query');
    const err = expectStoppedAt(stopped, stmt.at);
    expect(err.message).toContain(`${verb} on ${table}`);
    expect(err.message).toContain(`default database ${fx.database}`);
    expect(err.message).toContain(`"${verb}`);
    // the statement's beginning, never its values
    expect(JSON.stringify(err) + err.message).not.toContain('stmt-secret-value');
    expect(err.fix).toMatch(/SET GLOBAL binlog_format = 'ROW'/);
    expect(err.fix).toContain(`startAt: ${stmt.at.file}:`);
    expect(ERROR_CODES[err.code].exit).toBe(1);

    // The rows before it are handed over; nothing after it is.
    expect(stopped.records.map((r) => [r.op, r.data.id])).toEqual([['c', 1], ['c', 2]]);
    // The checkpoint covers them and stays before the statement's transaction.
    const cp = position(stopped.checkpoint);
    expect(comparePosition(cp, rowAt(stopped.records[1]!))).toBeGreaterThan(0);
    expect(comparePosition(cp, stmt.transaction)).toBeLessThanOrEqual(0);

    if (verb !== 'INSERT') return;
    // Restarted from that checkpoint, it stops at the same statement again: it is never skipped.
    const again = sourceFor(fx, { tables: [table] });
    await again.open(stopped.checkpoint, contextFor());
    const rerun = await readUntilStopped(again).finally(() => again.close());
    expectStoppedAt(rerun, stmt.at);
    expect(rerun.records).toEqual([]);

    // The documented way on, skipping only the statement: no stored position, startAt just after it.
    const after = /startAt: (\S+:\d+)/.exec(err.fix!)![1]!;
    const resumed = sourceFor(fx, { tables: [table], startAt: after });
    await resumed.open(undefined, contextFor());
    try {
      const { records } = await drain(resumed, (r) => r.some((x) => x.data.id === 4));
      expect(records.map((r) => [r.op, r.data.id])).toEqual([['c', 4]]);
    } finally {
      await resumed.close();
    }
  });

  it('keeps streaming past STATEMENT-format changes on databases it does not capture', async () => {
    const table = t('s_elsewhere');
    await fx.root.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, note VARCHAR(40))`);
    await fx.root.query(`CREATE TABLE \`${other}\`.t (id INT PRIMARY KEY, note VARCHAR(40))`);
    const source = sourceFor(fx, { tables: [table] });
    await source.open(undefined, contextFor());
    try {
      await fx.root.query(`INSERT INTO ${table} VALUES (1, 'row')`);
      // default database elsewhere, and default database captured with the target named elsewhere
      await statements.query(`USE \`${other}\`; INSERT INTO t VALUES (1, 'x'); UPDATE t SET note = 'y' WHERE id = 1; DELETE FROM t WHERE id = 1`);
      await statements.query(`USE \`${fx.database}\`; INSERT INTO \`${other}\`.t SELECT id, note FROM s_elsewhere; DELETE FROM \`${other}\`.t`);
      await fx.root.query(`INSERT INTO ${table} VALUES (2, 'row')`);
      const { records } = await drain(source, (r) => r.some((x) => x.data.id === 2));
      expect(records.map((r) => [r.op, r.data.id])).toEqual([['c', 1], ['c', 2]]);
    } finally {
      await source.close();
    }
  });

  it('stops at a statement inside a MIXED transaction, handing over its earlier rows under the checkpoint before that transaction', async () => {
    const table = t('s_mixed');
    const { stopped, stmt } = await stopAtStatement(table, 'mixed-marker', async () => {
      await fx.root.query(`INSERT INTO ${table} VALUES (1, 'row')`);
      const mixed = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: true });
      try {
        // MIXED logs the INSERT as rows (UUID() is unsafe for statements) and the UPDATE as a statement, in one transaction.
        await mixed.query(`SET SESSION binlog_format = 'MIXED'; USE \`${fx.database}\`;
          BEGIN; INSERT INTO s_mixed VALUES (2, UUID()); UPDATE s_mixed SET note = 'mixed-marker' WHERE id = 1; COMMIT`);
      } finally {
        await mixed.end();
      }
    });
    expectStoppedAt(stopped, stmt.at);
    // Row 2 is in the statement's own transaction: handed over, but not covered by the checkpoint.
    expect(stopped.records.map((r) => [r.op, r.data.id])).toEqual([['c', 1], ['c', 2]]);
    const cp = position(stopped.checkpoint);
    expect(comparePosition(cp, rowAt(stopped.records[0]!))).toBeGreaterThan(0);
    expect(comparePosition(cp, stmt.transaction)).toBeLessThanOrEqual(0);
    expect(comparePosition(cp, rowAt(stopped.records[1]!))).toBeLessThan(0);
  });

  it('stops at a STATEMENT-format LOAD DATA, which the binlog holds as an EXECUTE_LOAD_QUERY event', async () => {
    const table = t('s_load');
    const { stopped, stmt } = await stopAtStatement(table, 'load-marker.csv', async () => {
      await fx.root.query(`INSERT INTO ${table} VALUES (1, 'row')`);
      await statements.query({
        sql: `LOAD DATA LOCAL INFILE 'load-marker.csv' INTO TABLE ${table} FIELDS TERMINATED BY ','`,
        infileStreamFactory: () => Readable.from([Buffer.from('5,a\n6,b\n')]),
      });
    });
    expect(stmt.type).toBe('Execute_load_query');
    const err = expectStoppedAt(stopped, stmt.at);
    expect(err.message).toContain('LOAD DATA on');
    expect(err.message).not.toContain('load-marker.csv');
    expect(stopped.records.map((r) => [r.op, r.data.id])).toEqual([['c', 1]]);
    expect(comparePosition(position(stopped.checkpoint), stmt.transaction)).toBeLessThanOrEqual(0);
  });

  it('through the agent: the events before the statement reach the sink, the stored position stays before it, and ferry run exits 1', async () => {
    const table = t('orders');
    await fx.root.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, version INT, note VARCHAR(40))`);
    await fx.root.query(`INSERT INTO ${table} VALUES (1, 1, 'seed')`);
    prefix = uniquePrefix('mystmt');
    const ws = rowPipelineWorkspace({
      name: 'my-statement',
      prefix,
      tables: [{ mapping: 'orders', entity: 'order', table }],
      source: `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${uniqueServerId()}
      tables: [${table}]`,
    });
    const agent = startAgent(ws.config);
    running.push(agent);
    const events = () => readJsonLines<RowEvent>(ws.out);
    await waitFor('the snapshot', () => events().length >= 1 || agent.proc.exitCode !== null, 30_000, 200);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();

    const from = await masterStatus(fx);
    await fx.root.query(`INSERT INTO ${table} VALUES (2, 1, 'row')`);
    await fx.root.query(`INSERT INTO ${table} VALUES (3, 1, 'row')`);
    await statements.query(`UPDATE ${table} SET version = 2, note = 'agent-marker' WHERE id = 1`);
    await fx.root.query(`INSERT INTO ${table} VALUES (4, 1, 'after')`);
    const code = await Promise.race([agent.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    expect(code, agent.stderr()).toBe(1);
    const stmt = await findStatement(from, 'agent-marker');
    expect(agent.stderr()).toContain(`FERRY_SOURCE_STATEMENT_BINLOG: binlog ${formatPosition(stmt.at)}`);

    // The stop ends the agent once what it read is queued, not once it is delivered: on a loaded machine the
    // rows before the statement may still wait in Redis. A deliver-only agent empties the queue without reading.
    const want = [['order.created', 2], ['order.created', 3], ['order.snapshot', 1]];
    if (events().length < want.length) {
      const deliver = startAgent(ws.config, { role: 'deliver' });
      running.push(deliver);
      await waitFor('the queued rows at the sink', () => events().length >= want.length || deliver.proc.exitCode !== null, 30_000, 100);
      expect(await deliver.stop()).toBe(0);
    }
    // (one key per partition: their order at the sink is not defined)
    expect(events().map((e) => [e.type, e.data.id]).sort()).toEqual(want);
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      const stored = JSON.parse((await redis.get(checkpointKey(prefix, 'shop')))!) as BinlogPosition;
      expect(comparePosition(stored, stmt.transaction)).toBeLessThanOrEqual(0);
      expect(comparePosition(stored, from)).toBeGreaterThan(0);
    } finally {
      redis.disconnect();
    }
  }, 60_000);
});
