import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { pino } from 'pino';
import { MemoryStateStore } from '../../agent/checkpoint/state-store.js';
import type { Checkpoint, SourceBatch, SourceContext, SourceRecord } from '../../agent/plugin/source.js';
import { resolveConfig, type PostgresCdcConfig } from '../../sources/postgres-cdc/config.js';
import { compareLsn } from '../../sources/postgres-cdc/lsn.js';
import { PostgresCdcSource } from '../../sources/postgres-cdc/postgres-cdc-source.js';
import { withClient } from '../support/postgres.js';

/** The test server: Postgres 15 on 127.0.0.1 with trust auth and wal_level=logical (test/setup/services.d/20-postgres.sh). */
export const ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh database for one test file, dropped (with its slots) by `drop`. */
export class TestDatabase {
  readonly name = `ferry_pgcdc_${randomBytes(4).toString('hex')}`;
  readonly url = `postgres://postgres@127.0.0.1:5432/${this.name}`;
  private client: pg.Client | undefined;

  async create(): Promise<this> {
    await withClient(ADMIN_URL, (c) => c.query(`CREATE DATABASE ${this.name}`));
    this.client = new pg.Client({ connectionString: this.url });
    await this.client.connect();
    return this;
  }

  async sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    if (!this.client) throw new Error('database not created');
    return (await this.client.query<R>(text, values)).rows;
  }

  async slot(name: string): Promise<{ confirmed_flush_lsn: string; active_pid: number | null } | undefined> {
    return (await this.sql<{ confirmed_flush_lsn: string; active_pid: number | null }>(`SELECT confirmed_flush_lsn::text, active_pid FROM pg_replication_slots WHERE slot_name = $1`, [name]))[0];
  }

  async drop(): Promise<void> {
    await this.client?.end().catch(() => undefined);
    await withClient(ADMIN_URL, async (c) => {
      await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [this.name]);
      await new Promise((r) => setTimeout(r, 200));
      await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [this.name]);
      await c.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`);
    });
  }
}


export function context(): SourceContext {
  return { pipeline: 'test', agentId: 'test-agent', dataDir: tmpdir(), state: new MemoryStateStore(), logger: pino({ level: process.env.PGCDC_TEST_LOG ?? 'silent' }) };
}

export function makeSource(db: TestDatabase, overrides: Partial<PostgresCdcConfig> & Pick<PostgresCdcConfig, 'tables'>): PostgresCdcSource {
  return new PostgresCdcSource(
    resolveConfig({ type: 'postgres-cdc', connection: db.url, publication: 'ferry_pub', slot: `${db.name}_slot`, heartbeatMs: 300, ...overrides }),
  );
}

/**
 * Drives a source the way the runtime does: open, pull batches, commit when
 * told. `close()` without commit is the abrupt stop of a killed agent.
 */
export class Driver {
  readonly batches: SourceBatch[] = [];
  private readonly abort = new AbortController();
  private iterator: AsyncIterator<SourceBatch> | undefined;
  private pending: Promise<IteratorResult<SourceBatch>> | undefined;

  constructor(readonly source: PostgresCdcSource) {}

  async open(from?: Checkpoint): Promise<this> {
    await this.source.open(from, context());
    if (from !== undefined) await this.source.commit(from);
    this.iterator = this.source.read(this.abort.signal)[Symbol.asyncIterator]();
    return this;
  }

  get records(): SourceRecord[] {
    return this.batches.flatMap((b) => b.records);
  }

  /** Pulls batches until `done` holds for the records read so far (by this driver). */
  async until(done: (records: SourceRecord[]) => boolean, timeoutMs = 60_000): Promise<SourceRecord[]> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.records)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; read ${this.records.length} records: ${JSON.stringify(this.records.slice(-3))}`);
      // A next() still pending after a timeout is kept, not lost.
      this.pending ??= this.iterator!.next();
      const next = await Promise.race([this.pending, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), left).unref())]);
      if (next === 'timeout') continue;
      this.pending = undefined;
      if (next.done) throw new Error('read() ended');
      this.batches.push(next.value);
    }
    return this.records;
  }

  /**
   * Pulls and commits every batch, as the runtime does when the queue keeps
   * up, until read() fails; returns the failure and the last checkpoint committed.
   */
  async commitUntilFailure(timeoutMs = 30_000): Promise<{ error: unknown; committed: Checkpoint | undefined }> {
    let committed: Checkpoint | undefined;
    const deadline = Date.now() + timeoutMs;
    try {
      if (this.batches.length > 0) {
        committed = this.lastCheckpoint;
        await this.source.commit(committed);
      }
      while (Date.now() < deadline) {
        const next = await (this.pending ?? this.iterator!.next());
        this.pending = undefined;
        if (next.done) return { error: new Error('read() ended'), committed };
        this.batches.push(next.value);
        await this.source.commit(next.value.checkpoint);
        committed = next.value.checkpoint;
      }
      return { error: new Error('no failure before the deadline'), committed };
    } catch (error) {
      return { error, committed };
    }
  }

  /** Pulls until at least `n` records of op other than heartbeat have arrived. */
  count(n: number, timeoutMs?: number): Promise<SourceRecord[]> {
    return this.until((r) => r.length >= n, timeoutMs);
  }

  /** The checkpoint of the last batch pulled. */
  get lastCheckpoint(): Checkpoint {
    const last = this.batches.at(-1);
    if (!last) throw new Error('no batch yet');
    return last.checkpoint;
  }

  /**
   * Commits the last checkpoint once it covers every streamed record read so
   * far: a batch may end before its transaction's commit has arrived, and
   * then its checkpoint (rightly) stays before that transaction.
   */
  async commitAll(): Promise<Checkpoint> {
    await this.until((rs) => rs.filter((r) => !r.changeId.startsWith('snapshot:')).every((r) => covers(this.lastCheckpoint, r)));
    const cp = this.lastCheckpoint;
    await this.source.commit(cp);
    return cp;
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.iterator?.return?.();
    await this.source.close();
  }
}

/** The LSN of the commit of the transaction a streamed record belongs to (its changeId is `<commit LSN>:<n>`). */
export function commitLsnOf(record: SourceRecord): string {
  return record.changeId.split(':')[0] ?? '';
}

/** Whether the checkpoint lies past the record's transaction, i.e. a restart from it will not read the record again. */
export function covers(checkpoint: Checkpoint, record: SourceRecord): boolean {
  return compareLsn((checkpoint as { lsn: string }).lsn, commitLsnOf(record)) > 0;
}
