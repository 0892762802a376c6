import { describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { ERROR_CODES } from '../../agent/errors/codes.js';
import { BinlogStream } from '../../sources/mysql-cdc/binlog-stream.js';
import { connectionOptions } from '../../sources/mysql-cdc/connection.js';
import type { MysqlCdcSource } from '../../sources/mysql-cdc/index.js';
import { settled, waitFor } from '../support/agent-process.js';
import { ALTER_MID_STREAM_CHANGES, alterMidStream, contextFor, DRAIN_WAIT_MS, drain, masterStatus, runOnce, sourceFor, uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

const [fx, t] = useFixture('cdc');
const count = (n: number) => (records: SourceRecord[]) => records.length >= n;

/** Ids of the binlog dump threads the server runs for this file's user now. */
async function dumpThreads(): Promise<number[]> {
  const [rows] = await fx.root.query<RowDataPacket[]>("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND COMMAND LIKE 'Binlog Dump%'", [fx.user]);
  return rows.map((r) => Number(r.ID));
}

/**
 * Waits until the server runs a binlog dump for this file's user that is not
 * among `known` (taken before the reader started: a closed reader's thread
 * may linger), and returns its id. A reader's dump starts only once it reads.
 */
async function newDumpThread(known: number[]): Promise<number> {
  return waitFor('a new binlog dump thread on the server', async () => (await dumpThreads()).find((id) => !known.includes(id)), 30_000, 50);
}

/** The binlog socket of a source's running stream: pausing it silences the server as a cut network would. */
function binlogSocket(source: MysqlCdcSource): { pause(): void } {
  return (source as unknown as { stream: { zongji: { connection: { stream: { pause(): void } } } } }).stream.zongji.connection.stream;
}

// At least the sum of each test's waits: up to three drains (DRAIN_WAIT_MS each), 30 s for a dump to start or a buffer to fill.
describe('mysql-cdc streaming', { timeout: 240_000 }, () => {
  it('streams inserts, updates and deletes with before and after images and every column type', async () => {
    await fx.root.query(`CREATE TABLE ${t('types')} (
      id INT UNSIGNED PRIMARY KEY, big BIGINT, ubig BIGINT UNSIGNED, amount DECIMAL(20,6), happened DATETIME(3),
      stamped TIMESTAMP(6) NULL, doc JSON, state ENUM('new','paid'), tags SET('x','y','z'), raw BLOB, flags BIT(10),
      flag BIT(1), name VARCHAR(20), ratio DOUBLE, day DATE, tiny TINYINT UNSIGNED, note TEXT)`);
    const source = sourceFor(fx, { tables: [t('types')] });
    await source.open(undefined, contextFor());
    try {
      await fx.root.query(`INSERT INTO ${t('types')} VALUES
        (1, -9007199254740993, 18446744073709551615, '12345678901234.123456', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.123456',
         '{"a":[1,2.50,"x"]}', 'paid', 'x,z', x'00ff10', b'1010101010', b'1', 'hé', 1.5, '2024-02-29', 255, 'long text'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
      await fx.root.query(`UPDATE ${t('types')} SET name = 'renamed', amount = '0.000001' WHERE id = 2`);
      await fx.root.query(`DELETE FROM ${t('types')} WHERE id = 1`);
      const { records } = await drain(source, count(4));
      expect(records.map((r) => r.op)).toEqual(['c', 'c', 'u', 'd']);
      const [first, second, update, del] = records as [SourceRecord, SourceRecord, SourceRecord, SourceRecord];
      expect(first.origin).toEqual({ kind: 'table', name: t('types') });
      expect(first.data).toEqual({
        id: 1, big: '-9007199254740993', ubig: '18446744073709551615', amount: '12345678901234.123456',
        happened: '2024-01-02T03:04:05.678', stamped: '2024-01-02T03:04:05.123456Z', doc: '{"a":[1,2.50,"x"]}',
        state: 'paid', tags: 'x,z', raw: Buffer.from([0, 0xff, 0x10]).toString('base64'), flags: 682, flag: true,
        name: 'hé', ratio: 1.5, day: '2024-02-29', tiny: 255, note: 'long text',
      });
      expect(Object.values(second.data).filter((v) => v !== null)).toEqual([2]);
      expect(update.before).toMatchObject({ id: 2, name: null, amount: null });
      expect(update.data).toMatchObject({ id: 2, name: 'renamed', amount: '0.000001' });
      expect(del.before).toEqual(first.data);
      expect(del.data).toEqual(first.data);
      // position, location, time and id all name the event in the binlog
      expect(first.position).toMatch(/^mariadb-bin\.\d{6}:\d+$/);
      expect(first.location).toBe(`${t('types')} @ ${first.position}`);
      expect(first.changeId).toBe(`${first.position}:0`);
      expect(second.changeId).toBe(`${first.position}:1`);
      expect(Date.now() - Date.parse(first.time)).toBeLessThan(60_000);
      // The GTID of each transaction travels as ferrytxid: one INSERT statement is one transaction.
      // (Each later one has a higher sequence number; other test files write to the server meanwhile.)
      expect(first.txid).toMatch(/^\d+-\d+-\d+$/);
      expect(second.txid).toBe(first.txid);
      const seq = (r: SourceRecord) => Number(r.txid!.split('-')[2]);
      expect(seq(first) < seq(update) && seq(update) < seq(del)).toBe(true);
    } finally {
      await source.close();
    }
  });

  it('resumes after the last committed checkpoint without losing or repeating a change', async () => {
    await fx.root.query(`CREATE TABLE ${t('resume')} (id INT PRIMARY KEY, v INT)`);
    const first = sourceFor(fx, { tables: [t('resume')] });
    const ctx = contextFor();
    await first.open(undefined, ctx);
    for (let i = 1; i <= 5; i++) await fx.root.query(`INSERT INTO ${t('resume')} VALUES (?, ?)`, [i, i]);
    const run1 = await drain(first, count(5));
    await first.commit(run1.checkpoint!);
    await first.close();
    expect(await ctx.state.get('committedPosition')).toMatch(/^stream mariadb-bin\.\d+:\d+$/);

    // written while the agent is down
    for (let i = 6; i <= 8; i++) await fx.root.query(`INSERT INTO ${t('resume')} VALUES (?, ?)`, [i, i]);
    const run2 = await runOnce(sourceFor(fx, { tables: [t('resume')] }), run1.checkpoint, count(3));
    const ids = [...run1.records, ...run2.records].map((r) => r.data.id);
    expect(ids).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('stores the GTID position of every domain with the binlog position, exactly as the server computes it there', async () => {
    await fx.root.query(`CREATE TABLE ${t('gtids')} (id INT PRIMARY KEY)`);
    const source = sourceFor(fx, { tables: [t('gtids')] });
    await source.open(undefined, contextFor());
    try {
      await fx.root.query(`INSERT INTO ${t('gtids')} VALUES (1)`);
      // A second replication domain, as multi-source or parallel replication setups have.
      await fx.root.query(`SET SESSION gtid_domain_id = 7`);
      await fx.root.query(`INSERT INTO ${t('gtids')} VALUES (2)`);
      await fx.root.query(`SET SESSION gtid_domain_id = 0`);
      await fx.root.query(`INSERT INTO ${t('gtids')} VALUES (3)`);
      const { records, checkpoint } = await drain(source, count(3));
      expect(records[1]!.txid).toMatch(/^7-\d+-\d+$/);
      const cp = checkpoint as { file: string; pos: number; gtid: string };
      const [[server]] = (await fx.root.query(`SELECT BINLOG_GTID_POS(?, ?) AS gtid`, [cp.file, cp.pos])) as unknown as [[{ gtid: string }]];
      // The same GTID per domain (the server lists domains in an order of its own).
      expect(cp.gtid.split(',').sort()).toEqual(server.gtid.split(',').sort());
      expect(cp.gtid.split(',').map((g) => g.split('-')[0])).toEqual(expect.arrayContaining(['0', '7']));
    } finally {
      await source.close();
    }
  });

  it('follows the binlog into the next file, and resumes from a checkpoint there', async () => {
    await fx.root.query(`CREATE TABLE ${t('rotate')} (id INT PRIMARY KEY)`);
    const before = await masterStatus(fx);
    const first = sourceFor(fx, { tables: [t('rotate')] });
    await first.open(undefined, contextFor());
    await fx.root.query(`INSERT INTO ${t('rotate')} VALUES (1)`);
    await fx.root.query('FLUSH BINARY LOGS');
    await fx.root.query(`INSERT INTO ${t('rotate')} VALUES (2)`);
    const run1 = await drain(first, count(2));
    await first.close();
    const after = await masterStatus(fx);
    expect(after.file > before.file).toBe(true);
    expect(run1.records.map((r) => r.position.split(':')[0])).toEqual([before.file, expect.any(String)]);
    expect((run1.checkpoint as { file: string }).file > before.file).toBe(true);

    await fx.root.query(`INSERT INTO ${t('rotate')} VALUES (3)`);
    const run2 = await runOnce(sourceFor(fx, { tables: [t('rotate')] }), run1.checkpoint, count(1));
    expect(run2.records.map((r) => r.data.id)).toEqual([3]);
  });

  it('re-delivers an uncommitted transaction from its start, with identical change ids', async () => {
    await fx.root.query(`CREATE TABLE ${t('tx')} (id INT PRIMARY KEY, v VARCHAR(10))`);
    const source = sourceFor(fx, { tables: [t('tx')], maxBatchSize: 1 });
    await source.open(undefined, contextFor());
    const [[master]] = await fx.root.query<import('mysql2').RowDataPacket[]>('SHOW MASTER STATUS');
    await fx.root.query(`START TRANSACTION; INSERT INTO ${t('tx')} VALUES (1,'a'),(2,'b'); INSERT INTO ${t('tx')} VALUES (3,'c'); COMMIT`);
    // batches of one event: the first ends inside the transaction, so its
    // checkpoint must still be the position before the transaction
    const run1 = await drain(source, count(1));
    await source.close();
    const startCp = run1.checkpoint;
    expect(run1.records.map((r) => r.data.id)).toEqual([1, 2]);
    // (other test files write to the server too: the boundary may be a later transaction's end, never inside ours)
    const cp = startCp as { phase: string; file: string; pos: number };
    const firstRowPos = Number(run1.records[0]!.position.split(':')[1]);
    expect(cp).toMatchObject({ phase: 'stream', file: master!.File });
    expect(cp.pos).toBeGreaterThanOrEqual(Number(master!.Position));
    expect(cp.pos).toBeLessThan(firstRowPos);

    const run2 = await runOnce(sourceFor(fx, { tables: [t('tx')] }), startCp, count(3));
    expect(run2.records.map((r) => r.data.id)).toEqual([1, 2, 3]);
    expect(run2.records[0]!.changeId).toBe(run1.records[0]!.changeId);
    const run3 = await runOnce(sourceFor(fx, { tables: [t('tx')] }), startCp, count(3));
    expect(run3.records.map((r) => r.changeId)).toEqual(run2.records.map((r) => r.changeId));
    expect(run2.checkpoint).not.toEqual(startCp);
  });

  it('decodes rows written before and after ALTER TABLE with the columns of their time, even when read afterwards', async () => {
    await fx.root.query(`CREATE TABLE ${t('ddl')} (id INT PRIMARY KEY, a VARCHAR(10), b INT)`);
    const source = sourceFor(fx, { tables: [t('ddl')] });
    await source.open(undefined, contextFor());
    try {
      // all written (and all DDL done) before the first read: the old rows
      // must not be decoded against today's columns
      await alterMidStream(fx, t('ddl'));
      const { records } = await drain(source, count(4));
      expect(records.map((r) => [r.op, r.data])).toEqual(ALTER_MID_STREAM_CHANGES);
      expect(records[2]!.before).toEqual({ id: 2, c: '2024-05-06', b: 20 });
    } finally {
      await source.close();
    }
  });

  it('keeps at most maxBufferedEvents decoded while nobody pulls, and loses nothing when pulling resumes', async () => {
    await fx.root.query(`CREATE TABLE ${t('bp')} (id INT PRIMARY KEY, pad VARCHAR(100))`);
    const source = sourceFor(fx, { tables: [t('bp')], maxBufferedEvents: 50, maxBatchSize: 10 });
    await source.open(undefined, contextFor());
    const rows = 1000;
    const inserts = Array.from({ length: rows }, (_, i) => `INSERT INTO ${t('bp')} VALUES (${i + 1}, REPEAT('x', 100));`).join('\n');
    await fx.root.query(inserts);
    const ac = new AbortController();
    const it = source.read(ac.signal)[Symbol.asyncIterator]();
    try {
      const ids: unknown[] = [];
      const first = await it.next();
      ids.push(...(first.value as { records: SourceRecord[] }).records.map((r) => r.data.id));
      // the consumer is busy: nobody pulls, while the ~4000 events of the inserts arrive
      await waitFor('events decoded while nobody pulls', () => source.bufferedEvents > 0, 30_000, 20);
      // Once the buffer stops growing: a reader that never pauses the socket stops only with all of them decoded.
      const held = await settled("the reader's buffer", () => source.bufferedEvents);
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(50);
      while (ids.length < rows) {
        const next = await it.next();
        ids.push(...(next.value as { records: SourceRecord[] }).records.map((r) => r.data.id));
      }
      expect(ids).toEqual(Array.from({ length: rows }, (_, i) => i + 1));
    } finally {
      ac.abort();
      await it.return?.();
      await source.close();
    }
  });

  it('counts a multi-row event by its rows against maxBufferedEvents, so memory follows rows', async () => {
    await fx.root.query(`CREATE TABLE ${t('bprows')} (id INT PRIMARY KEY, pad VARCHAR(100))`);
    const source = sourceFor(fx, { tables: [t('bprows')], maxBufferedEvents: 300, maxBatchSize: 10 });
    await source.open(undefined, contextFor());
    const rows = 5000;
    // one statement: the binlog splits it into row events of ~8 KB, each carrying dozens of rows
    await fx.root.query(`INSERT INTO ${t('bprows')} SELECT seq, REPEAT('x', 100) FROM ${t(`seq_1_to_${rows}`)}`);
    const ac = new AbortController();
    const it = source.read(ac.signal)[Symbol.asyncIterator]();
    try {
      let n = ((await it.next()).value as { records: SourceRecord[] }).records.length; // starts the binlog stream
      // then nobody pulls: paused above half the limit (counting events instead, all ~70 events
      // of the statement would fit, and this never holds) ...
      await waitFor('more than half the limit decoded while nobody pulls', () => source.bufferedEvents > 150, 30_000, 20);
      // ... at most the limit plus the rows of the event that crossed it, once the buffer stops growing
      // (a reader that never pauses the socket stops only with all 5000 rows decoded)
      const held = await settled("the reader's buffer", () => source.bufferedEvents);
      expect(held).toBeGreaterThan(150);
      expect(held).toBeLessThan(450);
      while (n < rows) n += ((await it.next()).value as { records: SourceRecord[] }).records.length;
      expect(n).toBe(rows);
    } finally {
      ac.abort();
      await it.return?.();
      await source.close();
    }
  });

  it('turns TRUNCATE TABLE into one t record', async () => {
    await fx.root.query(`CREATE TABLE ${t('trunc')} (id INT PRIMARY KEY)`);
    await fx.root.query(`CREATE TABLE ${t('other')} (id INT PRIMARY KEY)`);
    const source = sourceFor(fx, { tables: [t('trunc')] });
    await source.open(undefined, contextFor());
    try {
      await fx.root.query(`INSERT INTO ${t('trunc')} VALUES (1)`);
      await fx.root.query(`TRUNCATE TABLE ${t('other')}`);
      await fx.root.query(`USE \`${fx.database}\`; TRUNCATE trunc`);
      const { records } = await drain(source, count(2));
      expect(records.map((r) => [r.op, r.origin.name, r.data])).toEqual([
        ['c', t('trunc'), { id: 1 }],
        ['t', t('trunc'), {}],
      ]);
      expect(records[1]!.changeId).toBe(`${records[1]!.position}:0`);
    } finally {
      await source.close();
    }
  });

  it('stops reading promptly when the signal aborts', async () => {
    await fx.root.query(`CREATE TABLE ${t('idle')} (id INT PRIMARY KEY)`);
    const source = sourceFor(fx, { tables: [t('idle')] });
    await source.open(undefined, contextFor());
    const ac = new AbortController();
    const known = await dumpThreads();
    const reading = (async () => {
      for await (const batch of source.read(ac.signal)) expect(batch).toBeDefined();
    })();
    reading.catch(() => undefined); // awaited below
    try {
      await newDumpThread(known);
      // From here no event and no heartbeat reaches the reader (other test files' transactions would
      // otherwise wake it): the abort alone must end the loop. A reader that waits for the next event
      // before looking at the signal ends only when the silence watchdog fails it, with a RetryableError.
      binlogSocket(source).pause();
      ac.abort();
      await reading;
    } finally {
      ac.abort();
      await source.close();
      await reading.catch(() => undefined);
    }
  });

  it('turns a dropped binlog connection into a RetryableError', async () => {
    await fx.root.query(`CREATE TABLE ${t('kill')} (id INT PRIMARY KEY)`);
    const source = sourceFor(fx, { tables: [t('kill')] });
    await source.open(undefined, contextFor());
    const known = await dumpThreads();
    // The dump starts once reading does; a source that swallowed the drop (or reconnected on its own)
    // would read on until the drain gives up, with a plain Error.
    const run = drain(source, () => false).catch((e: unknown) => e);
    let err: unknown;
    try {
      await fx.root.query(`KILL ${await newDumpThread(known)}`);
      err = await run;
    } finally {
      await source.close();
    }
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).name).toBe('RetryableError');
  });

  it('keeps an idle binlog connection alive with heartbeats, and reports one that went silent as retryable', async () => {
    const stream = new BinlogStream({
      connection: connectionOptions(fx.url),
      serverId: uniqueServerId(),
      from: await masterStatus(fx),
      includeSchema: { [fx.database]: ['none'] },
      maxBuffered: 100,
      // the watchdog fails a connection silent for three periods: 3 s, so that a loaded machine
      // (the server and this process on the same two cores) does not look like a dead network
      heartbeatMs: 1_000,
      onArrival: () => undefined,
      columnsFor: () => [],
    });
    await stream.start();
    const ac = new AbortController();
    try {
      const idle: string[] = [];
      const started = Date.now();
      // Longer than the watchdog's three periods, and until three events came: on an idle server
      // only heartbeats keep the watchdog quiet that long (on a busy one, other transactions' events do)
      while ((Date.now() - started < 4_000 || idle.length < 3) && Date.now() - started < 60_000) {
        const item = await stream.next(ac.signal, 500);
        if (item?.error) throw item.error;
        if (item) idle.push(item.event.getEventName());
      }
      expect(idle.length).toBeGreaterThan(2);
      // the network goes quiet without closing: stop reading the socket behind zongji's back
      (stream as unknown as { zongji: { connection: { stream: { pause(): void } } } }).zongji.connection.stream.pause();
      // (the watchdog speaks after 3 to 4 s of silence; the wait only bounds a watchdog that never does)
      let item = await stream.next(ac.signal, 30_000);
      while (item && !item.error) item = await stream.next(ac.signal, 30_000);
      expect(item?.error).toBeInstanceOf(RetryableError);
      expect(item?.error?.message).toMatch(/no binlog event or heartbeat from the server/);
    } finally {
      stream.stop();
    }
  });

  it('stops on a rejected login with FERRY_SOURCE_AUTH_FAILED (exit 2, not retried), naming the user, never the password', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('auth')} (id INT PRIMARY KEY)`);
    const wrong = fx.url.replace(`:${fx.password}@`, ':not-the-password@');
    expect(wrong).not.toBe(fx.url);
    const source = sourceFor(fx, { tables: [t('auth')], connection: wrong });
    const err = await source.open(undefined, contextFor()).then(() => undefined, (e: unknown) => e);
    await source.close();
    expect(err).toBeInstanceOf(FerryError);
    expect(err).toMatchObject({ code: 'FERRY_SOURCE_AUTH_FAILED', message: expect.stringContaining(fx.user) });
    expect(ERROR_CODES.FERRY_SOURCE_AUTH_FAILED.exit).toBe(2);
    expect(JSON.stringify(err) + (err as Error).message).not.toContain('not-the-password');
  });

  it('stops the older reader when another connects with its serverId, naming the id, the pipeline and the setting, without retrying', async () => {
    await fx.root.query(`CREATE TABLE ${t('dup')} (id INT PRIMARY KEY)`);
    const serverId = uniqueServerId();
    const older = sourceFor(fx, { tables: [t('dup')], serverId });
    await older.open(undefined, { ...contextFor(), pipeline: 'orders-a' });
    const known = await dumpThreads();
    const olderRun = drain(older, () => false, 2 * DRAIN_WAIT_MS).catch((e: unknown) => e);
    // The server drops the older of two dumps with one id: the older reader's must be running
    // before the newer one starts, or the roles swap. (If the older is never stopped, the drain
    // gives up with a plain Error.)
    await newDumpThread(known).catch(async (err: unknown) => {
      await older.close();
      throw err;
    });
    // another process's reader (another agent, a replica): it does not pass through this process's sources
    const newer = new BinlogStream({
      connection: connectionOptions(fx.url),
      serverId,
      from: await masterStatus(fx),
      includeSchema: { [fx.database]: ['dup'] },
      maxBuffered: 100,
      heartbeatMs: 5_000,
      onArrival: () => undefined,
      columnsFor: () => [],
    });
    try {
      await newer.start();
      const err = await olderRun;
      await older.close();
      expect(err).toBeInstanceOf(FerryError);
      expect(err).not.toBeInstanceOf(RetryableError);
      expect(err).toMatchObject({
        code: 'FERRY_CONFIG_INVALID',
        message: expect.stringMatching(new RegExp(`pipeline orders-a .*same id \\(serverId ${serverId}\\)`)),
        where: 'pipeline orders-a: pipelines[].source.serverId',
        fix: expect.stringMatching(/^Give every reader of this server a unique id.*set pipelines\[\]\.source\.serverId of pipeline orders-a .*second copy of this agent/),
      });
      // exit 2: a service manager does not restart it into knocking the newer reader off in turn
      expect(ERROR_CODES.FERRY_CONFIG_INVALID.exit).toBe(2);
      // the newer reader keeps reading
      await fx.root.query(`INSERT INTO ${t('dup')} VALUES (1)`);
      const seen: string[] = [];
      // (only rows of the dup table pass its filter: the insert's)
      for (const until = Date.now() + DRAIN_WAIT_MS; !seen.includes('writerows') && Date.now() < until; ) {
        const item = await newer.next(new AbortController().signal, 1_000);
        if (item?.error) throw item.error;
        if (item) seen.push(item.event.getEventName());
      }
      expect(seen).toContain('writerows');
    } finally {
      newer.stop();
    }
  });

  it('refuses a second pipeline of this agent reading the same server with the same serverId, naming the first', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('dup')} (id INT PRIMARY KEY)`);
    const serverId = uniqueServerId();
    const first = sourceFor(fx, { tables: [t('dup')], serverId });
    const second = sourceFor(fx, { tables: [t('dup')], serverId });
    await first.open(undefined, { ...contextFor(), pipeline: 'orders' });
    const err = await second.open(undefined, { ...contextFor(), pipeline: 'orders-copy' }).catch((e: unknown) => e);
    await second.close();
    expect(err).toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: `serverId ${serverId} of pipeline orders-copy is already taken: pipeline orders of this agent reads 127.0.0.1:3306 with it`,
      where: 'pipeline orders-copy: pipelines[].source.serverId',
    });
    // the first is not disturbed, and once it is closed the id is free
    await fx.root.query(`INSERT INTO ${t('dup')} VALUES (2)`);
    const { records } = await drain(first, (r) => r.length >= 1);
    expect(records.map((r) => r.data.id)).toEqual([2]);
    await first.close();
    await second.open(undefined, { ...contextFor(), pipeline: 'orders-copy' });
    await second.close();
  });

  it('refuses a serverId equal to the server\'s own server_id', async () => {
    const source = sourceFor(fx, { tables: [t('types')], serverId: 1 });
    const err = await source.open(undefined, { ...contextFor(), pipeline: 'orders' }).catch((e: unknown) => e);
    await source.close();
    expect(err).toBeInstanceOf(FerryError);
    expect(err).toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: "serverId 1 of pipeline orders is already taken: it is the server's own @@server_id",
      where: 'pipeline orders: pipelines[].source.serverId',
    });
  });

  it('stops with FERRY_PREFLIGHT_FAILED and the GRANT when the user lacks REPLICATION SLAVE (exit 1; a wrong password is FERRY_SOURCE_AUTH_FAILED, exit 2)', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('noslave')} (id INT PRIMARY KEY)`);
    const user = `${fx.user.slice(0, 25)}_nosl`;
    await fx.root.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    await fx.root.query(`GRANT REPLICATION CLIENT, SELECT ON *.* TO '${user}'@'%'`);
    try {
      const source = sourceFor({ ...fx, url: `mysql://${user}:pw@127.0.0.1:3306/${fx.database}` }, { tables: [t('noslave')] });
      // open reads only what REPLICATION CLIENT allows; the binlog dump is refused when reading starts
      await source.open(undefined, contextFor());
      const err = await drain(source, () => false).catch((e: unknown) => e);
      await source.close();
      expect(err).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringMatching(/REPLICATION SLAVE/), fix: expect.stringMatching(new RegExp(`^GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON \\*\\.\\* TO '${user}'@'%';`)) });
      expect(err).not.toBeInstanceOf(RetryableError);
      expect(ERROR_CODES.FERRY_PREFLIGHT_FAILED.exit).toBe(1);
    } finally {
      await fx.root.query(`DROP USER '${user}'@'%'`);
    }
  });
});

describe('mysql-cdc check()', () => {
  it('passes on a server set up as the docs say, for a user with the documented grants', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('checked')} (id INT PRIMARY KEY)`);
    const results = await sourceFor(fx, { tables: [t('checked')] }).check();
    const failed = results.filter((r) => !r.ok);
    expect(failed).toEqual([]);
    expect(results.map((r) => r.name)).toEqual(
      expect.arrayContaining(['log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata', 'binlog_row_value_options', 'binlog retention', 'REPLICATION SLAVE', 'REPLICATION CLIENT', `SELECT on ${t('checked')}`]),
    );
  });

  it('names each missing privilege and setting with the statement that fixes it', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('checked')} (id INT PRIMARY KEY)`);
    const user = `${fx.user.slice(0, 28)}_ro`;
    await fx.root.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      const source = sourceFor(
        { ...fx, url: `mysql://${user}:pw@127.0.0.1:3306/${fx.database}` },
        { tables: [t('checked')], serverId: 1, retentionToleranceHours: 10_000 },
      );
      const failed = new Map((await source.check()).filter((r) => !r.ok).map((r) => [r.name, r]));
      expect([...failed.keys()].sort()).toEqual(['REPLICATION CLIENT', 'REPLICATION SLAVE', `SELECT on ${t('checked')}`, 'binlog retention', 'server_id'].sort());
      expect(failed.get('REPLICATION SLAVE')!.fix).toBe(`GRANT REPLICATION SLAVE ON *.* TO '${user}'@'%'; (as an administrator)`);
      expect(failed.get('binlog retention')!.severity).toBe('warning');
      expect(failed.get('binlog retention')!.fix).toMatch(/^SET GLOBAL binlog_expire_logs_seconds = 36000000;/);
    } finally {
      await fx.root.query(`DROP USER '${user}'@'%'`);
    }
  });

  it('counts privileges granted through the default role, nested roles included', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('checked')} (id INT PRIMARY KEY)`);
    const user = `${fx.user.slice(0, 26)}_role`;
    const [outer, inner] = [`${fx.database}_outer`, `${fx.database}_inner`];
    await fx.root.query(`CREATE ROLE ${inner}; CREATE ROLE ${outer}; CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      await fx.root.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${inner}; GRANT ${inner} TO ${outer}; GRANT SELECT ON *.* TO ${outer}`);
      await fx.root.query(`GRANT ${outer} TO '${user}'@'%'; SET DEFAULT ROLE ${outer} FOR '${user}'@'%'`);
      const source = sourceFor({ ...fx, url: `mysql://${user}:pw@127.0.0.1:3306/${fx.database}` }, { tables: [t('checked')] });
      expect((await source.check()).filter((r) => !r.ok)).toEqual([]);
      // and the role really serves: the binlog is read through it
      await source.open(undefined, contextFor());
      await fx.root.query(`INSERT INTO ${t('checked')} VALUES (${Date.now() % 1_000_000})`);
      const { records } = await drain(source, (r) => r.length >= 1).finally(() => source.close());
      expect(records).toHaveLength(1);
    } finally {
      await fx.root.query(`DROP USER '${user}'@'%'; DROP ROLE ${outer}; DROP ROLE ${inner}`);
    }
  });

  it('names a role granted but not enabled at login, with the SET DEFAULT ROLE that fixes it', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('checked')} (id INT PRIMARY KEY)`);
    const user = `${fx.user.slice(0, 26)}_dorm`;
    const role = `${fx.database}_repl`;
    await fx.root.query(`CREATE ROLE ${role}; CREATE USER '${user}'@'%' IDENTIFIED BY 'pw'`);
    try {
      await fx.root.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO ${role}; GRANT ${role} TO '${user}'@'%'`);
      const source = sourceFor({ ...fx, url: `mysql://${user}:pw@127.0.0.1:3306/${fx.database}` }, { tables: [t('checked')] });
      const failed = new Map((await source.check()).filter((r) => !r.ok).map((r) => [r.name, r]));
      expect([...failed.keys()].sort()).toEqual(['REPLICATION CLIENT', 'REPLICATION SLAVE', `SELECT on ${t('checked')}`]);
      const fix = failed.get('REPLICATION SLAVE')!.fix!;
      const setDefault = `SET DEFAULT ROLE \`${role}\` FOR '${user}'@'%';`;
      expect(fix).toBe(`GRANT REPLICATION SLAVE ON *.* TO '${user}'@'%'; (as an administrator) Or, if the role ${role} granted to the user holds it: roles count only when enabled at login, so make it the default role: ${setDefault}`);
      // the printed statement, run as an administrator, is the whole fix
      await fx.root.query(setDefault);
      expect((await source.check()).filter((r) => !r.ok)).toEqual([]);
    } finally {
      await fx.root.query(`DROP USER '${user}'@'%'; DROP ROLE ${role}`);
    }
  });

  it('says when it cannot see registered replicas, and that other readers with the serverId are only noticed when they collide', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('checked')} (id INT PRIMARY KEY)`);
    const serverId = uniqueServerId();
    const asRepl = (await sourceFor(fx, { tables: [t('checked')], serverId }).check()).find((r) => r.name === 'serverId in use');
    expect(asRepl).toEqual({ name: 'serverId in use', ok: true, detail: expect.stringMatching(/^not checked: SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB; .*only noticed when the server drops one of the two$/) });
    const asRoot = (await sourceFor({ ...fx, url: `mysql://root@127.0.0.1:3306/${fx.database}` }, { tables: [t('checked')], serverId }).check()).find((r) => r.name === 'serverId in use');
    expect(asRoot).toEqual({ name: 'serverId in use', ok: true, detail: expect.stringMatching(new RegExp(`^no registered replica uses serverId ${serverId} \\(SHOW SLAVE HOSTS\\)`)) });
  });
});
