import { randomBytes } from 'node:crypto';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll } from 'vitest';
import pino from 'pino';
import { MemoryStateStore } from '../../agent/checkpoint/state-store.js';
import type { Checkpoint, SourceBatch, SourceContext, SourceRecord } from '../../agent/plugin/source.js';
import { MysqlCdcSource, type MysqlCdcSettings } from '../../sources/mysql-cdc/index.js';

/**
 * Test fixtures for the mysql-cdc source against the real MariaDB
 * (root, no password, 127.0.0.1:3306): a fresh database and a replication
 * user with a password per test file, and a driver that calls
 * open/read/commit the way the runtime does.
 */
export interface MysqlFixture {
  root: Connection;
  database: string;
  user: string;
  password: string;
  url: string;
  drop(): Promise<void>;
}

export async function createFixture(tag: string): Promise<MysqlFixture> {
  const suffix = randomBytes(3).toString('hex');
  const database = `ferry_${tag}_${suffix}`;
  const user = `repl_${tag}_${suffix}`.slice(0, 32);
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const root = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', multipleStatements: true });
  await root.query(`CREATE DATABASE \`${database}\``);
  await root.query(`CREATE USER '${user}'@'%' IDENTIFIED BY '${password}'`);
  await root.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${user}'@'%'`);
  return {
    root,
    database,
    user,
    password,
    url: `mysql://${user}:${encodeURIComponent(password)}@127.0.0.1:3306/${database}`,
    async drop() {
      await root.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await root.query(`DROP USER IF EXISTS '${user}'@'%'`);
      await root.end();
    },
  };
}

/**
 * A fixture for the whole test file: created before its first test, dropped
 * after its last. Returns the fixture (filled in by `beforeAll`) and a
 * function naming a table in its database.
 */
export function useFixture(tag: string): [MysqlFixture, (table: string) => string] {
  const fx = {} as MysqlFixture;
  beforeAll(async () => {
    Object.assign(fx, await createFixture(tag));
  });
  afterAll(async () => {
    await fx.drop?.();
  });
  return [fx, (table) => `${fx.database}.${table}`];
}

/**
 * Row changes around ALTER TABLE ADD, DROP and CHANGE COLUMN on `table`
 * (created as `id INT PRIMARY KEY, a VARCHAR(10), b INT`); what a reader
 * must make of them is ALTER_MID_STREAM_CHANGES.
 */
export async function alterMidStream(fx: MysqlFixture, table: string): Promise<void> {
  await fx.root.query(`INSERT INTO ${table} VALUES (1, 'one', 10)`);
  await fx.root.query(`ALTER TABLE ${table} ADD COLUMN c DATE AFTER id`);
  await fx.root.query(`INSERT INTO ${table} VALUES (2, '2024-05-06', 'two', 20)`);
  await fx.root.query(`ALTER TABLE ${table} DROP COLUMN a`);
  await fx.root.query(`UPDATE ${table} SET b = 21 WHERE id = 2`);
  await fx.root.query(`ALTER TABLE ${table} CHANGE COLUMN b amount INT`);
  await fx.root.query(`DELETE FROM ${table} WHERE id = 1`);
}

/** [op, data] of the changes alterMidStream makes: each under the columns of its time. */
export const ALTER_MID_STREAM_CHANGES = [
  ['c', { id: 1, a: 'one', b: 10 }],
  ['c', { id: 2, c: '2024-05-06', a: 'two', b: 20 }],
  ['u', { id: 2, c: '2024-05-06', b: 21 }],
  ['d', { id: 1, c: null, amount: 10 }],
];

/** The end of the binlog now (`SHOW MASTER STATUS`). */
export async function masterStatus(fx: MysqlFixture): Promise<{ file: string; pos: number }> {
  const [[row]] = await fx.root.query<RowDataPacket[]>('SHOW MASTER STATUS');
  return { file: String(row?.File), pos: Number(row?.Position) };
}

/** A serverId no other test file picks (they run side by side on one server). */
export function uniqueServerId(): number {
  return 100_000 + Math.floor(Math.random() * 1_000_000_000);
}

export function sourceFor(fx: MysqlFixture, settings: Partial<MysqlCdcSettings> & { tables: string[] }): MysqlCdcSource {
  return new MysqlCdcSource({
    connection: fx.url,
    serverId: uniqueServerId(),
    snapshot: 'never',
    snapshotChunkSize: 5000,
    maxBatchSize: 500,
    maxBufferedEvents: 1000,
    retentionToleranceHours: 72,
    ...settings,
  });
}

export function contextFor(state = new MemoryStateStore()): SourceContext {
  return { pipeline: 'test', agentId: 'test-agent', dataDir: '/tmp', state, logger: pino({ level: 'silent' }) };
}

export interface Drained {
  records: SourceRecord[];
  batches: SourceBatch[];
  /** The checkpoint of the last batch. */
  checkpoint: Checkpoint | undefined;
}

/**
 * How long a drain waits for what it is after, by default. Generous: the
 * server may take up to 30 s to start a binlog dump before the source gives
 * up (binlog-stream.ts START_TIMEOUT_MS), and a drain that gets what it wants
 * returns at once.
 */
export const DRAIN_WAIT_MS = 60_000;

/**
 * Pulls batches until `done(records so far)` holds, then aborts the signal
 * and lets the iterator return, as the runtime does on shutdown. Fails
 * when `done` does not hold within `timeoutMs`. Does not close the source.
 */
export async function drain(source: MysqlCdcSource, done: (records: SourceRecord[]) => boolean, timeoutMs = DRAIN_WAIT_MS): Promise<Drained> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: Drained = { records: [], batches: [], checkpoint: undefined };
  try {
    for await (const batch of source.read(ac.signal)) {
      out.batches.push(batch);
      out.records.push(...batch.records);
      out.checkpoint = batch.checkpoint;
      if (done(out.records)) ac.abort();
    }
  } finally {
    clearTimeout(timer);
  }
  if (!done(out.records)) throw new Error(`drain timed out after ${timeoutMs} ms with ${out.records.length} records: ${JSON.stringify(out.records.slice(-3))}`);
  return out;
}

/** Opens, drains until `done`, commits the last checkpoint and closes: one run of the agent. */
export async function runOnce(source: MysqlCdcSource, from: Checkpoint | undefined, done: (records: SourceRecord[]) => boolean): Promise<Drained> {
  const ctx = contextFor();
  try {
    await source.open(from, ctx);
    if (from !== undefined) await source.commit(from);
    const out = await drain(source, done);
    if (out.checkpoint !== undefined) await source.commit(out.checkpoint);
    return out;
  } finally {
    await source.close();
  }
}
