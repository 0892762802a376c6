import { LogicalReplicationService } from 'pg-logical-replication';
import type { Logger } from 'pino';
import type { FerryError } from '../../agent/errors/index.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { changeRecord, tableName, truncateRecord, type TransactionContext } from './change-records.js';
import { clientConfig, toFerryError } from './connection.js';
import { compareLsn, formatLsn, lsnToBigInt } from './lsn.js';
import { RawPgoutputPlugin, type Relation, type WalMessage } from './pgoutput-decoder.js';

/** What the stream hands to `read`, in WAL order. */
export type StreamItem =
  | { kind: 'change'; record: SourceRecord }
  /** A transaction ended: everything before `endLsn` has been handed over. */
  | { kind: 'commit'; endLsn: string }
  /** The server's WAL end while Ferry was between transactions: safe to confirm once earlier items are durable. */
  | { kind: 'heartbeat'; lsn: string };

export interface ReplicationStreamOptions {
  connection: string;
  slot: string;
  publication: string;
  /** Tables to emit; other tables of the publication are skipped. */
  tables: ReadonlySet<string>;
  /** Where to start: the LSN after the last durable transaction. */
  startLsn: string;
  /**
   * The position reported to the server until `confirm` moves it; default
   * `startLsn`. Lower when what comes before `startLsn` is not durable yet
   * (the rows and catch-up of a resumed snapshot): the slot must not pass
   * the stored checkpoint, or a crash now would look like a lost position.
   */
  confirmedLsn?: string;
  heartbeatMs: number;
  /** Items buffered before the socket is paused: the memory bound. */
  highWater: number;
  where: string;
  logger: Logger;
}

interface PausableSocket {
  pause(): void;
  resume(): void;
}

/**
 * One replication connection (pg-logical-replication, pgoutput v1) turned
 * into a pull queue:
 * - nothing is acknowledged automatically: the library's auto and timer acks
 *   are off, and the only LSN ever sent to the server is `confirmed`, which
 *   moves only through `confirm()` (called by the source's `commit`);
 * - when `highWater` items wait, the socket is paused until `take` drains
 *   them to half, so a 1M-row transaction streams in bounded memory (the
 *   server holds the rest);
 * - status updates with the confirmed LSN go out every heartbeat (asking the
 *   server for a keepalive, whose WAL end becomes a heartbeat item when
 *   between transactions) so an idle slot does not pin WAL and the server
 *   does not time the connection out while it is paused.
 */
export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private readonly plugin: RawPgoutputPlugin;
  /** Keyed by Relation object: a schema change brings a new one. */
  private readonly captured = new WeakMap<Relation, boolean>();
  private items: StreamItem[] = [];
  private head = 0;
  private failure: FerryError | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private txn: TransactionContext | undefined;
  private confirmed: string;
  /** The last position handed over (a commit end or heartbeat), to send only heartbeats that move forward. */
  private handedOver: string;
  private lastHeartbeatAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly options: ReplicationStreamOptions) {
    this.confirmed = options.confirmedLsn ?? options.startLsn;
    this.handedOver = options.startLsn;
    this.plugin = new RawPgoutputPlugin(options.publication);
    this.service = new LogicalReplicationService(clientConfig(options.connection, 'replication'), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    // The driver prints LSNs as Postgres does (upper-case hex, no leading zeros): already normal, no per-message parse.
    this.service.on('data', (lsn: string, msg: WalMessage) => this.onMessage(lsn, msg));
    this.service.on('heartbeat', (lsn: string, _time: number, shouldRespond: boolean) => this.onKeepalive(lsn, shouldRespond));
    this.service.on('error', (error: Error) => this.fail(error));
  }

  /** Connects and issues START_REPLICATION; resolves once the server streams. */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve) => this.service.once('start', () => resolve()));
    const ended = this.service.subscribe(this.plugin, this.options.slot, this.options.startLsn).then(
      () => this.fail(new Error('the server ended the replication stream')),
      (error: unknown) => this.fail(error),
    );
    await Promise.race([started, ended]);
    if (this.failure) throw this.failure;
    this.timer = setInterval(() => this.tick(), Math.min(this.options.heartbeatMs, 10_000));
    this.timer.unref();
  }

  /** The next item, or undefined when `signal` aborted or `timeoutMs` passed. Throws the stream's failure. */
  async take(signal: AbortSignal, timeoutMs?: number): Promise<StreamItem | undefined> {
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) return undefined;
      const item = this.poll();
      if (item) return item;
      if (this.failure) throw this.failure;
      if (deadline !== undefined && Date.now() >= deadline) return undefined;
      await new Promise<void>((resolve) => {
        const timer = deadline === undefined ? undefined : setTimeout(() => done(), deadline - Date.now());
        const done = () => {
          if (timer) clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** The next item if one is buffered; never waits. */
  poll(): StreamItem | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head++];
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (this.paused && this.items.length - this.head <= this.options.highWater / 2) this.setPaused(false);
    return item;
  }

  /** Everything before `lsn` is durable: from now on the server may recycle that WAL. Never moves backwards. */
  confirm(lsn: string): void {
    if (compareLsn(lsn, this.confirmed) <= 0) return;
    this.confirmed = lsn;
    this.sendStatus(false);
  }

  /** Items waiting to be taken: stays near `highWater` however far the consumer lags. */
  get buffered(): number {
    return this.items.length - this.head;
  }

  get confirmedLsn(): string {
    return this.confirmed;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    // A paused socket never sees the server's end of the connection: let it flow (pushes are ignored now).
    if (this.paused) this.setPaused(false);
    await this.service.destroy().catch(() => undefined);
    this.wake?.();
  }

  private onMessage(lsn: string, msg: WalMessage): void {
    // Runs inside the driver's socket handler: a throw here would escape as
    // an uncaught exception, so any failure ends the stream instead.
    try {
      this.handle(lsn, msg);
    } catch (error) {
      this.fail(error);
    }
  }

  private handle(lsn: string, msg: WalMessage): void {
    switch (msg.tag) {
      case 'broken':
        throw new Error(`cannot decode pgoutput message at ${lsn}: ${msg.reason}`);
      case 'begin':
        this.txn = { commitLsn: msg.finalLsn, xid: msg.xid, commitTime: msg.commitTime, index: 0 };
        return;
      case 'commit':
        this.txn = undefined;
        this.handedOver = msg.endLsn;
        this.push({ kind: 'commit', endLsn: msg.endLsn });
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        const txn = this.requireTxn(msg.tag);
        const index = txn.index++;
        if (this.captures(msg.relation)) this.push({ kind: 'change', record: changeRecord(msg, txn, index, lsn) });
        return;
      }
      case 'truncate': {
        const txn = this.requireTxn(msg.tag);
        for (const relation of msg.relations) {
          const index = txn.index++;
          if (this.captures(relation)) this.push({ kind: 'change', record: truncateRecord(relation, txn, index, lsn) });
        }
        return;
      }
      default:
        return; // relation (kept by the decoder), type, origin, message
    }
  }

  /** Whether changes of `relation` are emitted; decided once per Relation message, not per row. */
  private captures(relation: Relation): boolean {
    let captured = this.captured.get(relation);
    if (captured === undefined) {
      captured = this.options.tables.has(tableName(relation));
      this.captured.set(relation, captured);
    }
    return captured;
  }

  private requireTxn(tag: string): TransactionContext {
    if (!this.txn) throw new Error(`pgoutput: ${tag} outside a transaction`);
    return this.txn;
  }

  private onKeepalive(lsn: string, shouldRespond: boolean): void {
    if (shouldRespond) this.sendStatus(false);
    // Between transactions every change before `lsn` has been handed over:
    // `lsn` may be confirmed once the items before it are durable.
    const due = Date.now() - this.lastHeartbeatAt >= this.options.heartbeatMs;
    if (!this.txn && due && compareLsn(lsn, this.handedOver) > 0) {
      this.lastHeartbeatAt = Date.now();
      this.handedOver = lsn;
      this.push({ kind: 'heartbeat', lsn });
    }
  }

  private tick(): void {
    // Ask for a keepalive (it carries the server's WAL end) only when idle.
    this.sendStatus(!this.txn && !this.paused);
  }

  /**
   * Reports `confirmed` as written, flushed and applied. The library adds 1
   * to the LSN it is given; Ferry wants the slot's confirmed_flush_lsn to be
   * exactly its durable position, so it passes one less.
   */
  private sendStatus(requestReply: boolean): void {
    const value = lsnToBigInt(this.confirmed);
    if (value === 0n || this.stopping) return;
    this.service.acknowledge(formatLsn(value - 1n), requestReply).catch((error: unknown) => this.fail(error));
  }

  private push(item: StreamItem): void {
    if (this.stopping) return;
    this.items.push(item);
    if (!this.paused && this.items.length - this.head >= this.options.highWater) this.setPaused(true);
    this.wake?.();
  }

  /** The library has no pull API: pause the socket under its pg connection (bounded by one socket read). */
  private setPaused(paused: boolean): void {
    const socket = (this.service as unknown as { _connection?: { stream?: PausableSocket } })._connection?.stream;
    if (!socket) return;
    this.paused = paused;
    if (paused) socket.pause();
    else socket.resume();
  }

  private fail(error: unknown): void {
    if (this.stopping || this.failure) return;
    this.failure = toFerryError(error, this.options.where);
    this.options.logger.warn({ err: this.failure.message, code: this.failure.code }, 'postgres-cdc: replication stream failed');
    this.wake?.();
  }
}
