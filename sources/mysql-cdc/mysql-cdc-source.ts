import type { AnyBinlogEvent, QueryEvent, RotateEvent } from '@vlasky/zongji';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import type { ConnectionOptions } from 'mysql2';
import type { Logger } from 'pino';
import { ConfigError, FerryError, RetryableError } from '../../agent/errors/index.js';
import type { CheckResult, Checkpoint, Json, SnapshotBatch, SnapshotRequest, Source, SourceBatch, SourceContext, SourceRecord } from '../../agent/plugin/source.js';
import { BinlogStream, type BinlogItem } from './binlog-stream.js';
import { ColumnHistory, type StoredColumns } from './column-history.js';
import { connectionOptions, describeConnection, splitTable } from './connection.js';
import { classifyMysqlError, positionLost, serverIdInUse, startAtPurged, statementBinlog, type ReaderIdentity } from './errors.js';
import { comparePosition, formatPosition, parseCheckpoint, toCheckpoint, type BinlogPosition, type MysqlCdcCheckpoint } from './position.js';
import { preflight, registeredReplicas, requireRowBinlog } from './preflight.js';
import { SchemaHistory } from './schema-history.js';
import { beginConsistentSnapshot, countRows, currentBinlogEnd, loadTableInfo, readChunk, withGtid, type TableInfo } from './snapshot.js';
import { TransactionReader } from './transaction-reader.js';
import { RowDecoder } from './type-decoding.js';

/** The validated `source:` entry, defaults applied (see `MysqlCdcConfigSchema` in index.ts). */
export interface MysqlCdcSettings {
  connection: string;
  serverId: number;
  tables: string[];
  snapshot: 'initial' | 'never' | 'when_needed';
  snapshotChunkSize: number;
  maxBatchSize: number;
  maxBufferedEvents: number;
  retentionToleranceHours: number;
  /** `file:pos` to stream from when no position is stored (with `snapshot: never`). */
  startAt?: string;
}

/** Where the history's first version starts: before any binlog file. */
const ORIGIN: BinlogPosition = { file: '', pos: 0 };

/** Least time between two batches that only move the position. */
const HEARTBEAT_MS = 1_000;

/**
 * The serverIds this process reads binlogs with, per server (`host:port`),
 * and the source holding each: two pipelines of one agent with one id would
 * drop each other's binlog connection, so the second to open is refused.
 */
const readersInProcess = new Map<string, { source: MysqlCdcSource; pipeline: string }>();

type StreamState = Extract<MysqlCdcCheckpoint, { phase: 'stream' }>;
type SnapshotState = Extract<MysqlCdcCheckpoint, { phase: 'snapshot' }>;

/**
 * Change data capture from the row-based binlog of MariaDB and MySQL: an
 * optional consistent snapshot (op `r`), then every committed insert,
 * update and delete of the configured tables (ops `c`, `u`, `d`).
 *
 * Checkpoints are only ever the end of a whole transaction, so a restart
 * re-reads an interrupted transaction from its start (same change ids, the
 * sinks drop the duplicates) and never loses its first half.
 */
export class MysqlCdcSource implements Source {
  private readonly conn: ConnectionOptions;
  private ctl: Connection | undefined;
  private snap: Connection | undefined;
  private stream: BinlogStream | undefined;
  private state: StreamState | SnapshotState | undefined;
  private tables: TableInfo[] = [];
  private history: ColumnHistory | undefined;
  private ctx: SourceContext | undefined;

  constructor(private readonly settings: MysqlCdcSettings) {
    this.conn = connectionOptions(settings.connection);
  }

  /** Binlog events decoded ahead of the consumer (a row event counting its rows), for metrics: bounded by `maxBufferedEvents`. */
  get bufferedEvents(): number {
    return this.stream?.buffered ?? 0;
  }

  private get logger(): Logger | undefined {
    return this.ctx?.logger;
  }

  /** This reader as errors name it: its pipeline, serverId and user. */
  private get reader(): ReaderIdentity {
    return { serverId: this.settings.serverId, pipeline: this.ctx?.pipeline, user: this.conn.user };
  }

  private get readerKey(): string {
    return `${this.conn.host ?? ''}:${this.conn.port ?? 3306}#${this.settings.serverId}`;
  }

  async open(from: Checkpoint | undefined, ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    const holder = readersInProcess.get(this.readerKey);
    if (holder && holder.source !== this) {
      throw serverIdInUse(this.settings.serverId, ctx.pipeline, `pipeline ${holder.pipeline} of this agent reads ${this.conn.host ?? ''}:${this.conn.port ?? 3306} with it`);
    }
    readersInProcess.set(this.readerKey, { source: this, pipeline: ctx.pipeline });
    const stored = parseCheckpoint(from, ctx.pipeline);
    try {
      await this.prepare(stored);
    } catch (err) {
      throw classifyMysqlError(err, stored ?? ORIGIN, this.reader);
    }
    // Not needed once open: an idle connection would only be dropped by wait_timeout.
    await this.ctl?.end().catch(() => undefined);
    this.ctl = undefined;
    this.logger?.info({ server: describeConnection(this.conn), phase: this.state?.phase, position: this.state && formatPosition(this.state) }, 'mysql-cdc: opened');
  }

  /** Connects, checks the binlog settings and the server id, loads the tables and decides where reading starts. */
  private async prepare(stored: MysqlCdcCheckpoint | undefined): Promise<void> {
    this.ctl = await this.connect();
    await requireRowBinlog(this.ctl, describeConnection(this.conn));
    const [[server]] = await this.ctl.query<RowDataPacket[]>('SELECT @@server_id AS id');
    const { serverId } = this.settings;
    if (Number(server?.id) === serverId) throw serverIdInUse(serverId, this.ctx?.pipeline, "it is the server's own @@server_id");
    // Connecting with a registered replica's id would disconnect that replica.
    // Binlog readers like this one do not register: another Ferry with the
    // same id is only noticed when the server drops the older of the two.
    const replica = (await registeredReplicas(this.ctl))?.find((r) => r.serverId === serverId);
    if (replica) throw serverIdInUse(serverId, this.ctx?.pipeline, `a replica registered from ${replica.host} uses it (SHOW SLAVE HOSTS)`);
    this.tables = await loadTableInfo(this.ctl, this.settings.tables);

    if (stored && (await this.binlogExists(stored.file))) {
      this.state = stored;
      // Resuming an old position: today's information_schema may postdate
      // DDL still to be read, so only the stored history will do.
      this.history = stored.columns
        ? ColumnHistory.fromStored(stored.columns, ORIGIN)
        : new ColumnHistory(Object.fromEntries(this.tables.map((t) => [t.table, { unknown: 'the checkpoint carries no schema history' }])), ORIGIN);
      return;
    }
    // From here reading starts at "now": today's columns are the right ones.
    this.history = new ColumnHistory(Object.fromEntries(this.tables.map((t) => [t.table, t.columns])), ORIGIN);
    if (stored && this.settings.snapshot !== 'when_needed') {
      throw positionLost(stored, this.ctx?.pipeline);
    } else if (stored) {
      this.logger?.warn({ position: formatPosition(stored) }, 'mysql-cdc: stored binlog position was purged; re-snapshotting (snapshot: when_needed)');
      this.state = this.freshSnapshot();
    } else if (this.settings.startAt !== undefined) {
      // Replaying a chosen range: with FULL row metadata the binlog names the
      // columns itself; without, today's columns are assumed (documented).
      this.state = { phase: 'stream', ...(await this.startPosition(this.settings.startAt)) };
    } else if (this.settings.snapshot === 'never') {
      this.state = { phase: 'stream', ...(await currentBinlogEnd(this.ctl)) };
    } else {
      this.state = this.freshSnapshot();
    }
  }

  async *read(signal: AbortSignal): AsyncIterable<SourceBatch> {
    if (!this.state) throw new Error('mysql-cdc: read() before open()');
    if (this.state.phase === 'snapshot') {
      yield* this.readSnapshot(this.state, signal);
      if (signal.aborted) return;
    }
    yield* this.readStream(signal);
  }

  /** Nothing to acknowledge to the server (a binlog has no slot): remembers the durable position for `ferry status`. */
  async commit(checkpoint: Checkpoint): Promise<void> {
    const cp = parseCheckpoint(checkpoint);
    if (cp) await this.ctx?.state.set('committedPosition', `${cp.phase} ${formatPosition(cp)}`);
  }

  async check(): Promise<CheckResult[]> {
    let conn: Connection;
    try {
      conn = this.ctl ?? (await this.connect());
    } catch (err) {
      const fix = err instanceof FerryError ? err.fix : undefined;
      return [{ name: 'connect', ok: false, detail: `${describeConnection(this.conn)}: ${(err as Error).message}`, severity: 'error', ...(fix ? { fix } : {}) }];
    }
    try {
      return await preflight(conn, { ...this.settings, user: this.conn.user ?? '' });
    } finally {
      if (conn !== this.ctl) await conn.end().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (readersInProcess.get(this.readerKey)?.source === this) readersInProcess.delete(this.readerKey);
    this.stream?.stop();
    this.stream = undefined;
    for (const c of [this.snap, this.ctl]) c?.destroy();
    this.snap = undefined;
    this.ctl = undefined;
  }

  // --- snapshot -----------------------------------------------------------

  private freshSnapshot(): SnapshotState {
    return { phase: 'snapshot', file: '', pos: 0, table: 0, after: null, startedAt: new Date().toISOString() };
  }

  private async *readSnapshot(start: SnapshotState, signal: AbortSignal): AsyncIterable<SourceBatch> {
    this.snap = await this.connect();
    const consistentAt = await beginConsistentSnapshot(this.snap);
    let cp: SnapshotState = start.file === '' ? { ...start, ...consistentAt } : { ...start, snapshotId: start.snapshotId ?? formatPosition(start) };
    if (start.file !== '') {
      // Resumed: the rows left are read as of `consistentAt`. What changed
      // since the checkpoint streams first, so that no key gets an older
      // version after a newer one; the stream then goes on from there.
      if (comparePosition(start, consistentAt) < 0) {
        this.logger?.info({ from: formatPosition(start), until: formatPosition(consistentAt) }, 'mysql-cdc: resuming the snapshot; streaming up to its new consistent read first');
        const resumed = cp;
        yield* this.readBinlog(start, signal, { until: consistentAt, checkpointAt: (at, columns) => ({ ...withoutGtid(resumed), ...at, columns }) });
        if (signal.aborted) return;
      }
      cp = { ...withoutGtid(cp), ...consistentAt };
    }
    const idPrefix = `snapshot:${cp.snapshotId ?? formatPosition(cp)}`;
    this.logger?.info({ position: formatPosition(cp), table: this.tables[cp.table]?.table }, 'mysql-cdc: snapshot reading');
    for (let t = cp.table; t < this.tables.length; t++) {
      const info = this.tables[t] as TableInfo;
      const decoder = new RowDecoder(info.columns);
      for await (const { rows, after } of this.chunks(info, t === cp.table ? cp.after : null, undefined, signal, cp)) {
        const records = rows.map((row) => this.snapshotRecord(info, decoder, row, idPrefix, cp));
        cp = { ...cp, table: t, after, columns: this.columnsAt(cp) };
        yield { records, checkpoint: toCheckpoint(cp) };
      }
      if (signal.aborted) return;
    }
    await this.endSnapshotRead();
    this.state = { phase: 'stream', file: cp.file, pos: cp.pos, ...(cp.gtid ? { gtid: cp.gtid } : {}), columns: this.columnsAt(cp) };
    this.logger?.info({ position: formatPosition(this.state) }, 'mysql-cdc: snapshot done, streaming');
    yield { records: [], checkpoint: toCheckpoint(this.state) };
  }

  /**
   * `ferry snapshot PIPELINE`: the current rows of the requested tables
   * (default: all captured), optionally filtered, in one consistent
   * read-only transaction, as op `r`. Reads no binlog and leaves the stored
   * position alone, so a running agent keeps streaming meanwhile.
   */
  async *snapshot(request: SnapshotRequest, ctx: SourceContext, signal: AbortSignal): AsyncIterable<SnapshotBatch> {
    this.ctx = ctx;
    const tables = this.requestedTables(request.tables);
    const filter = checkedFilter(request.where);
    const startedAt = new Date().toISOString();
    let infos: TableInfo[];
    let at: BinlogPosition = ORIGIN;
    try {
      this.ctl = await this.connect();
      infos = await loadTableInfo(this.ctl, tables);
      this.snap = await this.connect();
      at = await beginConsistentSnapshot(this.snap);
    } catch (err) {
      throw classifyMysqlError(err, at);
    }
    const cp: SnapshotState = { phase: 'snapshot', ...at, table: 0, after: null, startedAt };
    const idPrefix = `snapshot:${request.runId}`;
    this.logger?.info({ position: formatPosition(at), tables, where: filter }, 'mysql-cdc: on-demand snapshot reading');
    for (const info of infos) {
      const decoder = new RowDecoder(info.columns);
      const rowsTotal = filter ? await countRows(this.snap, info, filter).catch((err: unknown) => rejectedFilter(err, filter, at)) : info.rowsEstimate;
      let rowsDone = 0;
      for await (const { rows } of this.chunks(info, null, filter, signal, at)) {
        rowsDone += rows.length;
        const records = rows.map((row) => this.snapshotRecord(info, decoder, row, idPrefix, cp));
        yield { records, progress: { table: info.table, rowsDone, ...(rowsTotal > 0 ? { rowsTotal } : {}) } };
      }
      if (signal.aborted) return;
    }
    await this.endSnapshotRead();
  }

  /** Key-ordered chunks of `info` after `after` in the open consistent read, until the table ends or `signal` aborts. */
  private async *chunks(info: TableInfo, after: Json[] | null, filter: string | undefined, signal: AbortSignal, at: BinlogPosition): AsyncIterable<{ rows: Record<string, unknown>[]; after: Json[] }> {
    for (;;) {
      if (signal.aborted) return;
      const rows = await readChunk(this.snap as Connection, info, after, this.settings.snapshotChunkSize, filter).catch((err: unknown) =>
        filter ? rejectedFilter(err, filter, at) : Promise.reject(classifyMysqlError(err, at)),
      );
      if (rows.length === 0) return;
      after = info.key.map((k) => (rows[rows.length - 1] as Record<string, unknown>)[k] as Json);
      yield { rows, after };
    }
  }

  private async endSnapshotRead(): Promise<void> {
    await this.snap?.query('COMMIT');
    this.snap?.destroy();
    this.snap = undefined;
  }

  /** The tables `ferry snapshot -t` names, which must be captured ones; none named: all of them. */
  private requestedTables(requested: string[] | undefined): string[] {
    if (!requested?.length) return this.settings.tables;
    const unknown = requested.filter((t) => !this.settings.tables.includes(t));
    if (unknown.length) {
      throw new FerryError('FERRY_USAGE', `cannot snapshot ${unknown.join(', ')}: not in this source's \`tables\``, {
        where: 'ferry snapshot --table',
        fix: `Name captured tables as database.table: ${this.settings.tables.join(', ')}.`,
      });
    }
    return requested;
  }

  private snapshotRecord(info: TableInfo, decoder: RowDecoder, row: Record<string, unknown>, idPrefix: string, cp: SnapshotState): SourceRecord {
    const key = JSON.stringify(info.key.map((k) => row[k] ?? null));
    const position = formatPosition(cp);
    return {
      origin: { kind: 'table', name: info.table },
      op: 'r',
      data: decoder.decode(row),
      changeId: `${idPrefix}:${info.table}:${key}`,
      time: cp.startedAt,
      location: `${info.table} key ${key} @ snapshot ${position}`,
      position,
    };
  }

  // --- stream -------------------------------------------------------------

  private async *readStream(signal: AbortSignal): AsyncIterable<SourceBatch> {
    yield* this.readBinlog(this.state as StreamState, signal, {
      checkpointAt: (at, columns) => (this.state = { phase: 'stream', ...at, columns }),
    });
  }

  /**
   * The binlog from `start` as batches of whole transactions, each with the
   * checkpoint `checkpointAt` makes of its end. With `until` (a resumed
   * snapshot's consistent read), it ends once every transaction before
   * `until` is read, and takes nothing after it.
   */
  private async *readBinlog(
    start: BinlogPosition,
    signal: AbortSignal,
    opts: { until?: BinlogPosition; checkpointAt: (at: BinlogPosition, columns: StoredColumns) => MysqlCdcCheckpoint },
  ): AsyncIterable<SourceBatch> {
    const { until } = opts;
    const includeSchema: Record<string, string[]> = {};
    for (const t of this.settings.tables) {
      const { database, table } = splitTable(t);
      (includeSchema[database] ??= []).push(table);
    }
    const history = this.history as ColumnHistory;
    // The schema history follows the binlog as it arrives (zongji asks for
    // columns then), so it tracks the file on its own.
    let arrivalFile = start.file;
    const stream: BinlogStream = new BinlogStream({
      connection: this.conn,
      serverId: this.settings.serverId,
      pipeline: this.ctx?.pipeline,
      user: this.conn.user,
      from: start,
      includeSchema,
      maxBuffered: this.settings.maxBufferedEvents,
      heartbeatMs: HEARTBEAT_MS * 5,
      onArrival: (ev) => {
        if (ev.getEventName() === 'rotate') arrivalFile = (ev as RotateEvent).binlogName;
        if (ev.getEventName() !== 'query') return;
        const q = ev as QueryEvent;
        for (const changed of history.applyQuery(q.query, q.schema, { file: arrivalFile, pos: q.nextPosition })) {
          stream.forgetTable(splitTable(changed).database, splitTable(changed).table);
        }
      },
      columnsFor: (tm) => history.columnsFor(`${tm.schemaName}.${tm.tableName}`, tm.columnCount, `${arrivalFile}:${tm.nextPosition - tm.size - stream.headerLength}`, this.ctx?.pipeline),
    });
    this.stream?.stop();
    this.stream = stream;
    await stream.start();
    const reader = new TransactionReader(start, stream.headerLength, new SchemaHistory(this.ctx?.pipeline), new Set(this.settings.tables), this.logger, this.settings.maxBufferedEvents);
    let lastYielded = formatPosition(start);
    let lastYieldedAt = 0;
    let reached = until !== undefined && comparePosition(start, until) >= 0;
    // Asks the server what an event zongji cannot decode is (see loggedLoad).
    let lookup: Connection | undefined;
    try {
      while (!reached) {
        // While a boundary is not yet yielded, wake up to yield it as a heartbeat.
        const unyielded = formatPosition(reader.committed) !== lastYielded;
        let item = await stream.next(signal, unyielded ? HEARTBEAT_MS : undefined);
        if (signal.aborted || (!item && stream.isStopped)) return;
        const max = this.settings.maxBatchSize;
        while (item) {
          if (item.error) throw item.error;
          if (until && isPast(reader, item.event, until)) {
            reached = true;
            break;
          }
          if (item.event.getEventName() === 'unknown') {
            // Only statement-based logging puts undecodable events inside a transaction.
            if (reader.inTransactionNow) {
              lookup ??= await this.connect();
              const load = await loggedLoad(lookup, reader.startOf(item.event));
              if (load) reader.statement(load.sql, load.database, item.event);
            }
          } else reader.handle(item.event, item.columns);
          if (reader.stoppedAt) break;
          if (until && comparePosition(reader.committed, until) >= 0) {
            reached = true;
            break;
          }
          // A full batch still reads on to the end of the transaction it is in
          // (up to twice the size), so that the batch ends on a boundary.
          item = reader.pending.length < max || (reader.openRows > 0 && reader.pending.length < 2 * max) ? stream.poll() : undefined;
        }
        const stop = reader.stoppedAt;
        if (stop) {
          // A row change logged as SQL: hand over everything read before it
          // (its own transaction's earlier rows too, still under the boundary
          // before that transaction), then stop. Nothing after it is read.
          const records = reader.takeAll();
          if (records.length > 0 || formatPosition(reader.committed) !== lastYielded) {
            yield { records, checkpoint: toCheckpoint(opts.checkpointAt(reader.committed, history.storedAt(reader.committed))) };
          }
          const err = statementBinlog(stop, this.ctx?.pipeline);
          this.logger?.error({ code: err.code, position: formatPosition(stop.at), database: stop.database, statement: stop.head }, 'mysql-cdc: row change logged as a statement; stopping');
          throw err;
        }
        // Caught up: every transaction before `until` ended, and none after it was taken.
        const records = reached ? reader.take(Number.MAX_SAFE_INTEGER) : reader.take(max);
        // Transactions on other tables only move the position: say so at most
        // once a second, not once per transaction.
        const moved = formatPosition(reader.committed) !== lastYielded && Date.now() - lastYieldedAt >= HEARTBEAT_MS;
        if (records.length === 0 && !moved && !reached) continue;
        lastYielded = formatPosition(reader.committed);
        lastYieldedAt = Date.now();
        yield { records, checkpoint: toCheckpoint(opts.checkpointAt(reader.committed, history.storedAt(reader.committed))) };
        if (signal.aborted) return;
      }
    } finally {
      lookup?.destroy();
      // The catch-up's connection ends here; the stream after it opens its own.
      if (until) {
        stream.stop();
        if (this.stream === stream) this.stream = undefined;
      }
    }
  }

  // --- helpers ------------------------------------------------------------

  private columnsAt(at: BinlogPosition): StoredColumns {
    return (this.history as ColumnHistory).storedAt(at);
  }

  private async connect(): Promise<Connection> {
    try {
      const conn = await mysql.createConnection(this.conn);
      // A connection that drops between queries emits 'error'; the next query reports it.
      conn.on('error', () => undefined);
      return conn;
    } catch (err) {
      throw classifyMysqlError(err, this.state ?? { file: '', pos: 0 }, this.reader);
    }
  }

  /** `startAt` parsed and checked: only with `snapshot: never`, and the file must still be on the server. */
  private async startPosition(startAt: string): Promise<BinlogPosition> {
    if (this.settings.snapshot !== 'never') {
      throw new ConfigError([{ file: 'ferry.yaml', field: 'source.startAt', message: `startAt streams from a chosen binlog position, which skips the snapshot: set snapshot: never (it is ${this.settings.snapshot})` }]);
    }
    const colon = startAt.lastIndexOf(':');
    const at = { file: startAt.slice(0, colon), pos: Number(startAt.slice(colon + 1)) };
    if (!(await this.binlogExists(at.file))) throw startAtPurged(at, this.ctx?.pipeline);
    return withGtid(this.ctl as Connection, at);
  }

  private async binlogExists(file: string): Promise<boolean> {
    const [rows] = await (this.ctl as Connection).query<RowDataPacket[]>('SHOW BINARY LOGS');
    return rows.some((r) => r.Log_name === file);
  }
}

/**
 * The `--where` condition of `ferry snapshot`, checked minimally: it is put
 * inside the snapshot's read-only query, so it may only be one expression.
 */
function checkedFilter(where: string | undefined): string | undefined {
  const filter = where?.trim();
  if (!filter) return undefined;
  if (filter.includes(';')) {
    throw new FerryError('FERRY_USAGE', `the --where condition contains ";": ${filter}`, {
      where: 'ferry snapshot --where',
      fix: 'Give one SQL condition on the table\'s columns, e.g. --where "id > 10".',
    });
  }
  return filter;
}

/** A failed snapshot query with a `--where` condition: the server rejecting the condition is a usage error, anything else as usual. */
function rejectedFilter(err: unknown, filter: string, at: BinlogPosition): never {
  const e = err as { errno?: number; sqlMessage?: string };
  // ER_PARSE_ERROR, ER_BAD_FIELD_ERROR, ER_WRONG_VALUE..., ER_SP_DOES_NOT_EXIST
  if (e.errno === 1064 || e.errno === 1054 || e.errno === 1525 || e.errno === 1305) {
    throw new FerryError('FERRY_USAGE', `the server rejected the --where condition "${filter}": ${e.sqlMessage ?? String(err)}`, {
      where: 'ferry snapshot --where',
      cause: err,
      fix: 'Give an SQL condition on the snapshotted table\'s columns, e.g. --where "id > 10".',
    });
  }
  throw classifyMysqlError(err, at);
}

/**
 * Whether `ev` lies at or after `until`: the first event of a transaction
 * the resumed snapshot's rows already show. A heartbeat says the server's
 * binlog reached a position without a transaction in between.
 */
function isPast(reader: TransactionReader, ev: AnyBinlogEvent, until: BinlogPosition): boolean {
  const name = ev.getEventName();
  if (name === 'rotate') return false;
  if (name === 'heartbeat') {
    const hb = ev as unknown as { binlogName?: string; position?: number; nextPosition: number };
    const at = { file: hb.binlogName || reader.committed.file, pos: hb.position ?? hb.nextPosition };
    return !reader.inTransactionNow && comparePosition(at, until) >= 0;
  }
  return comparePosition(reader.startOf(ev), until) >= 0;
}

/**
 * The LOAD DATA an event zongji could not decode stands for, if it is one.
 * Logged as a statement, LOAD DATA becomes BEGIN_LOAD_QUERY (the file's
 * bytes) and EXECUTE_LOAD_QUERY (the statement), event types zongji 0.9
 * hands out only as 'unknown', without their type or content; the server
 * says what they are (`SHOW BINLOG EVENTS`, allowed with REPLICATION
 * CLIENT / BINLOG MONITOR). Only events inside a transaction are asked
 * about, which under row-based logging never happens.
 */
async function loggedLoad(conn: Connection, at: BinlogPosition): Promise<{ sql: string; database: string } | undefined> {
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN ${conn.escape(at.file)} FROM ${Number(at.pos)} LIMIT 1`);
  } catch (err) {
    throw classifyMysqlError(err, at);
  }
  const row = rows[0];
  if (!row) throw new RetryableError(`the server shows no binlog event at ${formatPosition(at)}`, { where: `binlog ${formatPosition(at)}`, code: 'FERRY_SOURCE_UNAVAILABLE' });
  if (!/^Execute_load_query$/i.test(String(row.Event_type))) return undefined;
  // Info: "use `db`; LOAD DATA ... ;file_id=N"
  const info = String(row.Info);
  const use = /^use `((?:[^`]|``)*)`; /.exec(info);
  const sql = (use ? info.slice(use[0].length) : info).replace(/ ;file_id=\d+$/, '');
  return { sql, database: use ? (use[1] as string).replace(/``/g, '`') : '' };
}

function withoutGtid<T extends { gtid?: string }>(cp: T): T {
  const { gtid: _gtid, ...rest } = cp;
  return rest as T;
}
