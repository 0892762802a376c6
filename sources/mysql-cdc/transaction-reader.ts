import type { AnyBinlogEvent, ColumnSchema, DeleteRowsEvent, MariadbGtidEvent, UpdateRowsEvent, WriteRowsEvent, XaPrepareEvent } from '@vlasky/zongji';
import type { Logger } from 'pino';
import { FerryError } from '../../agent/errors/index.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import { addGtid } from './gtid-set.js';
import { formatPosition, type BinlogPosition } from './position.js';
import type { SchemaHistory } from './schema-history.js';
import { statementDml, statementHead, type StatementDml } from './statement-dml.js';

/** A row change the binlog holds as SQL, not rows, that could touch a captured table: where reading must stop. */
export interface LoggedStatement extends StatementDml {
  /** Where the statement's event starts: the position to name. */
  at: BinlogPosition;
  /** Where the event after it starts. */
  after: BinlogPosition;
  /** Its default database ('' when none). */
  database: string;
  /** Its beginning, literals masked (see statementHead). */
  head: string;
}

/** Rows held at most for undecided XA transactions when the source names no limit: `maxBufferedEvents`' default. */
const MAX_HELD_ROWS = 1000;

/** An XA transaction read up to its XA PREPARE, its rows held until its outcome is read. */
interface HeldXa {
  /** `X'gtrid',X'bqual',formatId`, as the server writes it in XA COMMIT / XA ROLLBACK. */
  xid: string;
  /** The boundary before its first event: the checkpoint while it is undecided. */
  before: BinlogPosition;
  rows: SourceRecord[];
}

/**
 * Turns binlog events into records, one transaction at a time, and knows
 * the last transaction boundary (`committed`): the only position ever put
 * in a checkpoint.
 *
 * A two-phase XA transaction is written to the binlog at XA PREPARE and
 * decided later by an XA COMMIT or XA ROLLBACK of its own, other
 * transactions possibly in between. Its rows are held in memory until then:
 * emitted at the commit, dropped at the rollback.
 */
export class TransactionReader {
  pending: SourceRecord[] = [];
  /** The last transaction boundary read. */
  private boundaryAt: BinlogPosition;
  /** How many of `pending` belong to whole transactions (up to `boundaryAt`). */
  private complete = 0;
  private file: string;
  /** Inside BEGIN ... COMMIT / XID: a query event there (SAVEPOINT) is not a boundary. */
  private inTransaction = false;
  /** The GTID of the transaction being read (its events' ferrytxid). */
  private gtid: string | undefined;
  /** The GTID position including it (see gtid-set.ts): stored with `committed`. */
  private gtidSet: string | undefined;
  private readonly tableList: readonly string[];
  /**
   * Set at a row change logged as a statement that could touch a captured
   * table: nothing after it is handled, `committed` stays before its
   * transaction, and the source stops there (FERRY_SOURCE_STATEMENT_BINLOG).
   */
  stoppedAt: LoggedStatement | undefined;
  /** The XA transaction being read, between its start and its XA PREPARE. */
  private xa: HeldXa | undefined;
  /** Prepared XA transactions holding rows, not yet decided, oldest first. */
  private readonly prepared = new Map<string, HeldXa>();
  private heldRows = 0;

  constructor(
    from: BinlogPosition,
    private readonly headerLength: number,
    private readonly schemas: SchemaHistory,
    private readonly tables: ReadonlySet<string>,
    private readonly logger: Logger | undefined,
    /** Most rows held for undecided XA transactions; beyond it reading stops (`source.maxBufferedEvents`). */
    private readonly maxHeldRows = MAX_HELD_ROWS,
  ) {
    this.boundaryAt = { ...from };
    this.file = from.file;
    this.gtidSet = from.gtid;
    this.tableList = [...tables];
  }

  /**
   * The position a checkpoint may name: the last transaction boundary, but
   * never past the start of an undecided XA transaction whose rows are only
   * held in memory, so that a restart reads them again. Transactions read
   * after it are then re-read too (the same change ids: duplicates, never a
   * loss).
   */
  get committed(): BinlogPosition {
    for (const xa of this.prepared.values()) return xa.before;
    return this.boundaryAt;
  }

  /** Whether a transaction has begun and not yet ended. */
  get inTransactionNow(): boolean {
    return this.inTransaction;
  }

  /** Rows read of the transaction still open: not yet covered by `committed`. */
  get openRows(): number {
    return this.pending.length - this.complete;
  }

  /**
   * Every record read, the open transaction's too: what is handed over when
   * reading stops inside a transaction. Its checkpoint is still `committed`,
   * the boundary before that transaction (as for a transaction handed over
   * in parts), so a restart reads those records again rather than skip them.
   */
  takeAll(): SourceRecord[] {
    const out = this.pending;
    this.pending = [];
    this.complete = 0;
    return out;
  }

  /**
   * The records a batch with checkpoint `committed` may carry: those of
   * whole transactions, so that the checkpoint covers every record of its
   * batch. Only a transaction larger than `limit` is handed over in parts,
   * its checkpoint still the boundary before it (a restart re-reads it
   * whole: duplicates, never a loss), so memory stays bounded.
   */
  take(limit: number): SourceRecord[] {
    if (this.complete === 0 && this.pending.length < limit) return [];
    const n = this.complete > 0 ? this.complete : this.pending.length;
    const out = n === this.pending.length ? this.pending : this.pending.slice(0, n);
    this.pending = n === this.pending.length ? [] : this.pending.slice(n);
    this.complete = 0;
    return out;
  }

  handle(ev: AnyBinlogEvent, columns?: ColumnSchema[]): void {
    if (this.stoppedAt) return;
    switch (ev.getEventName()) {
      case 'rotate': {
        const r = ev as Extract<AnyBinlogEvent, { binlogName: string; position: number }>;
        this.file = r.binlogName;
        if (!this.inTransaction) this.boundaryAt = { file: r.binlogName, pos: Number(r.position), ...this.gtidPart() };
        return;
      }
      case 'mariadbgtid': {
        const g = ev as MariadbGtidEvent;
        this.startTransaction(g.gtid);
        this.inTransaction = !g.standalone;
        // MariaDB writes no XA START query: the GTID event names the XA transaction its group prepares.
        if (g.preparedXa && g.xidGtrid && g.xidBqual) this.startXa(xidOf(g.xidGtrid.toString('hex'), g.xidBqual.toString('hex'), g.xidFormatId ?? 0));
        return;
      }
      case 'gtid':
        // Without gtid_mode=ON the server writes anonymous GTID events: no id, nothing to add.
        if (ev.gtid) this.startTransaction(ev.gtid);
        else this.gtid = undefined;
        return;
      case 'query': {
        const query = ev as Extract<AnyBinlogEvent, { query: string; schema: string }>;
        // Before the boundary test below: outside BEGIN ... COMMIT a query
        // event counts as a transaction's end, which must not move past it.
        if (this.statement(query.query, query.schema, ev)) return;
        const q = query.query.trim().toUpperCase();
        if (q === 'BEGIN') this.inTransaction = true;
        else if (q.startsWith('XA START')) {
          // MySQL: the XA transaction starts with a query.
          this.inTransaction = true;
          this.startXa(xidIn(query.query));
        } else if (q.startsWith('XA END')) this.endXa();
        else if (q === 'COMMIT' || q === 'ROLLBACK' || q.startsWith('XA COMMIT') || q.startsWith('XA ROLLBACK') || !this.inTransaction) {
          if (q.startsWith('XA COMMIT') || q.startsWith('XA ROLLBACK')) this.decide(xidIn(query.query), q.startsWith('XA COMMIT'));
          if (q.startsWith('TRUNCATE')) this.truncate(query);
          this.boundary(ev);
        }
        return;
      }
      case 'xid':
        this.boundary(ev);
        return;
      case 'xaprepare': {
        // Ends the XA transaction's group. MySQL logs XA COMMIT ... ONE PHASE
        // so too (MariaDB as an ordinary transaction): committed right here.
        const p = ev as XaPrepareEvent;
        this.endXa();
        if (p.onePhase) this.decide(xidOf(p.xidGtrid.toString('hex'), p.xidBqual.toString('hex'), p.xidFormatId), true);
        this.boundary(ev);
        return;
      }
      case 'tablemap': {
        const tm = ev as Extract<AnyBinlogEvent, { getEventName(): 'tablemap' }>;
        const changed = this.schemas.observe(tm, columns, this.eventPosition(ev));
        if (changed) this.logger?.info({ table: changed.table, columns: changed.columns.map((c) => c.name), since: changed.since }, 'mysql-cdc: table columns changed');
        return;
      }
      case 'writerows':
      case 'updaterows':
      case 'deleterows':
        this.rows(ev as WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent);
        return;
      default:
        return;
    }
  }

  /**
   * Checks one statement the binlog holds as SQL (a QUERY event, or the
   * LOAD DATA of an EXECUTE_LOAD_QUERY event) run with default database
   * `database`. A row change that could touch a captured table stops
   * reading at `ev` (see `stoppedAt`); returns whether it did.
   */
  statement(sql: string, database: string, ev: AnyBinlogEvent): boolean {
    const dml = statementDml(sql, database, this.tableList);
    if (!dml) return false;
    this.stoppedAt = { ...dml, at: this.startOf(ev), after: { file: this.file, pos: ev.nextPosition }, database, head: statementHead(sql) };
    return true;
  }

  private boundary(ev: AnyBinlogEvent): void {
    this.inTransaction = false;
    this.complete = this.pending.length;
    if (ev.nextPosition > 0) this.boundaryAt = { file: this.file, pos: ev.nextPosition, ...this.gtidPart() };
  }

  /** A GTID event opens each transaction; `committed` only moves at its end, so the set may include it already. */
  private startTransaction(gtid: string): void {
    // A new group: the XA transaction before it was prepared even where its XA END was not seen.
    this.endXa();
    this.gtid = gtid;
    this.gtidSet = addGtid(this.gtidSet, gtid);
  }

  private startXa(xid: string): void {
    this.xa = { xid, before: this.boundaryAt, rows: [] };
  }

  /** XA END: the transaction's rows are all read, and held until it is decided (unless it changed no captured table). */
  private endXa(): void {
    const xa = this.xa;
    if (!xa) return;
    this.xa = undefined;
    this.inTransaction = false;
    if (xa.rows.length > 0) this.prepared.set(xa.xid, xa);
  }

  /**
   * XA COMMIT (or a one-phase XA_PREPARE): the held rows become part of
   * the committing transaction, read like any other, with its GTID.
   * XA ROLLBACK: they are dropped. An xid not held is one that changed no
   * captured table, or was prepared before reading started.
   */
  private decide(xid: string, commit: boolean): void {
    const xa = this.prepared.get(xid);
    if (!xa) return;
    this.prepared.delete(xid);
    this.heldRows -= xa.rows.length;
    if (!commit) return;
    for (const r of xa.rows) {
      if (this.gtid) r.txid = this.gtid;
      else delete r.txid;
      this.pending.push(r);
    }
  }

  private gtidPart(): { gtid?: string } {
    return this.gtidSet ? { gtid: this.gtidSet } : {};
  }

  /** The transaction's GTID (the GTID event comes before its rows), carried on each event as `ferrytxid`. */
  private txidPart(): { txid?: string } {
    return this.gtid ? { txid: this.gtid } : {};
  }

  /** Where an event starts: `file:pos`, the same on every re-read. */
  private eventPosition(ev: AnyBinlogEvent): string {
    return `${this.file}:${ev.nextPosition - ev.size - this.headerLength}`;
  }

  /** Where `ev` starts in the binlog, before it is handled (a rotate names the file it ends, not the next one). */
  startOf(ev: AnyBinlogEvent): BinlogPosition {
    return { file: this.file, pos: ev.nextPosition - ev.size - this.headerLength };
  }

  /** `TRUNCATE TABLE` writes no row events: one `t` record stands for all the rows it removed. */
  private truncate(ev: Extract<AnyBinlogEvent, { query: string; schema: string }>): void {
    const m = /^TRUNCATE\s+(?:TABLE\s+)?(`[^`]+`|[\w$]+)(?:\.(`[^`]+`|[\w$]+))?/i.exec(ev.query.trim());
    if (!m) return;
    const unquote = (id: string): string => id.replace(/^`|`$/g, '').replace(/``/g, '`');
    const table = m[2] ? `${unquote(m[1] as string)}.${unquote(m[2])}` : `${ev.schema}.${unquote(m[1] as string)}`;
    if (!this.tables.has(table)) return;
    const position = this.eventPosition(ev);
    this.pending.push({
      origin: { kind: 'table', name: table },
      op: 't',
      data: {},
      changeId: `${position}:0`,
      time: new Date(ev.timestamp).toISOString(),
      location: `${table} @ ${position}`,
      position,
      ...this.txidPart(),
    });
  }

  private rows(ev: WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent): void {
    const version = this.schemas.forTableId(ev.tableId);
    if (!version) {
      throw new FerryError('FERRY_SOURCE_UNAVAILABLE', `row event for table id ${ev.tableId} without a TABLE_MAP before it`, { where: this.eventPosition(ev) });
    }
    const position = this.eventPosition(ev);
    const into = this.xa ? this.xa.rows : this.pending;
    if (this.xa) {
      this.heldRows += ev.rows.length;
      if (this.heldRows > this.maxHeldRows) throw xaTooLarge([...this.prepared.values(), this.xa], this.maxHeldRows, position);
    }
    const table = version.table;
    const time = new Date(ev.timestamp).toISOString();
    const location = `${table} @ ${position}`;
    // Once per event, not per row: getEventName() builds a new string each call.
    const op = ({ writerows: 'c', updaterows: 'u', deleterows: 'd' } as const)[ev.getEventName()];
    const decoder = version.decoder;
    const rows = ev.rows;
    const txid = this.gtid;
    for (let i = 0; i < rows.length; i++) {
      const record: SourceRecord = { origin: { kind: 'table', name: table }, op, data: {}, changeId: `${position}:${i}`, time, location, position };
      if (txid !== undefined) record.txid = txid;
      try {
        if (op === 'u') {
          const u = rows[i] as { before: Record<string, unknown>; after: Record<string, unknown> };
          record.data = decoder.decode(u.after);
          record.before = decoder.decode(u.before);
        } else {
          record.data = decoder.decode(rows[i] as Record<string, unknown>);
          if (op === 'd') record.before = record.data;
        }
      } catch (err) {
        record.op = 'c';
        record.data = {};
        delete record.before;
        record.invalid = `cannot decode row ${i}: ${(err as Error).message}`;
      }
      into.push(record);
    }
  }
}

/** An XA transaction's id as the server writes it in XA COMMIT / XA ROLLBACK: `X'7831',X'',1` (hex lowercase). */
function xidOf(gtridHex: string, bqualHex: string, formatId: number): string {
  return `X'${gtridHex.toLowerCase()}',X'${bqualHex.toLowerCase()}',${formatId}`;
}

/** The xid of an `XA START|END|COMMIT|ROLLBACK ...` statement from the binlog. */
function xidIn(sql: string): string {
  const m = /X'([0-9a-f]*)'\s*,\s*X'([0-9a-f]*)'\s*,\s*(\d+)/i.exec(sql);
  if (m) return xidOf(m[1] as string, m[2] as string, Number(m[3]));
  // Not the form servers log: compare the statement's text after its verb.
  return sql.trim().replace(/^XA\s+\w+\s*/i, '').replace(/\s+ONE\s+PHASE\s*$/i, '');
}

/**
 * Undecided XA transactions hold more rows than may be kept in memory.
 * They cannot be handed over before their XA COMMIT, nor the position
 * moved past them, so reading stops.
 */
function xaTooLarge(held: HeldXa[], limit: number, at: string): FerryError {
  const list = held.map((x) => `${x.xid} (${x.rows.length} rows, from ${formatPosition(x.before)})`).join(', ');
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `prepared XA transactions not yet committed or rolled back hold more than ${limit} row changes of the captured tables at binlog ${at}: ${list}. ` +
      'Their rows are emitted only at their XA COMMIT and are kept in memory until then; more than source.maxBufferedEvents of them are not kept, so the source stops (the position stays before the oldest of them)',
    {
      where: 'source.maxBufferedEvents',
      fix:
        `Raise source.maxBufferedEvents above the rows the XA transactions prepared at the same time hold, or decide them on the server (XA RECOVER FORMAT='SQL' lists them by the ids above; XA COMMIT or XA ROLLBACK each), ` +
        'then restart the pipeline: it reads them again from before the oldest. See docs/sources/mysql-cdc.md, "XA transactions".',
    },
  );
}

