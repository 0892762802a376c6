import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { FerryError } from '../../agent/errors/index.js';
import type { Checkpoint, CheckResult, SnapshotBatch, SnapshotRequest, Source, SourceBatch, SourceContext, SourceRecord } from '../../agent/plugin/source.js';
import { parseCheckpoint, toCheckpoint, type PgCdcCheckpoint } from './checkpoint.js';
import type { ResolvedConfig } from './config.js';
import { commitLsnOf } from './change-records.js';
import { connect, describeTarget, slotLost, toFerryError } from './connection.js';
import { compareLsn } from './lsn.js';
import { preflight } from './preflight.js';
import { ReplicationStream, type StreamItem } from './replication-stream.js';
import { SnapshotReader, type SnapshotProgress } from './snapshot.js';
import { createSlot, createSlotWithSnapshot, dropSlot, ensurePublication, inspectPublication, slotLagBytes, waitForSlotFree, type SlotState } from './slot.js';
import { inspectTables, requireCapturableTables } from './tables.js';

/** How long a batch whose transaction is still open waits for more before it is handed over anyway. */
const COMMIT_LINGER_MS = 25;

/** How long open() waits for a slot its own previous connection may still hold. */
const SLOT_FREE_WAIT_MS = 5_000;

/** What open() decided: where the stream starts and whether a snapshot comes first. */
interface StartPlan {
  /** Where the snapshot's rows stand and the stream goes on from. */
  startLsn: string;
  snapshot?: SnapshotProgress;
  exportedSnapshot?: string;
  /** A resumed snapshot: the stream first catches up from here to `startLsn`, before the rest of the rows. */
  catchUpFrom?: string;
}

/**
 * The postgres-cdc source: an optional consistent snapshot (op `r`), then the
 * slot's changes as whole transactions. Positions reach the slot only through
 * `commit`, i.e. once the runtime has made them durable.
 */
export class PostgresCdcSource implements Source {
  private readonly where: string;
  private logger: Logger | undefined;
  private query: pg.Client | undefined;
  private holder: pg.Client | undefined;
  private plan: StartPlan | undefined;
  private snapshotReader: SnapshotReader | undefined;
  private stream: ReplicationStream | undefined;
  /**
   * The furthest position the slot may be told: at open the stored
   * checkpoint's (with none, the slot's own start), then the highest one
   * committed. A stream reports it from its start, whatever LSN it starts at.
   */
  private committedLsn: string | undefined;
  /** Slot lag in bytes as last sampled by the heartbeat. */
  private lagBytes: number | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly config: ResolvedConfig) {
    this.where = `${describeTarget(config.connection)} slot ${config.slot}`;
  }

  async open(from: Checkpoint | undefined, ctx: SourceContext): Promise<void> {
    this.logger = ctx.logger;
    const cp = parseCheckpoint(from, this.where);
    this.query = await connect(this.config.connection, 'query');
    try {
      await this.requireLogicalWal(this.query);
      // The tables and the slot first: a missing table, one the publication
      // would break, or a wrong or busy slot stops here, before Ferry creates anything.
      const pub = await inspectPublication(this.query, this.config.publication, this.config.tables);
      requireCapturableTables(await inspectTables(this.query, this.config.tables), this.config.publication, pub, ctx.pipeline, this.where);
      const slot = await waitForSlotFree(this.query, this.config.slot, this.where, SLOT_FREE_WAIT_MS);
      if (slot) await this.requireUsableSlot(this.query, slot);
      const missing = await ensurePublication(this.query, this.config.publication, this.config.tables, this.where, pub);
      if (missing.length > 0) {
        ctx.logger.warn({ publication: this.config.publication, missing }, `postgres-cdc: publication ${this.config.publication} does not publish ${missing.join(', ')}; their changes will not arrive (ALTER PUBLICATION ${this.config.publication} ADD TABLE ...)`);
      }
      this.plan = await this.planStart(cp, slot, ctx.pipeline);
      // Not the resumed snapshot's new consistent point: the catch-up and rows before it are not durable yet.
      this.committedLsn = this.plan.catchUpFrom ?? this.plan.startLsn;
      if (this.plan.snapshot) await this.beginSnapshot(this.plan);
    } catch (error) {
      throw toFerryError(error, this.where);
    }
  }

  async *read(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const plan = this.plan;
    if (!plan) throw new Error('postgres-cdc: read() before open()');
    if (plan.snapshot) {
      if (plan.catchUpFrom) yield* this.catchUp(plan.catchUpFrom, plan.startLsn, plan.snapshot, signal);
      if (signal.aborted) return;
      for await (const batch of this.readSnapshot(plan.startLsn, signal)) yield batch;
      if (signal.aborted) return;
      // The catch-up's walsender may still be letting go of the slot.
      if (plan.catchUpFrom) await waitForSlotFree(this.query as pg.Client, this.config.slot, this.where, SLOT_FREE_WAIT_MS);
    }
    yield* this.readStream(plan.startLsn, signal);
  }

  async commit(checkpoint: Checkpoint): Promise<void> {
    const cp = parseCheckpoint(checkpoint, this.where);
    // While snapshotting (or catching up to a resumed snapshot) the slot stays where it is: nothing to confirm.
    if (!cp || cp.snapshot) return;
    if (!this.committedLsn || compareLsn(cp.lsn, this.committedLsn) > 0) this.committedLsn = cp.lsn;
    this.stream?.confirm(cp.lsn);
  }

  check(): Promise<CheckResult[]> {
    return preflight(this.config);
  }

  /**
   * `ferry snapshot PIPELINE`: the current rows of the requested tables (all
   * captured ones by default), optionally filtered, as op `r` in key-ordered
   * chunks. Read in a fresh REPEATABLE READ READ ONLY snapshot on its own
   * connection: no slot, no stored position, nothing written. A running agent
   * keeps streaming meanwhile, so a row may reach a sink after a newer change
   * of it (see docs/sources/postgres-cdc.md, "Re-snapshot on request").
   */
  async *snapshot(request: SnapshotRequest, ctx: SourceContext, signal: AbortSignal): AsyncIterable<SnapshotBatch> {
    this.logger = ctx.logger;
    const tables = this.requireCapturedTables(request.tables?.length ? request.tables : this.config.tables);
    const filter = request.where?.trim() || undefined;
    if (filter?.includes(';')) {
      throw new FerryError('FERRY_USAGE', `--where "${filter}" contains ";": only one SQL condition is allowed`, {
        where: 'ferry snapshot --where',
        fix: 'Pass a single condition without ";", e.g. -w "updated_at > \'2024-01-01\'".',
      });
    }
    const progress: SnapshotProgress = { id: request.runId, startedAt: new Date().toISOString(), tables, ...(filter ? { filter } : {}) };
    this.query = await connect(this.config.connection, 'query');
    const reader = new SnapshotReader(this.query, progress, this.config.snapshotChunkSize, this.where);
    try {
      await reader.begin();
      await reader.checkFilter();
      let table: string | undefined;
      let rowsDone = 0;
      let rowsTotal: number | undefined;
      while (!signal.aborted) {
        const chunk = await reader.nextChunk();
        if (!chunk) return;
        const chunkTable = chunk.records[0]?.origin.name ?? '';
        if (chunkTable !== table) {
          table = chunkTable;
          rowsDone = 0;
          rowsTotal = await reader.rowsTotal(table);
        }
        rowsDone += chunk.records.length;
        // An estimate may be below what was read: never show more than 100%.
        yield { records: chunk.records, progress: { table, rowsDone, ...(rowsTotal !== undefined ? { rowsTotal: Math.max(rowsTotal, rowsDone) } : {}) } };
      }
    } catch (error) {
      throw toFerryError(error, this.where);
    } finally {
      await reader.finish().catch(() => undefined);
    }
  }

  /** Slot lag for `ferry_source_lag` and `ferry status`: WAL bytes the server keeps beyond Ferry's durable position, sampled every heartbeat. */
  lag(): Array<{ unit: string; value: number }> {
    return this.lagBytes === undefined ? [] : [{ unit: 'bytes', value: this.lagBytes }];
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.stream?.stop();
    await this.holder?.end().catch(() => undefined);
    await this.query?.end().catch(() => undefined);
    this.stream = undefined;
    this.holder = undefined;
    this.query = undefined;
  }

  private async requireLogicalWal(client: pg.Client): Promise<void> {
    const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
    const level = rows[0]?.wal_level;
    if (level !== 'logical') {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `wal_level is ${level}, logical replication needs logical`, {
        where: this.where,
        fix: "As a superuser: ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL.",
      });
    }
  }

  private async requireUsableSlot(client: pg.Client, slot: SlotState): Promise<void> {
    const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db;
    if (slot.database !== database) {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `replication slot ${this.config.slot} belongs to database ${slot.database ?? '(physical slot)'}, not ${database}`, {
        where: this.where,
        fix: 'Slot names are server-wide: give this pipeline another `slot` name.',
      });
    }
    if (slot.plugin !== 'pgoutput') {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `replication slot ${this.config.slot} uses plugin ${slot.plugin ?? '(physical)'}, Ferry needs pgoutput`, {
        where: this.where,
        fix: `Give the pipeline another \`slot\` name, or drop this one: SELECT pg_drop_replication_slot('${this.config.slot}');`,
      });
    }
  }

  /**
   * Decides where to start. With a checkpoint: the slot must still hold it,
   * else POSITION_LOST (or a fresh snapshot with `when_needed`). Without: a
   * new slot with an exported snapshot; an existing slot without a Ferry
   * checkpoint holds no position Ferry relies on, so it is recreated unless
   * `snapshot: never`.
   */
  private async planStart(cp: PgCdcCheckpoint | undefined, slot: SlotState | undefined, pipeline: string): Promise<StartPlan> {
    const client = this.query as pg.Client;
    const { slot: name, snapshot } = this.config;
    if (cp) {
      const problem = !slot
        ? 'it does not exist (dropped?)'
        : slot.walStatus === 'lost'
          ? 'the server removed WAL it still needed (wal_status = lost)'
          : slot.confirmedFlushLsn && compareLsn(slot.confirmedFlushLsn, cp.lsn) > 0
            ? `it was moved to ${slot.confirmedFlushLsn}, past Ferry's durable position ${cp.lsn}`
            : undefined;
      if (!problem) return cp.snapshot ? this.resumeSnapshot(cp.lsn, { ...cp.snapshot, tables: this.requireCapturedTables(cp.snapshot.tables) }) : { startLsn: cp.lsn };
      if (snapshot !== 'when_needed') throw slotLost(name, problem, this.where, pipeline);
      this.logger?.warn({ slot: name, problem }, `postgres-cdc: slot ${name}: ${problem}; re-snapshotting (snapshot: when_needed)`);
      if (slot) await dropSlot(client, name);
      return this.freshSnapshot();
    }
    if (slot && snapshot === 'never') return { startLsn: slot.confirmedFlushLsn ?? '0/0' };
    if (slot) {
      this.logger?.warn({ slot: name }, `postgres-cdc: slot ${name} exists but Ferry has no position for it; recreating it for a consistent snapshot`);
      await dropSlot(client, name);
    }
    if (snapshot === 'never') return { startLsn: await createSlot(client, name) };
    return this.freshSnapshot();
  }

  private requireCapturedTables(tables: string[]): string[] {
    const unknown = tables.filter((t) => !this.config.tables.includes(t));
    if (unknown.length > 0) {
      throw new FerryError('FERRY_USAGE', `cannot snapshot ${unknown.join(', ')}: not in this source's \`tables\``, {
        where: this.where,
        fix: `Snapshot only captured tables (${this.config.tables.join(', ')}), or add them to \`tables\` first.`,
      });
    }
    return tables;
  }

  private async freshSnapshot(): Promise<StartPlan> {
    const exported = await createSlotWithSnapshot(this.config.connection, this.config.slot, this.where);
    this.holder = exported.holder;
    return {
      startLsn: exported.consistentPoint,
      exportedSnapshot: exported.snapshotName,
      snapshot: { id: exported.consistentPoint, startedAt: new Date().toISOString(), tables: [...this.config.tables] },
    };
  }

  /**
   * A snapshot interrupted by a crash: its exported snapshot died with its
   * connection. The rest of the rows is read in a new exported snapshot (a
   * temporary slot's, at its consistent point C), and before them the stream
   * catches up from the checkpoint to C. So every change older than those
   * rows reaches the queue before them — no key ever gets an older version
   * after a newer one — and the stream goes on from C.
   */
  private async resumeSnapshot(from: string, progress: SnapshotProgress): Promise<StartPlan> {
    const exported = await createSlotWithSnapshot(this.config.connection, `ferry_resume_${randomBytes(4).toString('hex')}`, this.where, { temporary: true });
    this.holder = exported.holder;
    this.logger?.info({ from, consistentPoint: exported.consistentPoint, tables: progress.tables }, 'postgres-cdc: resuming the snapshot; streaming up to a new consistent point first');
    return { startLsn: exported.consistentPoint, exportedSnapshot: exported.snapshotName, snapshot: progress, catchUpFrom: from };
  }

  private async beginSnapshot(plan: StartPlan): Promise<void> {
    if (!plan.snapshot) return;
    this.snapshotReader = new SnapshotReader(this.query as pg.Client, plan.snapshot, this.config.snapshotChunkSize, this.where);
    await this.snapshotReader.begin(plan.exportedSnapshot, plan.catchUpFrom !== undefined);
    // Imported: the exporting replication connection is no longer needed.
    await this.holder?.end().catch(() => undefined);
    this.holder = undefined;
  }

  private async *readSnapshot(startLsn: string, signal: AbortSignal): AsyncIterable<SourceBatch> {
    const reader = this.snapshotReader as SnapshotReader;
    while (!signal.aborted) {
      let chunk: Awaited<ReturnType<SnapshotReader['nextChunk']>>;
      try {
        chunk = await reader.nextChunk();
      } catch (error) {
        throw toFerryError(error, this.where);
      }
      if (!chunk) break;
      yield { records: chunk.records, checkpoint: toCheckpoint(chunk.progress ? { lsn: startLsn, snapshot: chunk.progress } : { lsn: startLsn }) };
    }
    this.snapshotReader = undefined;
  }

  private async openStream(startLsn: string): Promise<ReplicationStream> {
    const stream = new ReplicationStream({
      connection: this.config.connection,
      slot: this.config.slot,
      publication: this.config.publication,
      tables: new Set(this.config.tables),
      startLsn,
      confirmedLsn: this.committedLsn,
      heartbeatMs: this.config.heartbeatMs,
      highWater: Math.max(4 * this.config.batchSize, 1000),
      where: this.where,
      logger: this.logger as Logger,
    });
    this.stream = stream;
    await stream.start();
    return stream;
  }

  /**
   * The stream from `from` up to `until` (a resumed snapshot's consistent
   * point): the transactions that committed before it, whose effects the
   * rows read at `until` already show. Ends at the first sign of a later
   * one (a change or commit past `until`, or a keepalive beyond it between
   * transactions); that transaction comes again from the stream started at
   * `until`. Checkpoints keep the snapshot's progress, so a crash here
   * resumes the same way.
   */
  private async *catchUp(from: string, until: string, progress: SnapshotProgress, signal: AbortSignal): AsyncIterable<SourceBatch> {
    if (compareLsn(from, until) >= 0) return;
    const stream = await this.openStream(from);
    const batch = (records: SourceRecord[], lsn: string): SourceBatch => ({ records, checkpoint: toCheckpoint({ lsn, snapshot: progress }) });
    let records: SourceRecord[] = [];
    let checkpoint = from;
    try {
      for (;;) {
        const item = records.length > 0 ? stream.poll() : await stream.take(signal);
        if (signal.aborted) return;
        if (!item) {
          yield batch(records, checkpoint);
          records = [];
          continue;
        }
        if (item.kind === 'change') {
          if (compareLsn(commitLsnOf(item.record), until) >= 0) break;
          records.push(item.record);
        } else if (item.kind === 'commit') {
          if (compareLsn(item.endLsn, until) > 0) break;
          checkpoint = item.endLsn;
          if (records.length >= this.config.batchSize) {
            yield batch(records, checkpoint);
            records = [];
          }
        } else if (compareLsn(item.lsn, until) >= 0) {
          break;
        }
      }
      // Whole transactions only: the one past `until` was not taken.
      yield batch(records, checkpoint);
      this.logger?.info({ until }, 'postgres-cdc: caught up to the resumed snapshot; reading the rest of its rows');
    } finally {
      await stream.stop();
      this.stream = undefined;
    }
  }

  private async *readStream(startLsn: string, signal: AbortSignal): AsyncIterable<SourceBatch> {
    const stream = await this.openStream(startLsn);
    this.startHeartbeat();
    let checkpoint = startLsn;
    let handedOver = startLsn;
    let records: SourceRecord[] = [];
    let inTransaction = false;
    let carried: StreamItem | undefined;
    const apply = (item: StreamItem): void => {
      inTransaction = item.kind === 'change';
      if (item.kind === 'change') records.push(item.record);
      // A batch may end mid-transaction: its checkpoint stays at the last whole transaction.
      else if (item.kind === 'commit') checkpoint = item.endLsn;
      else if (compareLsn(item.lsn, checkpoint) > 0) checkpoint = item.lsn;
    };
    for (;;) {
      // Wait only when nothing is pending; otherwise take what is already buffered.
      const pending = records.length > 0 || checkpoint !== handedOver;
      let item = carried ?? (pending ? stream.poll() : await stream.take(signal));
      carried = undefined;
      // A transaction's last change and its commit often come in separate
      // socket reads: wait a moment so the batch can carry the commit's position.
      if (!item && inTransaction && records.length > 0) item = await stream.take(signal, COMMIT_LINGER_MS);
      if (signal.aborted) return;
      if (item) {
        apply(item);
        if (records.length < this.config.batchSize) continue;
        // Full on a transaction's last change: take its commit too, so the
        // batch's checkpoint covers every record in it and a restart from
        // it repeats nothing. A longer transaction's next change waits.
        if (inTransaction) {
          const next = stream.poll() ?? (await stream.take(signal, COMMIT_LINGER_MS));
          if (signal.aborted) return;
          if (next?.kind === 'commit') apply(next);
          else carried = next;
        }
      }
      if (records.length === 0 && checkpoint === handedOver) continue;
      yield { records, checkpoint: toCheckpoint({ lsn: checkpoint }) };
      handedOver = checkpoint;
      records = [];
    }
  }

  /** Samples slot lag and runs the optional heartbeat statement, on the query connection. */
  private startHeartbeat(): void {
    const client = this.query as pg.Client;
    let busy = false;
    this.heartbeat = setInterval(() => {
      if (busy) return;
      busy = true;
      void (async () => {
        try {
          // A failing heartbeatQuery (a role that may not write its table) must not blind the lag metric too.
          if (this.config.heartbeatQuery) {
            await client.query(this.config.heartbeatQuery).catch((error: Error) => this.logger?.warn({ err: error.message }, 'postgres-cdc: heartbeatQuery failed'));
          }
          this.lagBytes = await slotLagBytes(client, this.config.slot);
        } catch (error) {
          this.logger?.warn({ err: (error as Error).message }, 'postgres-cdc: sampling the slot lag failed');
        } finally {
          busy = false;
        }
      })();
    }, this.config.heartbeatMs);
    this.heartbeat.unref();
  }
}
