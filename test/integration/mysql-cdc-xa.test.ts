import { randomBytes } from 'node:crypto';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { FerryError } from '../../agent/errors/index.js';
import type { Checkpoint, SourceRecord } from '../../agent/plugin/source.js';
import type { MysqlCdcSource } from '../../sources/mysql-cdc/index.js';
import { comparePosition, type BinlogPosition } from '../../sources/mysql-cdc/position.js';
import { contextFor, drain, masterStatus, sourceFor, useFixture } from './mysql-cdc.helpers.js';

/**
 * Two-phase XA transactions on MariaDB: the binlog holds a prepared
 * transaction's rows at XA PREPARE, and its outcome (XA COMMIT or XA
 * ROLLBACK) later as a group of its own, other transactions in between.
 * Nothing of a rolled-back one may reach the sinks, and a committed one's
 * rows must not be lost by a restart while it is undecided.
 */
const [fx, t] = useFixture('xa');
const tag = randomBytes(3).toString('hex');
let serial = 0;
/** Prepared XA transactions outlive their session and hold locks: every one a test leaves undecided is rolled back. */
const undecided = new Set<string>();

afterAll(async () => {
  for (const xid of undecided) await fx.root.query(`XA ROLLBACK '${xid}'`).catch(() => undefined);
});

/** XA START ... XA PREPARE in a session of its own (a session with a prepared XA can do nothing else), which then ends. */
async function prepareXa(statements: string[]): Promise<string> {
  const xid = `ferry-${tag}-${++serial}`;
  const conn = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', database: fx.database });
  try {
    await conn.query(`XA START '${xid}'`);
    for (const sql of statements) await conn.query(sql);
    await conn.query(`XA END '${xid}'`);
    await conn.query(`XA PREPARE '${xid}'`);
    undecided.add(xid);
  } finally {
    await conn.end();
  }
  return xid;
}

/** XA COMMIT / XA ROLLBACK from another session; returns the GTID the server gave the outcome. */
async function decideXa(xid: string, outcome: 'COMMIT' | 'ROLLBACK'): Promise<string> {
  await fx.root.query(`XA ${outcome} '${xid}'`);
  undecided.delete(xid);
  const [[row]] = await fx.root.query<RowDataPacket[]>('SELECT @@last_gtid AS gtid');
  return String(row?.gtid);
}

const ids = (records: SourceRecord[]) => records.map((r) => r.data.id);
const has = (id: number) => (records: SourceRecord[]) => records.some((r) => r.data.id === id);
const positionOf = (cp: Checkpoint | undefined) => cp as unknown as BinlogPosition;
/** A record's `position` (`file:pos`, where its row event starts). */
const at = (r: SourceRecord): BinlogPosition => ({ file: r.position.slice(0, r.position.lastIndexOf(':')), pos: Number(r.position.slice(r.position.lastIndexOf(':') + 1)) });

describe('mysql-cdc XA transactions', () => {
  it('never emits the rows of an XA transaction rolled back after an ordinary transaction committed', async () => {
    await fx.root.query(`CREATE TABLE ${t('rolled')} (id INT PRIMARY KEY, v VARCHAR(20))`);
    const source = sourceFor(fx, { tables: [t('rolled')] });
    await source.open(undefined, contextFor());
    try {
      const xid = await prepareXa([`INSERT INTO ${t('rolled')} VALUES (1, 'xa'), (2, 'xa')`, `UPDATE ${t('rolled')} SET v = 'xa2' WHERE id = 2`]);
      await fx.root.query(`INSERT INTO ${t('rolled')} VALUES (3, 'plain')`);
      await decideXa(xid, 'ROLLBACK');
      await fx.root.query(`INSERT INTO ${t('rolled')} VALUES (4, 'after')`);
      const { records } = await drain(source, has(4));
      expect(ids(records)).toEqual([3, 4]);
    } finally {
      await source.close();
    }
  });

  it("emits a committed XA transaction's rows once, at its XA COMMIT, under the commit's GTID", async () => {
    await fx.root.query(`CREATE TABLE ${t('committed')} (id INT PRIMARY KEY, v VARCHAR(20))`);
    const source = sourceFor(fx, { tables: [t('committed')] });
    await source.open(undefined, contextFor());
    try {
      const xid = await prepareXa([`INSERT INTO ${t('committed')} VALUES (1, 'xa'), (2, 'xa')`]);
      await fx.root.query(`INSERT INTO ${t('committed')} VALUES (3, 'plain')`);
      const commitGtid = await decideXa(xid, 'COMMIT');
      await fx.root.query(`INSERT INTO ${t('committed')} VALUES (4, 'after')`);
      const { records } = await drain(source, has(4));
      expect(ids(records)).toEqual([3, 1, 2, 4]);
      const [plain, first, second] = records as [SourceRecord, SourceRecord, SourceRecord];
      expect(first.txid).toBe(commitGtid);
      expect(second.txid).toBe(commitGtid);
      expect(plain.txid).not.toBe(commitGtid);
      // Change ids still name the row events where the XA PREPARE wrote them: before the ordinary transaction.
      expect(first.changeId).toBe(`${first.position}:0`);
      expect(second.changeId).toBe(`${first.position}:1`);
      expect(comparePosition(at(first), at(plain))).toBe(-1);
    } finally {
      await source.close();
    }
  });

  it('keeps the position before an undecided XA transaction, so that a restart still emits its rows at the later commit', async () => {
    await fx.root.query(`CREATE TABLE ${t('restart')} (id INT PRIMARY KEY, v VARCHAR(20))`);
    const first = sourceFor(fx, { tables: [t('restart')] });
    await first.open(undefined, contextFor());
    const xid = await prepareXa([`INSERT INTO ${t('restart')} VALUES (1, 'xa')`]);
    const afterPrepare = await masterStatus(fx);
    await fx.root.query(`INSERT INTO ${t('restart')} VALUES (2, 'plain')`);
    const run1 = await drain(first, has(2)).finally(() => first.close());
    // The agent stops (or crashes) here, the XA transaction's row only in its memory; the outcome comes while it is down.
    await decideXa(xid, 'COMMIT');
    await fx.root.query(`INSERT INTO ${t('restart')} VALUES (3, 'after')`);
    expect(ids(run1.records)).toEqual([2]);
    expect(comparePosition(positionOf(run1.checkpoint), afterPrepare)).toBe(-1);

    const second = sourceFor(fx, { tables: [t('restart')] });
    await second.open(run1.checkpoint, contextFor());
    try {
      const run2 = await drain(second, has(3));
      // 2 again (re-read from before the XA: a duplicate the sinks drop), then the XA's row at its commit.
      expect(ids(run2.records)).toEqual([2, 1, 3]);
      expect(run2.records[0]?.changeId).toBe(run1.records[0]?.changeId);
    } finally {
      await second.close();
    }
  });

  it('treats XA COMMIT ... ONE PHASE as an ordinary transaction', async () => {
    await fx.root.query(`CREATE TABLE ${t('onephase')} (id INT PRIMARY KEY)`);
    const source = sourceFor(fx, { tables: [t('onephase')] });
    await source.open(undefined, contextFor());
    try {
      const xid = `ferry-${tag}-${++serial}`;
      await fx.root.query(`XA START '${xid}'`);
      await fx.root.query(`INSERT INTO ${t('onephase')} VALUES (1)`);
      await fx.root.query(`XA END '${xid}'`);
      await fx.root.query(`XA COMMIT '${xid}' ONE PHASE`);
      const end = await masterStatus(fx);
      const { records, checkpoint } = await drain(source, has(1));
      expect(ids(records)).toEqual([1]);
      // Its checkpoint is past it: nothing is held back.
      expect(comparePosition(positionOf(checkpoint), end)).toBeLessThanOrEqual(0);
      expect(comparePosition(positionOf(checkpoint), at(records[0]!))).toBe(1);
    } finally {
      await source.close();
    }
  });

  it('stops with a typed error when undecided XA transactions hold more rows than maxBufferedEvents', async () => {
    await fx.root.query(`CREATE TABLE ${t('big')} (id INT PRIMARY KEY, v VARCHAR(20))`);
    const source: MysqlCdcSource = sourceFor(fx, { tables: [t('big')], maxBufferedEvents: 1000 });
    await source.open(undefined, contextFor());
    const xid = await prepareXa([`INSERT INTO ${t('big')} SELECT seq, 'xa' FROM seq_1_to_1001`]);
    try {
      await fx.root.query(`INSERT INTO ${t('big')} VALUES (5000, 'plain')`);
      const records: SourceRecord[] = [];
      let error: unknown;
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 15_000);
      try {
        for await (const batch of source.read(ac.signal)) {
          records.push(...batch.records);
          if (has(5000)(records)) ac.abort(); // read past the XA transaction without stopping
        }
      } catch (err) {
        error = err;
      } finally {
        clearTimeout(timer);
      }
      expect(error).toBeInstanceOf(FerryError);
      const e = error as FerryError;
      expect(e.code).toBe('FERRY_CONFIG_INVALID');
      expect(e.where).toBe('source.maxBufferedEvents');
      expect(e.message).toContain(`X'${Buffer.from(xid).toString('hex')}',X'',1`);
      expect(e.fix).toMatch(/XA RECOVER/);
      expect(records).toEqual([]);
    } finally {
      await source.close();
      await decideXa(xid, 'ROLLBACK');
    }
  });
});
