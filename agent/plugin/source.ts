import type { Logger } from 'pino';
import type { StateStore } from '../checkpoint/state-store.js';

/** Any JSON value: what a checkpoint and a record field may hold once serialised. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * A source's position, opaque to the framework: whatever the source needs to
 * resume exactly after the last record the framework has made durable (an
 * LSN, a binlog file and offset, a file's content hash and record number...).
 * It must be JSON-serialisable: the framework stores it, not the source.
 */
export type Checkpoint = Json;

/** The operation a record stands for, as in Debezium: create, update, delete, read (snapshot), truncate. */
export type Operation = 'c' | 'u' | 'd' | 'r' | 't';

/**
 * Where a record came from, used by a mapping's `match`: a table
 * (`schema.table` / `database.table`), a file name, or an RPA script name.
 */
export type RecordOrigin =
  | { kind: 'table'; name: string }
  | { kind: 'file'; name: string }
  | { kind: 'script'; name: string };

/** One record as the legacy system gave it, before any mapping. */
export interface SourceRecord {
  origin: RecordOrigin;
  op: Operation;
  /** The row or record as read (the after-image for updates; for a delete, whatever the source has). */
  data: Record<string, unknown>;
  /** The before-image, where the source has one (updates and deletes). */
  before?: Record<string, unknown>;
  /**
   * Columns whose value did not change and that the source could not send,
   * so they are absent from `data` (never a placeholder value): a Postgres
   * update under `REPLICA IDENTITY DEFAULT` omits its unchanged TOASTed
   * columns. The target already holds their value. A mapping leaves the
   * fields made from them out of the event and names those fields in the
   * event's `ferryunchanged`. Set only when non-empty; key columns never
   * belong here.
   */
  unchanged?: readonly string[];
  /**
   * The identity of this change, the same every time the same change is read
   * again, across restarts and re-reads (e.g. `sha256-of-file:line`, `lsn:txid:n`).
   * The event id is derived from it, so it must never depend on timing.
   */
  changeId: string;
  /** When the change happened at the source (commit time, file modification time), ISO 8601. */
  time: string;
  /** For people: where to find the record (`inbox/kunden_1.csv:17`, `public.orders @ 0/16B3748 xid 4711`). */
  location: string;
  /** Source position attributes carried on the event (`ferryposition`) and in dead-letter entries. */
  position: string;
  /** The source transaction the change belongs to (Postgres xid, MySQL/MariaDB GTID), carried on the event as `ferrytxid`. */
  txid?: string;
  /**
   * Set when the source could locate the record but not read its content (a
   * malformed CSV row, an undecodable line): the framework sends it straight
   * to the dead-letter queue with this reason, without mapping, and the good
   * records around it keep flowing. `data` then holds what could be read
   * (e.g. `{ _raw: "the line" }`).
   */
  invalid?: string;
}

/**
 * What `Source.read` yields: some records and the checkpoint that is true
 * once they (and every batch before) are durable. A batch may be empty: a
 * heartbeat that only moves the position.
 */
export interface SourceBatch {
  records: SourceRecord[];
  checkpoint: Checkpoint;
}

/** What the framework hands a source when it opens it. */
export interface SourceContext {
  /** The pipeline this source feeds. */
  pipeline: string;
  /** The agent's id (from `agent.id`). */
  agentId: string;
  /** The agent's data directory, for sources that need local files. */
  dataDir: string;
  /** Durable key-value state kept by the framework for this pipeline's source (Redis-backed). */
  state: StateStore;
  logger: Logger;
}

/** One preflight finding, printed by `ferry check`. */
export interface CheckResult {
  /** What was checked, e.g. `wal_level`. */
  name: string;
  ok: boolean;
  /** What was found. */
  detail: string;
  /** When not ok: the command or setting that fixes it. */
  fix?: string;
  /** A warning does not fail `ferry check`. */
  severity?: 'error' | 'warning';
}

/**
 * The contract every source implements (see docs/specs/component.md).
 *
 * Life cycle, driven by the framework only:
 * 1. `open(from, ctx)`: connect; `from` is the last checkpoint the framework
 *    committed (undefined on first start). Must not read yet.
 * 2. `read(signal)`: pull batches. The framework pulls the next batch only
 *    when it has room, which is the backpressure. When `signal` aborts the
 *    iterator must finish promptly (return, not throw).
 * 3. `commit(checkpoint)`: called with checkpoints in the order they were
 *    yielded, only once every record up to them is durable in the queue
 *    (never "the latest"). For systems that need the feedback (a replication
 *    slot, archiving a finished file). Optional.
 * 4. `close()`: release everything. Called once, even after a failed open.
 *
 * Errors: throw `FerryError` subclasses; a `RetryableError` from `open` or
 * `read` makes the framework reopen from the last committed checkpoint with
 * backoff; a `ConfigError` stops the pipeline.
 */
export interface Source {
  open(from: Checkpoint | undefined, ctx: SourceContext): Promise<void>;
  read(signal: AbortSignal): AsyncIterable<SourceBatch>;
  commit?(checkpoint: Checkpoint): Promise<void>;
  /** Preflight for `ferry check`: reachable, privileges, server settings. Must not change anything. */
  check?(): Promise<CheckResult[]>;
  /**
   * On-demand re-snapshot for `ferry snapshot PIPELINE`: reads the current
   * rows of the requested tables (all captured tables when none are given),
   * optionally filtered by `where` (an SQL condition the source passes to the
   * database inside its read-only snapshot query), and yields them as op `r`
   * records in key-ordered chunks with progress. Called on a source that was
   * created but not opened; it must not touch the source's stored position
   * and must never write to the legacy system. Record changeIds must not
   * collide with streaming ones (prefix them, e.g. `snapshot:<run>:...`).
   */
  snapshot?(request: SnapshotRequest, ctx: SourceContext, signal: AbortSignal): AsyncIterable<SnapshotBatch>;
  /**
   * Source-specific lag, for the `ferry_source_lag` metric and `ferry status`:
   * e.g. `{ unit: 'bytes', value: slotLag }` for a replication slot, files
   * waiting in a drop folder. Called every few seconds on an open source; must
   * be cheap (return the last measured value, measure in the background).
   */
  lag?(): Array<{ unit: string; value: number }>;
  close(): Promise<void>;
}

/** What `ferry snapshot` asks for. */
export interface SnapshotRequest {
  /** Tables (as mappings match them, e.g. `public.orders`); empty or absent: every captured table. */
  tables?: string[];
  /** An SQL condition limiting the rows, e.g. `updated_at > '2024-01-01'`. */
  where?: string;
  /** Identifies this snapshot run; part of every changeId, so a repeated run makes new events and a resumed one the same. */
  runId: string;
}

/** A chunk of snapshot rows and how far the snapshot has come. */
export interface SnapshotBatch {
  records: SourceRecord[];
  progress: { table: string; rowsDone: number; rowsTotal?: number };
}
