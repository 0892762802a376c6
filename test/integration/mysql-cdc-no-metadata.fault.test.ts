import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2';
import { FerryError } from '../../agent/errors/index.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { waitFor } from '../support/agent-process.js';
import { ALTER_MID_STREAM_CHANGES, alterMidStream, contextFor, drain, runOnce, sourceFor, useFixture } from './mysql-cdc.helpers.js';

// Turns binlog_row_metadata (a global setting) off for the whole server: a
// fault test, run alone after the suite, and it turns it back on.
const [fx, t] = useFixture('nometa');
const count = (n: number) => (records: SourceRecord[]) => records.length >= n;

/** Ids of the binlog dump threads the server runs for this file's user now. */
async function dumpThreads(): Promise<number[]> {
  const [rows] = await fx.root.query<RowDataPacket[]>("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND LIKE 'Binlog Dump%'", [fx.user]);
  return rows.map((r) => Number(r.ID));
}

beforeAll(async () => {
  await fx.root.query('SET GLOBAL binlog_row_metadata = NO_LOG');
});
afterAll(async () => {
  await fx.root.query('SET GLOBAL binlog_row_metadata = FULL');
});

describe('mysql-cdc on a binlog without column names', () => {
  it('follows ALTER TABLE through its schema history, kept in the checkpoint across restarts, and fails loudly on DDL it cannot follow', async () => {
    await fx.root.query(`CREATE TABLE ${t('ddl')} (id INT PRIMARY KEY, a VARCHAR(10), b INT)`);
    const settings = { tables: [t('ddl')], maxBatchSize: 1 };
    // One run of the agent, as runOnce, but the changes are made once it streams: open() fixes the
    // start position and the columns, and the DDL must then arrive in the binlog it is reading.
    const first = sourceFor(fx, settings);
    await first.open(undefined, contextFor());
    const known = await dumpThreads();
    const run1 = await (async () => {
      const draining = drain(first, count(2), 60_000);
      draining.catch(() => undefined); // awaited below
      await waitFor('the binlog dump of the first run', async () => (await dumpThreads()).some((id) => !known.includes(id)), 30_000, 50);
      await alterMidStream(fx, t('ddl'));
      const out = await draining;
      await first.commit(out.checkpoint!);
      return out;
    })().finally(() => first.close());
    expect(run1.records.map((r) => [r.op, r.data])).toEqual(ALTER_MID_STREAM_CHANGES.slice(0, 2));
    // stopped inside the stream: the checkpoint holds the columns as of its position
    expect(run1.checkpoint).toMatchObject({ columns: { [t('ddl')]: [['id', 'int(11)', null], ['c', 'date', null], ['a', 'varchar(10)', 'utf8mb4'], ['b', 'int(11)', null]] } });

    const run2 = await runOnce(sourceFor(fx, settings), run1.checkpoint, (r) => r.some((x) => x.op === 'd'));
    // the checkpoint covers every record of its batch: nothing of run1 again
    expect(run2.records.map((r) => [r.op, r.data])).toEqual(ALTER_MID_STREAM_CHANGES.slice(2));

    await fx.root.query(`ALTER TABLE ${t('ddl')} ADD (x INT, y INT)`);
    await fx.root.query(`INSERT INTO ${t('ddl')} VALUES (3, NULL, 30, 1, 2)`);
    // (run2 may have stopped inside the DELETE's transaction: run3 re-reads it, then must stop at row 3)
    const err = await runOnce(sourceFor(fx, settings), run2.checkpoint, (r) => r.some((x) => x.data.id === 3)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_PREFLIGHT_FAILED');
    expect((err as FerryError).message).toMatch(/columns of .*\.ddl at mariadb-bin\.\d+:\d+ are unknown \(ALTER TABLE specification not understood: ADD \(x INT, y INT\)/);
  }, 300_000); // the first run's 30 s for its dump and 60 s drain, then two runOnce drains (60 s each by default)
});
