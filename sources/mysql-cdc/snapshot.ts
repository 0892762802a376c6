import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConfigError, FerryError } from '../../agent/errors/index.js';
import type { Json } from '../../agent/plugin/source.js';
import { quoteId, splitTable } from './connection.js';
import type { BinlogPosition } from './position.js';
import type { HistoryColumn } from './ddl.js';

/** A captured table as the snapshot reads it: today's columns and its primary key, in key order. */
export interface TableInfo {
  table: string;
  columns: HistoryColumn[];
  key: string[];
  /** The server's estimate of the row count (information_schema.TABLES), for progress. */
  rowsEstimate: number;
}

/**
 * Opens a consistent read on `conn` and returns the binlog position it is
 * consistent with: every change before it is in what the transaction sees,
 * every change after it is in the binlog from there.
 *
 * MariaDB reports that position itself (`binlog_snapshot_file` /
 * `binlog_snapshot_position`, taken atomically with `START TRANSACTION WITH
 * CONSISTENT SNAPSHOT`), so no `FLUSH TABLES WITH READ LOCK` (which a
 * replication user usually may not run, and which stalls writers) is needed.
 * MySQL has no such status: there `SHOW MASTER STATUS` is read just
 * before the transaction starts, so a write landing in between is read
 * twice (by the snapshot and again by the stream), which replays to the
 * same end state. Read after it, that write would be in neither.
 */
export async function beginConsistentSnapshot(conn: Connection): Promise<BinlogPosition> {
  await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await conn.query("SET SESSION time_zone = '+00:00'");
  const before = await currentBinlogEnd(conn);
  await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
  const [status] = await conn.query<RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const v = new Map(status.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
  const file = v.get('binlog_snapshot_file');
  const pos = Number(v.get('binlog_snapshot_position'));
  if (file && pos > 0) return withGtid(conn, { file, pos });
  return before;
}

/** The end of the binlog now (`SHOW MASTER STATUS`): where a source with `snapshot: never` starts. */
export async function currentBinlogEnd(conn: Connection): Promise<BinlogPosition> {
  // MySQL 8.4 renamed it SHOW BINARY LOG STATUS; MariaDB and older MySQL know only the old name.
  const [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS').catch(() => conn.query<RowDataPacket[]>('SHOW BINARY LOG STATUS'));
  const row = rows[0];
  if (!row) {
    throw new FerryError('FERRY_PREFLIGHT_FAILED', 'the server has no binlog (SHOW MASTER STATUS is empty)', {
      where: 'source.connection',
      fix: 'Turn the binlog on: log_bin = mysql-bin, binlog_format = ROW in my.cnf, then restart the server.',
    });
  }
  const at = { file: String(row.File), pos: Number(row.Position) };
  // MySQL reports its GTID set in the same row, so it matches the position exactly.
  const executed = typeof row.Executed_Gtid_Set === 'string' ? row.Executed_Gtid_Set.replace(/\s+/g, '') : '';
  return executed ? { ...at, gtid: executed } : withGtid(conn, at);
}

/**
 * `at` with MariaDB's GTID position there (`BINLOG_GTID_POS`, exact for any
 * transaction boundary); unchanged on a server without that function (MySQL)
 * or without GTIDs.
 */
export async function withGtid(conn: Connection, at: BinlogPosition): Promise<BinlogPosition> {
  try {
    const [[row]] = await conn.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [at.file, at.pos]);
    const gtid = typeof row?.gtid === 'string' ? row.gtid : '';
    return gtid ? { ...at, gtid } : at;
  } catch {
    return at;
  }
}

/** Columns and primary keys of the captured tables; a missing table is a config error. */
export async function loadTableInfo(conn: Connection, tables: readonly string[]): Promise<TableInfo[]> {
  const out: TableInfo[] = [];
  for (const table of tables) {
    const { database, table: name } = splitTable(table);
    const [cols] = await conn.query<RowDataPacket[]>(
      'SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [database, name],
    );
    if (cols.length === 0) {
      throw new ConfigError([{ file: 'ferry.yaml', field: 'source.tables', message: `table ${table} does not exist or the user may not read it` }]);
    }
    const [keys] = await conn.query<RowDataPacket[]>(
      "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
      [database, name],
    );
    const [[stats]] = await conn.query<RowDataPacket[]>('SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, name]);
    out.push({
      table,
      rowsEstimate: Number(stats?.TABLE_ROWS ?? 0),
      columns: cols.map((c) => ({ name: String(c.COLUMN_NAME), type: String(c.COLUMN_TYPE), charset: c.CHARACTER_SET_NAME === null ? null : String(c.CHARACTER_SET_NAME) })),
      key: keys.map((k) => String(k.COLUMN_NAME)),
    });
  }
  return out;
}

/**
 * The next `limit` rows of `info.table` after key `after` (null: from the
 * start), in key order, inside the consistent read open on `conn`, limited
 * by `filter` (an SQL condition, see `ferry snapshot --where`) when given.
 * Keyset paging: each chunk is an index range scan however far in the
 * table, and the last key of a chunk is all a restart needs to continue.
 */
export async function readChunk(conn: Connection, info: TableInfo, after: Json[] | null, limit: number, filter?: string): Promise<Record<string, unknown>[]> {
  if (info.key.length === 0) {
    throw new ConfigError([
      { file: 'ferry.yaml', field: 'source.snapshot', message: `table ${info.table} has no primary key, so it cannot be snapshotted in resumable chunks; add one or set snapshot: never` },
    ]);
  }
  const keyList = info.key.map(quoteId).join(', ');
  const conditions = [...(after === null ? [] : [`(${keyList}) > (${info.key.map(() => '?').join(', ')})`]), ...(filter ? [`(${filter})`] : [])];
  const where = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
  const sql = `SELECT * FROM ${qualified(info.table)} ${where} ORDER BY ${keyList} LIMIT ${Math.floor(limit)}`;
  const [rows] = await conn.query<RowDataPacket[]>(sql, after ?? []);
  return rows as Record<string, unknown>[];
}

/** How many rows of `info.table` match `filter`, counted inside the consistent read: the progress bar's total when a filter makes the estimate useless. */
export async function countRows(conn: Connection, info: TableInfo, filter: string): Promise<number> {
  const [[row]] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${qualified(info.table)} WHERE (${filter})`);
  return Number(row?.n ?? 0);
}

function qualified(table: string): string {
  const { database, table: name } = splitTable(table);
  return `${quoteId(database)}.${quoteId(name)}`;
}
