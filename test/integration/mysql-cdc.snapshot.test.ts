import { describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2';
import { FerryError } from '../../agent/errors/index.js';
import type { SnapshotBatch, SnapshotRequest, SourceRecord } from '../../agent/plugin/source.js';
import type { MysqlCdcSource } from '../../sources/mysql-cdc/index.js';
import { contextFor, drain, runOnce, sourceFor, useFixture } from './mysql-cdc.helpers.js';

const [fx, t] = useFixture('snap');
const SENTINEL = 1_000_000;

async function fill(table: string, rows: number): Promise<void> {
  await fx.root.query(`CREATE TABLE ${t(table)} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(20))`);
  const values = Array.from({ length: rows }, (_, i) => `(${i + 1}, ${i + 1}, 'n${i + 1}')`).join(',');
  await fx.root.query(`INSERT INTO ${t(table)} VALUES ${values}`);
}

/** Replays records (snapshot then stream) into a map, as a consumer would. */
function replay(records: SourceRecord[]): Map<number, Record<string, unknown>> {
  const state = new Map<number, Record<string, unknown>>();
  for (const r of records) {
    const id = Number((r.op === 'd' ? r.before : r.data)?.id);
    if (r.op === 'd') state.delete(id);
    else state.set(id, r.data);
  }
  return state;
}

async function tableState(table: string): Promise<Map<number, Record<string, unknown>>> {
  const [rows] = await fx.root.query<RowDataPacket[]>(`SELECT id, v, note FROM ${t(table)}`);
  return new Map(rows.map((r) => [Number(r.id), { id: r.id, v: r.v, note: r.note }]));
}

/** Runs `ferry snapshot`'s read on a created, never opened source, then closes it. */
async function onDemand(source: MysqlCdcSource, request: SnapshotRequest): Promise<SnapshotBatch[]> {
  const batches: SnapshotBatch[] = [];
  try {
    for await (const b of source.snapshot(request, contextFor(), new AbortController().signal)) batches.push(b);
  } finally {
    await source.close();
  }
  return batches;
}

// the sentinel as streamed (op c), not as a resumed snapshot may read it (op r)
const sawSentinel = (records: SourceRecord[]): boolean => records.some((r) => r.op === 'c' && r.data.id === SENTINEL);

// At least the sum of each test's waits: the busy snapshot's drain of 120 s, or two runOnce drains (60 s each by default).
describe('mysql-cdc snapshot', { timeout: 180_000 }, () => {
  it('takes a snapshot consistent with concurrent writes: replaying its events reproduces the table', async () => {
    await fill('busy', 3000);
    const source = sourceFor(fx, { tables: [t('busy')], snapshot: 'initial', snapshotChunkSize: 250 });
    await source.open(undefined, contextFor());
    // What the reader has handed out so far (drain's own array, watched through its `done`).
    let seen: SourceRecord[] = [];
    let writing = true;
    // Writes from before the snapshot's consistent read until the stream has begun, so every chunk is
    // read while the table changes; at least 50 of them after the first chunk came, so they must stream.
    const writer = (async () => {
      let n = 0;
      let afterFirstChunk = 0;
      while (writing && (afterFirstChunk < 50 || !seen.some((r) => r.op !== 'r'))) {
        if (seen.length > 0) afterFirstChunk++;
        n++;
        const id = 1 + ((n * 7919) % 3500);
        await fx.root.query(`INSERT INTO ${t('busy')} VALUES (?, ?, 'w') ON DUPLICATE KEY UPDATE v = v + 1, note = 'u'`, [id, n]);
        if (n % 5 === 0) await fx.root.query(`DELETE FROM ${t('busy')} WHERE id = ?`, [1 + ((n * 104729) % 3500)]);
      }
      await fx.root.query(`INSERT INTO ${t('busy')} VALUES (?, 0, 'end')`, [SENTINEL]);
    })();
    try {
      const { records, batches } = await drain(source, (rs) => sawSentinel((seen = rs)), 120_000);
      await writer;
      const snapshotRows = records.filter((r) => r.op === 'r');
      expect(snapshotRows.length).toBeGreaterThan(2000);
      expect(records.filter((r) => r.op !== 'r').length).toBeGreaterThan(10);
      // snapshot first, in key order, then the stream
      const firstStream = records.findIndex((r) => r.op !== 'r');
      expect(records.slice(firstStream).every((r) => r.op !== 'r')).toBe(true);
      const ids = snapshotRows.map((r) => Number(r.data.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect((batches.at(-1)!.checkpoint as { phase: string }).phase).toBe('stream');
      expect(replay(records)).toEqual(await tableState('busy'));
    } finally {
      writing = false;
      await writer.catch(() => undefined);
      await source.close();
    }
  });

  it('resumes an interrupted snapshot after its last chunk: what changed while down streams first, then the rest of the rows, then the stream', async () => {
    await fill('resume', 1000);
    const settings = { tables: [t('resume')], snapshot: 'initial' as const, snapshotChunkSize: 100 };
    const run1 = await runOnce(sourceFor(fx, settings), undefined, (r) => r.length >= 300);
    expect(run1.checkpoint).toMatchObject({ phase: 'snapshot', table: 0, after: [300] });

    // written while the agent is down, mid-snapshot
    await fx.root.query(`UPDATE ${t('resume')} SET v = -50 WHERE id = 50`);
    await fx.root.query(`UPDATE ${t('resume')} SET v = -900 WHERE id = 900`);
    await fx.root.query(`UPDATE ${t('resume')} SET v = -901 WHERE id = 900`);
    await fx.root.query(`DELETE FROM ${t('resume')} WHERE id = 901`);
    await fx.root.query(`INSERT INTO ${t('resume')} VALUES (?, 0, 'end')`, [SENTINEL]);

    const run2 = await runOnce(sourceFor(fx, settings), run1.checkpoint, (rs) => sawSentinel(rs) && rs.some((r) => r.op === 'r' && r.data.id === 1000));
    const resumed = run2.records.filter((r) => r.op === 'r');
    expect(resumed[0]!.data.id).toBe(301);
    // Per key, no older version after a newer one: a row beyond the resume point changed twice while down
    // arrives as its two changes, then as read now; one before it as read then, then its change.
    const history = (id: number) => [...run1.records, ...run2.records].filter((r) => (r.op === 'd' ? r.before : r.data)?.id === id).map((r) => `${r.op}:${String(r.data.v)}`);
    expect(history(900)).toEqual(['u:-900', 'u:-901', 'r:-901']);
    expect(history(50)).toEqual(['r:50', 'u:-50']);
    expect(history(901).map((h) => h.split(':')[0])).toEqual(['d']);
    // Inserted while down: its insert, then the row as read now; the stream goes on from the resumed read's
    // position, not the first one, so the insert does not come again after the rows.
    expect(run2.records.filter((r) => r.data.id === SENTINEL).map((r) => r.op)).toEqual(['c', 'r']);
    // the same row read twice (a restart re-reading a chunk) gets the same id
    expect(new Set(resumed.map((r) => r.changeId)).size).toBe(resumed.length);
    expect(resumed[0]!.changeId).toMatch(/^snapshot:mariadb-bin\.\d+:\d+:.*\.resume:\[301\]$/);
    expect(replay([...run1.records, ...run2.records])).toEqual(await tableState('resume'));
  });

  it('re-snapshots on request (ferry snapshot) whatever snapshot says: chosen tables, a where condition, run-scoped ids, progress', async () => {
    await fill('again', 500);
    await fill('other', 10);
    const source = sourceFor(fx, { tables: [t('again'), t('other')], snapshot: 'never', snapshotChunkSize: 100 });
    const batches = await onDemand(source, { tables: [t('again')], where: 'id > 10 AND note <> \'n500\'', runId: 'run1' });
    const records = batches.flatMap((b) => b.records);
    expect(records.every((r) => r.op === 'r' && r.origin.name === t('again'))).toBe(true);
    expect(records.map((r) => r.data.id)).toEqual(Array.from({ length: 489 }, (_, i) => i + 11));
    expect(records[0]!.changeId).toBe(`snapshot:run1:${t('again')}:[11]`);
    // the total is counted under the condition, so the bar ends at 100%
    expect(batches.map((b) => b.progress)).toEqual([100, 200, 300, 400, 489].map((rowsDone) => ({ table: t('again'), rowsDone, rowsTotal: 489 })));
  });

  it('refuses a snapshot of an uncaptured table, a where with ";" and a where the server rejects, as usage errors', async () => {
    await fill('refuse', 3);
    const run = (request: SnapshotRequest) => onDemand(sourceFor(fx, { tables: [t('refuse')] }), request);
    for (const request of [
      { tables: [t('nope')], runId: 'x' },
      { where: 'id > 1; DROP TABLE x', runId: 'x' },
      { where: 'no_such_column = 1', runId: 'x' },
    ]) {
      const err = await run(request).then(() => undefined, (e: unknown) => e);
      expect(err, JSON.stringify(request)).toBeInstanceOf(FerryError);
      expect((err as FerryError).code).toBe('FERRY_USAGE');
    }
  });

  it('decodes every column type the same in the snapshot as in the stream', async () => {
    await fx.root.query(`CREATE TABLE ${t('types')} (
      id INT UNSIGNED PRIMARY KEY, big BIGINT, ubig BIGINT UNSIGNED, amount DECIMAL(20,6), happened DATETIME(3), plain DATETIME,
      stamped TIMESTAMP(6) NULL, doc JSON, state ENUM('new','paid'), tags SET('x','y','z'), raw BLOB, bin VARBINARY(4), flags BIT(10),
      flag BIT(1), name VARCHAR(20) CHARACTER SET latin1, ratio DOUBLE, real4 FLOAT, day DATE, at TIME(2), yr YEAR, tiny TINYINT, note TEXT)`);
    const streamed = sourceFor(fx, { tables: [t('types')] });
    await streamed.open(undefined, contextFor());
    await fx.root.query(`INSERT INTO ${t('types')} VALUES
      (1, -9007199254740993, 18446744073709551615, '-12345678901234.123456', '2024-01-02 03:04:05.678', '1999-12-31 23:59:59',
       '2024-01-02 03:04:05.123456', '{"a": [1, 2.50, "x"]}', 'paid', 'x,z', x'00ff10', x'01', b'1010101010', b'1', 'Müller', 1.5, 0.25,
       '2024-02-29', '-12:34:56.78', 2024, -128, 'long text'),
      (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
    const stream = await drain(streamed, (r) => r.length >= 2, 60_000).finally(() => streamed.close());
    const snap = (await onDemand(sourceFor(fx, { tables: [t('types')] }), { runId: 'types' })).flatMap((b) => b.records);
    expect(snap.map((r) => r.op)).toEqual(['r', 'r']);
    expect(snap.map((r) => r.data)).toEqual(stream.records.map((r) => r.data));
    expect(stream.records[0]!.data).toMatchObject({ name: 'Müller', plain: '1999-12-31T23:59:59', bin: 'AQ==', at: '-12:34:56.78', tiny: -128 });
  });
});
