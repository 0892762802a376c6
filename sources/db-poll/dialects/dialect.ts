/**
 * What the db-poll source needs from a database, and nothing more: every
 * query is a SELECT run in its own READ ONLY transaction under a statement
 * timeout, so the legacy database is never written to and never held.
 */

/**
 * How a column's values are ordered and compared. Values arrive as the driver
 * gives them with exact settings: numbers as JS numbers (small integers,
 * floats) or exact decimal strings (bigint, numeric/decimal); times as the
 * database's own text in UTC (`2024-01-31 10:00:00.123456+00`).
 */
export type ColumnKind = 'number' | 'text' | 'time' | 'other';

export interface Column {
  name: string;
  kind: ColumnKind;
  /** A time column whose text is UTC without an offset (MySQL TIMESTAMP): `Z` is added in event data. */
  utc: boolean;
}

export type Row = Record<string, unknown>;

/** One keyset page: rows with `orderBy` tuple > `after` (and first column >= `from`), ordered by it. */
export interface PageQuery {
  view: string;
  orderBy: Column[];
  after?: readonly unknown[];
  /** Inclusive lower bound on the first order column, already in the database's parameter form. */
  from?: string;
  /** An extra SQL condition (`ferry snapshot --where`), already checked to be one expression without `;`. */
  where?: string;
  limit: number;
}

/** A write privilege the role holds on a polled view (or on everything). */
export interface WriteGrant {
  /** The view (or `*` for a role-wide privilege such as SUPERUSER). */
  view: string;
  /** The privileges, e.g. `INSERT`, `UPDATE`, `ALL PRIVILEGES`, `SUPERUSER`. */
  privileges: string[];
  /** How the grant is held, for the message: `GRANT ... ON ... TO ...` or `role attribute`. */
  grantedBy: string;
  /** The statement a DBA runs to remove it. */
  fix: string;
}

/** Why a query failed, so the source can react: retry the poll, reconnect, or stop. */
export type FailureKind = 'timeout' | 'connection' | 'missing-object' | 'other';

export interface Dialect {
  readonly kind: 'postgres' | 'mysql';
  /** The columns of a view, from a query that returns no rows. */
  describe(view: string, timeoutMs: number): Promise<Column[]>;
  /** One keyset page. */
  page(query: PageQuery, timeoutMs: number): Promise<Row[]>;
  /**
   * The planner's estimate of the rows `SELECT * FROM view [WHERE where]`
   * returns (EXPLAIN, nothing is read); undefined when it gives none. For
   * progress only: it may be far off.
   */
  estimateRows(view: string, where: string | undefined, timeoutMs: number): Promise<number | undefined>;
  /** Write privileges the connected role holds on these views. Read-only; never changes anything. */
  writeGrants(views: readonly string[], timeoutMs: number): Promise<WriteGrant[]>;
  /** An instant (epoch ms) as a parameter comparable with a time column. */
  timeParam(epochMs: number): string;
  classify(error: unknown): FailureKind;
  close(): Promise<void>;
}

/** `schema.view` ⇒ `["schema","view"]`; a name without a dot is one part. */
export function splitName(name: string): string[] {
  return name.split('.');
}
