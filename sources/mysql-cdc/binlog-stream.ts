import ZongJi, { type AnyBinlogEvent, type ColumnSchema, type TableMapEvent } from '@vlasky/zongji';
import type { ConnectionOptions } from 'mysql2';
import { RetryableError } from '../../agent/errors/index.js';
import { classifyMysqlError } from './errors.js';
import { formatPosition } from './position.js';
import type { BinlogPosition } from './position.js';

/**
 * The binlog events the source acts on; everything else is filtered inside
 * zongji. 'unknown' are the event types zongji cannot decode, among them a
 * LOAD DATA logged as a statement (EXECUTE_LOAD_QUERY), which must stop the
 * source rather than vanish.
 */
const EVENTS = ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows', 'xid', 'xaprepare', 'query', 'mariadbgtid', 'gtid', 'heartbeat', 'unknown'];

/** Longest wait for the server to accept the binlog dump. */
const START_TIMEOUT_MS = 30_000;

/**
 * What `BinlogStream.next` hands out. A TABLE_MAP comes with the columns
 * zongji decoded it with, taken when it arrived: zongji's table cache is
 * shared and may have moved on by the time the consumer gets the event.
 */
export type BinlogItem = { event: AnyBinlogEvent; columns?: ColumnSchema[]; error?: undefined } | { event?: undefined; error: Error };

export interface BinlogStreamOptions {
  connection: ConnectionOptions;
  serverId: number;
  /** The pipeline reading and its user, named in errors a human must act on (a purged binlog, a serverId taken, a missing grant). */
  pipeline?: string | undefined;
  user?: string | undefined;
  from: BinlogPosition;
  /** `{ database: [table, ...] }`: row events of other tables are dropped inside zongji. */
  includeSchema: Record<string, string[]>;
  /** Most decoded events held while nobody pulls, a row event counting once per row; above it the socket is paused. */
  maxBuffered: number;
  /**
   * The server sends a heartbeat this often while it has nothing to send; no
   * event at all for three periods (while not paused) means the connection
   * died silently (a cut network, a NAT timeout): a RetryableError.
   */
  heartbeatMs: number;
  /** Sees every event as it arrives, in binlog order, before it is queued (the schema history follows DDL here). */
  onArrival(event: AnyBinlogEvent): void;
  /**
   * Columns of a captured table for a TABLE_MAP without column names,
   * instead of zongji's information_schema lookup (today's columns, wrong
   * for rows written before a later DDL). May throw: the error is queued.
   */
  columnsFor(event: TableMapEvent): ColumnSchema[];
}

/** zongji's internal hook for a TABLE_MAP without usable column names (index.js `_fetchTableInfo`). */
type FetchTableInfo = (event: TableMapEvent, next: () => void) => void;

/**
 * zongji, pull-based: zongji pushes events as fast as the server sends them;
 * this keeps at most `maxBuffered` of them (a row event weighs as many as
 * the rows it carries: memory follows rows) and pauses the binlog socket
 * (mysql2 `pause()`, so TCP backpressure reaches the server) until the
 * consumer has taken half of them. Errors are queued in order behind the
 * events that came before them, classified into Ferry errors.
 */
export class BinlogStream {
  private readonly zongji: ZongJi;
  private readonly queue: BinlogItem[] = [];
  /** The weight of `queue`: events, a row event counting its rows. */
  private weight = 0;
  private wake: (() => void) | undefined;
  private paused = false;
  private stopped = false;
  private lastArrival = Date.now();
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly options: BinlogStreamOptions) {
    this.zongji = new ZongJi(options.connection);
    const z = this.zongji as unknown as { _fetchTableInfo: FetchTableInfo };
    const fromInformationSchema = z._fetchTableInfo.bind(this.zongji);
    z._fetchTableInfo = (event, next) => {
      if (!options.includeSchema[event.schemaName]?.includes(event.tableName)) return fromInformationSchema(event, next);
      try {
        this.zongji.tableMap[event.tableId] = { columnSchemas: options.columnsFor(event), parentSchema: event.schemaName, tableName: event.tableName };
      } catch (err) {
        this.push({ error: err as Error });
        return; // zongji stays paused: nothing after this event is read
      }
      next();
    };
  }

  /** Forgets zongji's cached columns of a table (after a DDL on it), so its next TABLE_MAP is looked up again. */
  forgetTable(database: string, table: string): void {
    for (const [id, entry] of Object.entries(this.zongji.tableMap)) {
      if (entry.parentSchema === database && entry.tableName === table) delete this.zongji.tableMap[Number(id)];
    }
  }

  /** Length of an event header on this connection (19 bytes, plus 4 of checksum when the server writes one). */
  get headerLength(): number {
    return this.zongji.useChecksum ? 23 : 19;
  }

  /** Events decoded and waiting for the consumer, a row event counting its rows (at most about `maxBuffered`). */
  get buffered(): number {
    return this.weight;
  }

  /** Connects and starts the dump at `from`; resolves once the server accepted it. */
  async start(): Promise<void> {
    const { from, serverId, includeSchema, pipeline, user } = this.options;
    const reader = { serverId, pipeline, user };
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        clearTimeout(timeout);
        reject(classifyMysqlError(err, from, reader));
      };
      const timeout = setTimeout(
        () => onError(new RetryableError(`the server did not start the binlog dump within ${START_TIMEOUT_MS / 1000} s`, { where: `binlog ${formatPosition(from)}`, code: 'FERRY_SOURCE_UNAVAILABLE' })),
        START_TIMEOUT_MS,
      );
      this.zongji.once('error', onError);
      this.zongji.once('ready', () => {
        clearTimeout(timeout);
        this.zongji.removeListener('error', onError);
        this.zongji.on('error', (err: Error) => this.push({ error: classifyMysqlError(err, from, reader) }));
        resolve();
      });
      this.zongji.on('binlog', (event: AnyBinlogEvent) => {
        this.lastArrival = Date.now();
        try {
          this.options.onArrival(event);
        } catch (err) {
          this.push({ error: err as Error });
          return;
        }
        const columns = event.getEventName() === 'tablemap' ? this.zongji.tableMap[(event as TableMapEvent).tableId]?.columnSchemas : undefined;
        this.push(columns ? { event, columns } : { event });
      });
      this.zongji.start({ serverId, filename: from.file, position: from.pos, includeEvents: EVENTS, includeSchema });
      // Queued on the binlog connection before zongji's dump command, which
      // it sends only after its own setup queries have answered.
      this.zongji.connection?.query(`SET @master_heartbeat_period = ${this.options.heartbeatMs * 1_000_000}`);
    });
    this.lastArrival = Date.now();
    this.watchdog = setInterval(() => this.checkAlive(), this.options.heartbeatMs);
    this.watchdog.unref();
  }

  private checkAlive(): void {
    const silentMs = Date.now() - this.lastArrival;
    if (this.paused || this.stopped || silentMs < 3 * this.options.heartbeatMs) return;
    this.push({ error: new RetryableError(`no binlog event or heartbeat from the server for ${Math.round(silentMs / 1000)} s: the connection is dead`, { where: `binlog after ${formatPosition(this.options.from)}`, code: 'FERRY_SOURCE_UNAVAILABLE' }) });
    this.stop();
  }

  /**
   * The next event or error; undefined once `signal` aborts, the stream is
   * stopped, or `waitMs` (when given) passes without one.
   */
  async next(signal: AbortSignal, waitMs?: number): Promise<BinlogItem | undefined> {
    if (this.queue.length === 0 && !signal.aborted && !this.stopped) {
      await new Promise<void>((resolve) => {
        const timer = waitMs === undefined ? undefined : setTimeout(() => done(), waitMs);
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return this.queue.length > 0 ? this.take() : undefined;
  }

  /** True once `stop()` was called: no more events will come. */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** The next item if one is already buffered, without waiting. */
  poll(): BinlogItem | undefined {
    return this.queue.length > 0 ? this.take() : undefined;
  }

  stop(): void {
    clearInterval(this.watchdog);
    this.stopped = true;
    this.wake?.();
    try {
      this.zongji.stop();
    } catch {
      // already down: nothing to release
    }
  }

  private take(): BinlogItem | undefined {
    const item = this.queue.shift();
    if (item) this.weight -= weightOf(item);
    if (this.paused && this.weight <= this.options.maxBuffered / 2) {
      this.paused = false;
      this.lastArrival = Date.now();
      this.zongji.connection?.resume();
    }
    return item;
  }

  private push(item: BinlogItem): void {
    if (this.stopped) return;
    this.queue.push(item);
    this.weight += weightOf(item);
    if (!this.paused && this.weight >= this.options.maxBuffered) {
      this.paused = true;
      this.zongji.connection?.pause();
    }
    this.wake?.();
  }
}

function weightOf(item: BinlogItem): number {
  return (item.event as { rows?: unknown[] } | undefined)?.rows?.length || 1;
}
