import mysql from 'mysql2/promise';
import type { Column, ColumnKind, Dialect, FailureKind, PageQuery, Row, WriteGrant } from './dialect.js';
import { pageSql, quoteName, selectAllSql, type SqlSpelling } from './sql.js';

// mysql2 column type codes.
const NUMBER_TYPES = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246]);
const TEXT_TYPES = new Set([15, 247, 248, 252, 253, 254]);
const TIME_TYPES = new Set([7, 10, 12, 14]);
const TIMESTAMP = 7;
const EXACT_NUMBER = /^-?\d+(\.\d+)?$/;

const spelling: SqlSpelling = {
  quote: (id) => `\`${id.replace(/`/g, '``')}\``,
  // Byte order for text (BINARY also ignores PAD SPACE collations): the diff merge compares the same way.
  orderExpression: (c) => (c.kind === 'text' ? `BINARY ${spelling.quote(c.name)}` : spelling.quote(c.name)),
  param: (value, column, params) => {
    // A quoted big integer would be compared as a double; an exact numeric literal stays exact.
    if (column?.kind === 'number' && EXACT_NUMBER.test(String(value))) return String(value);
    params.push(value);
    return '?';
  },
};

interface GrantLine {
  privileges: string[];
  database: string;
  table: string;
  grantee: string;
  text: string;
}

/** MySQL and MariaDB through `mysql2`: one connection, one short READ ONLY transaction per query. */
export class MysqlDialect implements Dialect {
  readonly kind = 'mysql' as const;
  private lastError: Error | undefined;
  /** Queries in flight: a polite QUIT would wait for them (up to the statement timeout), so close destroys instead. */
  private busy = 0;

  private constructor(
    private readonly conn: mysql.Connection,
    private readonly mariadb: boolean,
    private readonly database: string,
  ) {
    conn.on('error', (e: Error) => {
      this.lastError = e;
    });
  }

  static async connect(url: string): Promise<MysqlDialect> {
    const u = new URL(url);
    const conn = await mysql.createConnection({
      host: u.hostname,
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password),
      database: decodeURIComponent(u.pathname.replace(/^\//, '')) || undefined,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      decimalNumbers: false,
      connectTimeout: 10_000,
    });
    try {
      // TIMESTAMP columns come back in the session time zone: make it UTC so events carry UTC.
      await conn.query("SET time_zone = '+00:00'");
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v, DATABASE() AS d');
      const first: mysql.RowDataPacket | undefined = rows[0];
      return new MysqlDialect(conn, /mariadb/i.test(String(first?.v)), String(first?.d ?? ''));
    } catch (e) {
      conn.destroy();
      throw e;
    }
  }

  /** Adds the statement timeout: MariaDB's max_statement_time (seconds), MySQL's MAX_EXECUTION_TIME hint (ms). */
  private timed(select: string, timeoutMs: number): string {
    if (this.mariadb) return `SET STATEMENT max_statement_time=${(timeoutMs / 1000).toFixed(3)} FOR ${select}`;
    return select.replace(/^SELECT /, `SELECT /*+ MAX_EXECUTION_TIME(${Math.trunc(timeoutMs)}) */ `);
  }

  private async readOnly(select: string, params: unknown[], timeoutMs: number): Promise<{ rows: Row[]; fields: mysql.FieldPacket[] }> {
    if (this.lastError) throw this.lastError;
    this.busy += 1;
    try {
      await this.conn.query('START TRANSACTION READ ONLY');
      const [rows, fields] = await this.conn.query<mysql.RowDataPacket[]>(this.timed(select, timeoutMs), params);
      await this.conn.query('COMMIT');
      return { rows: rows as Row[], fields };
    } catch (e) {
      await this.conn.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      this.busy -= 1;
    }
  }

  async describe(view: string, timeoutMs: number): Promise<Column[]> {
    const { fields } = await this.readOnly(`SELECT * FROM ${quoteName(view, spelling)} WHERE 1 = 0`, [], timeoutMs);
    return fields.map((f) => {
      const type = (f as { columnType?: number; type?: number }).columnType ?? f.type ?? -1;
      return { name: f.name, kind: kindOf(type), utc: type === TIMESTAMP };
    });
  }

  async page(q: PageQuery, timeoutMs: number): Promise<Row[]> {
    const { sql, params } = pageSql(q, spelling);
    return (await this.readOnly(sql, params, timeoutMs)).rows;
  }

  async estimateRows(view: string, where: string | undefined, timeoutMs: number): Promise<number | undefined> {
    const { rows } = await this.readOnly(`EXPLAIN ${selectAllSql(view, where, spelling)}`, [], timeoutMs);
    // A view over several tables explains as several rows whose product is no row count: no estimate then.
    const rowsColumn = rows.length === 1 ? Number(rows[0]!.rows) : NaN;
    return Number.isFinite(rowsColumn) ? rowsColumn : undefined;
  }

  async writeGrants(views: readonly string[], timeoutMs: number): Promise<WriteGrant[]> {
    const { rows } = await this.readOnly('SHOW GRANTS', [], timeoutMs).catch(async () => {
      // SHOW GRANTS is not a SELECT, and some servers refuse SET STATEMENT around it.
      const [r] = await this.conn.query<mysql.RowDataPacket[]>('SHOW GRANTS');
      return { rows: r as Row[] };
    });
    const lines = rows.map((r) => parseGrant(String(Object.values(r)[0]))).filter((g): g is GrantLine => g !== undefined);
    const found: WriteGrant[] = [];
    for (const view of views) {
      const [db, table] = view.includes('.') ? view.split('.', 2) : [this.database, view];
      for (const g of lines) {
        const write = g.privileges.filter((p) => WRITE_PRIVILEGES.has(p));
        if (write.length === 0 || !covers(g, db ?? '', table ?? '')) continue;
        found.push({ view, privileges: write, grantedBy: g.text, fix: `REVOKE ${write.join(', ')} ON ${g.database}.${g.table} FROM ${g.grantee};` });
      }
    }
    return found;
  }

  timeParam(epochMs: number): string {
    return new Date(epochMs).toISOString().replace('T', ' ').replace('Z', '');
  }

  classify(error: unknown): FailureKind {
    const e = error as { errno?: number; code?: string; fatal?: boolean };
    if (e.errno === 1969 || e.errno === 3024) return 'timeout';
    if (e.errno === 1146 || e.errno === 1054 || e.errno === 1049) return 'missing-object';
    if (this.lastError || e.fatal || /^(ECONN|EPIPE|ETIMEDOUT|PROTOCOL_)/.test(e.code ?? '')) return 'connection';
    return 'other';
  }

  async close(): Promise<void> {
    if (this.busy > 0) this.conn.destroy();
    else await this.conn.end().catch(() => this.conn.destroy());
  }
}

const WRITE_PRIVILEGES = new Set(['ALL PRIVILEGES', 'ALL', 'INSERT', 'UPDATE', 'DELETE', 'DROP', 'ALTER']);

/** `GRANT SELECT, INSERT ON `erp`.* TO `reader`@`%`` ⇒ its parts; role grants (no ON) are skipped. */
export function parseGrant(text: string): GrantLine | undefined {
  const m = /^GRANT (.+?) ON (?:TABLE )?(\S+) TO (.+?)(?: IDENTIFIED BY .*?)?(?: WITH .*)?$/.exec(text);
  if (!m) return undefined;
  const privileges = m[1]!
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((p) => p.trim().toUpperCase());
  const [database = '', table = ''] = m[2]!.split(/\.(?=[^.]*$)/);
  return { privileges, database, table, grantee: m[3]!, text };
}

function covers(g: GrantLine, db: string, table: string): boolean {
  return matches(g.database, db) && matches(g.table, table);
}

/** `*`, `` `erp` `` or a pattern such as `` `erp\_%` `` against a plain name. */
function matches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  const p = pattern.replace(/^`|`$/g, '').replace(/``/g, '`');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '\\' && i + 1 < p.length) re += escapeRegex(p[++i]!);
    else if (ch === '%') re += '.*';
    else if (ch === '_') re += '.';
    else re += escapeRegex(ch);
  }
  return new RegExp(`^${re}$`).test(name);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function kindOf(type: number): ColumnKind {
  if (NUMBER_TYPES.has(type)) return 'number';
  if (TEXT_TYPES.has(type)) return 'text';
  if (TIME_TYPES.has(type)) return 'time';
  return 'other';
}
