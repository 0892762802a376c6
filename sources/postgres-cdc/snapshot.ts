import type pg from 'pg';
import { FerryError } from '../../agent/errors/index.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { quoteIdent, quoteTable } from './config.js';
import { toFerryError } from './connection.js';
import { decodeValue } from './type-decoding.js';

/**
 * Where an initial snapshot stands; part of the checkpoint, so a crash
 * resumes after the last durable chunk instead of starting over.
 */
export interface SnapshotProgress {
  /** The slot's consistent point (the stream starts there), or the run id of `ferry snapshot`: snapshot changeIds carry it. */
  id: string;
  /** When the snapshot began: the `time` of its records. */
  startedAt: string;
  /** Tables still to read, the one in progress first. */
  tables: string[];
  /** Primary key (text form) of the last row read of `tables[0]`; absent when that table has not started. */
  lastKey?: string[];
  /** An SQL condition rows must meet (`ferry snapshot PIPELINE --where`, never stored in a checkpoint); absent: every row. */
  filter?: string;
}

/** Pseudo-key of tables without a primary key: valid only inside one snapshot. */
const CTID = '__ferry_ctid';

interface TablePlan {
  keyColumns: string[];
  keyless: boolean;
  estimatedRows: number;
}

/**
 * Reads tables in key order, one chunk (`LIMIT n`, keyset pagination) at a
 * time, inside one REPEATABLE READ READ ONLY transaction, and turns rows into
 * op `r` records decoded exactly like streamed changes.
 */
export class SnapshotReader {
  private readonly plans = new Map<string, TablePlan>();
  private progress: SnapshotProgress;
  private inTransaction = false;

  constructor(
    private readonly client: pg.Client,
    progress: SnapshotProgress,
    private readonly chunkSize: number,
    private readonly where: string,
  ) {
    this.progress = { ...progress, tables: [...progress.tables] };
  }

  /**
   * Starts the snapshot transaction. With `exportedSnapshot` it sees the
   * database exactly as of that snapshot's consistent point (the slot's on
   * a first run, a temporary slot's when resuming); without (`ferry
   * snapshot`) as of now. When `resumed`, rows of a keyless table in
   * progress are read again from its start, since a ctid means nothing
   * across snapshots.
   */
  async begin(exportedSnapshot?: string, resumed = false): Promise<void> {
    await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    this.inTransaction = true;
    if (exportedSnapshot) await this.client.query(`SET TRANSACTION SNAPSHOT '${exportedSnapshot.replaceAll("'", "''")}'`);
    for (const table of this.progress.tables) this.plans.set(table, await this.planTable(table));
    const first = this.progress.tables[0];
    if (resumed && first && this.plans.get(first)?.keyless) delete this.progress.lastKey;
  }

  /**
   * Has Postgres plan (not run) the filter on every table, so a mistyped
   * `--where` stops with a usage error before any row is queued.
   */
  async checkFilter(): Promise<void> {
    const filter = this.progress.filter;
    if (!filter) return;
    for (const table of this.progress.tables) {
      try {
        await this.client.query(`EXPLAIN SELECT 1 FROM ${quoteTable(table)} AS t WHERE (${filter})`);
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (!/^(42|22)/.test(code)) throw toFerryError(error, this.where);
        throw new FerryError('FERRY_USAGE', `--where "${filter}" does not work on ${table}: ${(error as Error).message}`, {
          where: 'ferry snapshot --where',
          fix: 'Write an SQL condition on the columns of every table snapshotted (alias `t`), e.g. -w "id > 100"; name one table with -t when the columns differ.',
          cause: error,
        });
      }
    }
  }

  /**
   * How many rows `table` will yield, for a progress bar: an exact count in
   * the snapshot when a filter is set, else the planner's estimate
   * (pg_class.reltuples); undefined when never analysed.
   */
  async rowsTotal(table: string): Promise<number | undefined> {
    if (!this.progress.filter) {
      const estimate = this.plans.get(table)?.estimatedRows ?? -1;
      return estimate >= 0 ? estimate : undefined;
    }
    try {
      const { rows } = await this.client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteTable(table)} AS t WHERE (${this.progress.filter})`);
      return Number(rows[0]?.n ?? 0);
    } catch (error) {
      throw toFerryError(error, `${this.where} snapshot of ${table}`);
    }
  }

  /** The next chunk and the progress once it is durable; undefined when every table is read. */
  async nextChunk(): Promise<{ records: SourceRecord[]; progress: SnapshotProgress | undefined } | undefined> {
    for (;;) {
      const table = this.progress.tables[0];
      if (table === undefined) {
        await this.finish();
        return undefined;
      }
      const records = await this.readChunk(table);
      if (records.length < this.chunkSize) {
        this.progress.tables.shift();
        delete this.progress.lastKey;
      }
      if (records.length === 0) continue;
      const done = this.progress.tables.length === 0;
      if (done) await this.finish();
      return { records, progress: done ? undefined : { ...this.progress, tables: [...this.progress.tables] } };
    }
  }

  async finish(): Promise<void> {
    if (!this.inTransaction) return;
    this.inTransaction = false;
    await this.client.query('COMMIT');
  }

  private async planTable(table: string): Promise<TablePlan> {
    try {
      const estimate = await this.client.query<{ reltuples: string }>(`SELECT reltuples::bigint::text AS reltuples FROM pg_class WHERE oid = $1::regclass`, [quoteTable(table)]);
      const estimatedRows = Number(estimate.rows[0]?.reltuples ?? -1);
      const { rows } = await this.client.query<{ attname: string }>(
        `SELECT a.attname
           FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = $1::regclass AND i.indisprimary
          ORDER BY array_position(i.indkey::int2[], a.attnum)`,
        [quoteTable(table)],
      );
      const keyColumns = rows.map((r) => r.attname);
      return keyColumns.length > 0 ? { keyColumns, keyless: false, estimatedRows } : { keyColumns: [CTID], keyless: true, estimatedRows };
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') {
        throw new FerryError('FERRY_CONFIG_INVALID', `table ${table} does not exist`, { where: `${this.where} tables`, fix: 'Correct `tables`, or create the table.' });
      }
      throw toFerryError(error, this.where);
    }
  }

  private async readChunk(table: string): Promise<SourceRecord[]> {
    const plan = this.plans.get(table);
    if (!plan) throw new Error(`snapshot: no plan for ${table}`);
    // Qualified by the alias `t`: the key columns are selected twice (as text, then in `t.*`).
    const keyExprs = plan.keyless ? ['t.ctid'] : plan.keyColumns.map((c) => `t.${quoteIdent(c)}`);
    const keyText = keyExprs.map((e) => `${e}::text`);
    const lastKey = this.progress.lastKey;
    const params = lastKey ?? [];
    const placeholders = params.map((_, i) => (plan.keyless ? `$${i + 1}::tid` : `$${i + 1}`));
    const conditions = [
      ...(lastKey ? [`(${keyExprs.join(', ')}) > (${placeholders.join(', ')})`] : []),
      // The operator's condition, inside a READ ONLY transaction: it can filter, not write.
      ...(this.progress.filter ? [`(${this.progress.filter})`] : []),
    ];
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const sql = `SELECT ${keyText.join(', ')}, t.* FROM ${quoteTable(table)} AS t ${where} ORDER BY ${keyExprs.join(', ')} LIMIT ${this.chunkSize}`;
    let result: pg.QueryArrayResult<(string | null)[]>;
    try {
      result = await this.client.query<(string | null)[]>({ text: sql, values: params, rowMode: 'array' });
    } catch (error) {
      throw toFerryError(error, `${this.where} snapshot of ${table}`);
    }
    const keyCount = keyText.length;
    const fields = result.fields.slice(keyCount);
    const records = result.rows.map((row) => {
      const key = row.slice(0, keyCount).map((v) => v ?? '');
      return this.toRecord(table, key, fields, row.slice(keyCount), plan.keyless);
    });
    const last = result.rows.at(-1);
    if (last) this.progress.lastKey = last.slice(0, keyCount).map((v) => v ?? '');
    return records;
  }

  private toRecord(table: string, key: string[], fields: pg.FieldDef[], values: (string | null)[], keyless: boolean): SourceRecord {
    const { id, startedAt } = this.progress;
    // A keyless row is named by its ctid: stable within this snapshot (two
    // identical rows stay two events); a resumed keyless table may repeat rows.
    const identity = (keyless ? 'ctid:' : '') + JSON.stringify(key);
    const base = {
      origin: { kind: 'table' as const, name: table },
      op: 'r' as const,
      changeId: `snapshot:${id}:${table}:${identity}`,
      time: startedAt,
      position: id,
      location: `${table} snapshot @ ${id} ${keyless ? 'ctid' : 'key'} (${key.join(', ')})`,
    };
    try {
      const data: Record<string, unknown> = {};
      fields.forEach((f, i) => {
        const v = values[i];
        data[f.name] = v === null || v === undefined ? null : decodeValue(f.dataTypeID, v);
      });
      return { ...base, data };
    } catch (error) {
      return { ...base, data: { _raw: values }, invalid: `cannot decode row: ${(error as Error).message}` };
    }
  }
}
