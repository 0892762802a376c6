import type { ColumnSchema } from '@vlasky/zongji';
import { FerryError } from '../../agent/errors/index.js';
import type { Json } from '../../agent/plugin/source.js';
import { ddlEffects, type HistoryColumn } from './ddl.js';
import { noColumnNamesFix } from './errors.js';
import { formatPosition, type BinlogPosition } from './position.js';

/**
 * A table's columns from some binlog position on, or why they are not known
 * (`absent`: the table was dropped or renamed away, so a CREATE TABLE IF NOT
 * EXISTS creates it).
 */
type Version = { since: BinlogPosition; columns: HistoryColumn[] } | { since: BinlogPosition; unknown: string; absent?: true };
type Unknown = { unknown: string; absent?: true };

/** The history as stored in a checkpoint: each captured table's columns at the checkpoint's position. */
export type StoredColumns = Record<string, Array<[string, string, string | null]> | Unknown>;

/**
 * The columns of each captured table, versioned by binlog position, for
 * servers that write no column names into the binlog
 * (`binlog_row_metadata` not FULL, MariaDB < 10.5, MySQL < 8.0.1).
 *
 * It starts from information_schema when streaming starts from "now" (a
 * fresh snapshot or `snapshot: never`), or from the history stored in the
 * checkpoint, never from information_schema when resuming an old position.
 * It is moved forward by the DDL in the binlog, in binlog order: `applyQuery`
 * is called as events arrive (before they are queued), because zongji asks
 * for a table's columns (`columnsFor`) as soon as a TABLE_MAP arrives.
 * A DDL that cannot be understood makes the table's columns unknown, and
 * decoding a row of it without binlog column names then fails loudly.
 */
export class ColumnHistory {
  private readonly versions = new Map<string, Version[]>();

  constructor(initial: Record<string, HistoryColumn[] | Unknown>, at: BinlogPosition) {
    for (const [table, v] of Object.entries(initial)) {
      this.versions.set(table, [Array.isArray(v) ? { since: at, columns: v } : { since: at, ...v }]);
    }
  }

  static fromStored(stored: StoredColumns, at: BinlogPosition): ColumnHistory {
    const initial: Record<string, HistoryColumn[] | Unknown> = {};
    for (const [table, v] of Object.entries(stored)) {
      initial[table] = Array.isArray(v) ? v.map(([name, type, charset]) => ({ name, type, charset })) : v;
    }
    return new ColumnHistory(initial, at);
  }

  /** Applies a QUERY event's statement, which ends at `end`; returns the captured tables it changed. */
  applyQuery(sql: string, database: string, end: BinlogPosition): string[] {
    const changed: string[] = [];
    const at = formatPosition(end);
    for (const effect of ddlEffects(sql, database, new Set(this.versions.keys()))) {
      const current = this.current(effect.table);
      let next: Version;
      if (effect.kind === 'unknown') next = { since: end, unknown: `${effect.reason} at ${at}` };
      else if (effect.kind === 'gone') next = { since: end, unknown: `${effect.reason} at ${at}`, absent: true };
      else if (effect.kind === 'create') {
        // IF NOT EXISTS is logged even when the table exists, and then did nothing. Known
        // columns mean it exists; unknown ones (not dropped) leave it open, so they stay unknown.
        if (effect.ifNotExists && !('absent' in current)) continue;
        next = Array.isArray(effect.columns) ? { since: end, columns: effect.columns } : { since: end, unknown: `${effect.columns.unknown} at ${at}` };
      } else if ('unknown' in current) next = { since: end, unknown: current.unknown };
      else {
        try {
          next = { since: end, columns: effect.apply(current.columns) };
        } catch (err) {
          next = { since: end, unknown: `${(err as Error).message} in "${sql.slice(0, 80)}" at ${at}` };
        }
      }
      this.versions.get(effect.table)?.push(next);
      changed.push(effect.table);
    }
    return changed;
  }

  /**
   * The columns of `table` now (in arrival order), as zongji wants them for
   * decoding a TABLE_MAP that carries no names. Throws when unknown or when
   * the count differs from what the binlog says (`columnCount`); `pipeline`
   * names the stored position the fix deletes.
   */
  columnsFor(table: string, columnCount: number, at: string, pipeline?: string): ColumnSchema[] {
    const v = this.current(table);
    const fix = noColumnNamesFix(pipeline);
    if ('unknown' in v) {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `the columns of ${table} at ${at} are unknown (${v.unknown}), and the binlog does not carry them`, { where: `${table} @ ${at}`, fix });
    }
    if (v.columns.length !== columnCount) {
      throw new FerryError(
        'FERRY_PREFLIGHT_FAILED',
        `the binlog has ${columnCount} columns for ${table} at ${at}, the schema history ${v.columns.length} (${v.columns.map((c) => c.name).join(', ')}): a DDL was missed`,
        { where: `${table} @ ${at}`, fix },
      );
    }
    return v.columns.map((c) => ({ COLUMN_NAME: c.name, COLUMN_TYPE: c.type, CHARACTER_SET_NAME: c.charset, COLLATION_NAME: null, COLUMN_COMMENT: '' }) as ColumnSchema);
  }

  /** The history as of `at` (a committed position), for the checkpoint; forgets versions no checkpoint can need again. */
  storedAt(at: BinlogPosition): StoredColumns & Json {
    const out: Record<string, Json> = {};
    for (const [table, versions] of this.versions) {
      const upTo = versions.filter((v) => !isAfter(v.since, at));
      const v = upTo[upTo.length - 1] ?? (versions[0] as Version);
      out[table] = 'unknown' in v ? { unknown: v.unknown, ...(v.absent ? { absent: true } : {}) } : v.columns.map((c) => [c.name, c.type, c.charset]);
      versions.splice(0, Math.max(0, upTo.length - 1));
    }
    return out as StoredColumns & Json;
  }

  private current(table: string): Version {
    const versions = this.versions.get(table) as Version[];
    return versions[versions.length - 1] as Version;
  }
}

function isAfter(a: BinlogPosition, b: BinlogPosition): boolean {
  return a.file > b.file || (a.file === b.file && a.pos > b.pos);
}
