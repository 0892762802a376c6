import mysql from 'mysql2/promise';
import type { Column, ColumnKind, Dialect, FailureKind, PageQuery, Row, WriteGrant } from './dialect.js';
import { parseGrant, parseRoleGrant, sameAccount, writeGrantsOn, type GrantLine } from './mysql-grants.js';
import { pageSql, quoteName, selectAllSql, type SqlSpelling } from './sql.js';

// mysql2 column type codes.
const NUMBER_TYPES = new Set([0, 1, 2, 3, 4, 5, 8, 9, 13, 246]);
const TEXT_TYPES = new Set([15, 247, 248, 252, 253, 254]);
const TIME_TYPES = new Set([7, 10, 12, 14]);
const TIMESTAMP = 7;
const EXACT_NUMBER = /^-?\d+(\.\d+)?$/;
/** How long past queryTimeoutMs the client waits for an answer before it drops the connection. */
const DEADLINE_GRACE_MS = 1000;

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

/**
 * A statement the client gave up on: no answer by queryTimeoutMs plus a
 * grace, so the connection was dropped. The server times what it can
 * (everything on MariaDB, SELECTs on MySQL); this covers the rest (SHOW
 * GRANTS and SET ROLE on MySQL) and a server that stopped answering.
 */
export class StatementDeadline extends Error {}

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

  /**
   * `flavour` overrides what VERSION() says: tests run `mysql` against
   * MariaDB, which reads MySQL's timeout hint as a comment, to show the
   * client-side deadline alone.
   */
  static async connect(url: string, options: { flavour?: 'mysql' | 'mariadb' } = {}): Promise<MysqlDialect> {
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
      const mariadb = options.flavour === undefined ? /mariadb/i.test(String(first?.v)) : options.flavour === 'mariadb';
      return new MysqlDialect(conn, mariadb, String(first?.d ?? ''));
    } catch (e) {
      conn.destroy();
      throw e;
    }
  }

  /**
   * Adds the server's statement timeout: MariaDB's max_statement_time
   * (seconds) applies to any statement (SELECT, EXPLAIN, SHOW GRANTS, SET
   * ROLE); MySQL's MAX_EXECUTION_TIME hint (ms) to SELECTs only, also
   * inside EXPLAIN. Whatever the server cannot time has the client's deadline.
   */
  private timed(statement: string, timeoutMs: number): string {
    if (this.mariadb) return `SET STATEMENT max_statement_time=${(timeoutMs / 1000).toFixed(3)} FOR ${statement}`;
    return statement.replace(/^(EXPLAIN )?SELECT /, `$1SELECT /*+ MAX_EXECUTION_TIME(${Math.trunc(timeoutMs)}) */ `);
  }

  /**
   * Runs one statement in its own READ ONLY transaction under the statement
   * timeout, and the whole transaction under the client's deadline: the only
   * way this dialect talks to the database. Public so tests can show what
   * the server does with it (a write is refused).
   */
  async readOnly(statement: string, params: unknown[], timeoutMs: number): Promise<{ rows: Row[]; fields: mysql.FieldPacket[] }> {
    if (this.lastError) throw this.lastError;
    this.busy += 1;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const limit = timeoutMs + DEADLINE_GRACE_MS;
        // The statement may still run on the server; a dropped connection is the one thing that stops it here.
        this.lastError ??= Object.assign(new Error(`the connection was closed after a statement got no answer within ${limit} ms`), { fatal: true });
        this.conn.destroy();
        reject(new StatementDeadline(`no answer within ${limit} ms (queryTimeoutMs + ${DEADLINE_GRACE_MS} ms): ${statement.slice(0, 80)}`));
      }, timeoutMs + DEADLINE_GRACE_MS);
    });
    try {
      return await Promise.race([this.transaction(statement, params, timeoutMs), deadline]);
    } finally {
      clearTimeout(timer);
      this.busy -= 1;
    }
  }

  private async transaction(statement: string, params: unknown[], timeoutMs: number): Promise<{ rows: Row[]; fields: mysql.FieldPacket[] }> {
    try {
      await this.conn.query('START TRANSACTION READ ONLY');
      const [rows, fields] = await this.conn.query<mysql.RowDataPacket[]>(this.timed(statement, timeoutMs), params);
      await this.conn.query('COMMIT');
      return { rows: rows as Row[], fields };
    } catch (e) {
      await this.conn.query('ROLLBACK').catch(() => undefined);
      throw e;
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

  /**
   * The write privileges on `views`, held directly, through PUBLIC, or
   * through a role granted to the user, whether that role is active or not
   * (the user can `SET ROLE` it at any time). MariaDB shows a role's grants,
   * with those of the roles granted to it, only while it is the current role,
   * so each is set in turn and the session's own role restored; MySQL
   * expands them with `SHOW GRANTS ... USING`.
   */
  async writeGrants(views: readonly string[], timeoutMs: number): Promise<WriteGrant[]> {
    const text = async (sql: string): Promise<string[]> => (await this.readOnly(sql, [], timeoutMs)).rows.map((r) => String(Object.values(r)[0]));
    // CURRENT_ROLE() is MariaDB's and MySQL 8's; MySQL 5.7 has no roles at all.
    const who = (await this.readOnly('SELECT CURRENT_USER() AS user, CURRENT_ROLE() AS role', [], timeoutMs).catch(() => this.readOnly('SELECT CURRENT_USER() AS user, NULL AS role', [], timeoutMs))).rows[0];
    const user = String(who?.user ?? '');
    const own = await text('SHOW GRANTS');
    const roles = new Map<string, { role: string; grantee: string }>();
    for (const line of own) {
      const grant = parseRoleGrant(line);
      if (grant && sameAccount(grant.grantee, user)) for (const role of grant.roles) roles.set(role, { role, grantee: grant.grantee });
    }
    // With a role active, SHOW GRANTS also lists that role's grants: those are reported through the role, below.
    const direct = own.filter((line) => {
      const g = parseGrant(line);
      return g !== undefined && (g.grantee === 'PUBLIC' || sameAccount(g.grantee, user));
    });
    const held: Array<{ lines: string[]; through?: { role: string; grantee: string } }> = [{ lines: direct }];
    if (this.mariadb) {
      try {
        for (const through of roles.values()) {
          await this.readOnly(`SET ROLE ${through.role}`, [], timeoutMs);
          held.push({ lines: await text(`SHOW GRANTS FOR ${through.role}`), through });
        }
      } finally {
        // Back to the role the session logged in with (the user's default role, or none).
        const active = who?.role === null || who?.role === undefined ? 'NONE' : spelling.quote(String(who.role));
        if (roles.size > 0) await this.readOnly(`SET ROLE ${active}`, [], timeoutMs);
      }
    } else {
      for (const through of roles.values()) {
        const lines = await text(`SHOW GRANTS FOR CURRENT_USER() USING ${through.role}`);
        // USING merges the role's privileges into the user's lines: what the user holds directly is not the role's.
        held.push({ lines: lines.filter((l) => !direct.includes(l)), through });
      }
    }
    const found: WriteGrant[] = [];
    for (const { lines, through } of held) {
      const parsed = lines.map(parseGrant).filter((g): g is GrantLine => g !== undefined);
      for (const view of views) found.push(...writeGrantsOn(view, this.database, parsed, through));
    }
    return found;
  }

  timeParam(epochMs: number): string {
    return new Date(epochMs).toISOString().replace('T', ' ').replace('Z', '');
  }

  classify(error: unknown): FailureKind {
    const e = error as { errno?: number; code?: string; fatal?: boolean };
    if (e.errno === 1969 || e.errno === 3024 || error instanceof StatementDeadline) return 'timeout';
    if (e.errno === 1146 || e.errno === 1054 || e.errno === 1049) return 'missing-object';
    if (this.lastError || e.fatal || /^(ECONN|EPIPE|ETIMEDOUT|PROTOCOL_)/.test(e.code ?? '')) return 'connection';
    return 'other';
  }

  async close(): Promise<void> {
    if (this.busy > 0) this.conn.destroy();
    else await this.conn.end().catch(() => this.conn.destroy());
  }
}

function kindOf(type: number): ColumnKind {
  if (NUMBER_TYPES.has(type)) return 'number';
  if (TEXT_TYPES.has(type)) return 'text';
  if (TIME_TYPES.has(type)) return 'time';
  return 'other';
}
