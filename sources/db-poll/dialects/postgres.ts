import pg from 'pg';
import type { Column, ColumnKind, Dialect, FailureKind, PageQuery, Row, WriteGrant } from './dialect.js';
import { pageSql, quoteName, selectAllSql, type SqlSpelling } from './sql.js';

const NUMBER_OIDS = new Set([20, 21, 23, 26, 700, 701, 1700]);
const TEXT_OIDS = new Set([19, 25, 1042, 1043]);
const TIME_OIDS = new Set([1082, 1114, 1184]);
/** Types read as the server's text: exact decimals and big integers, microsecond times. */
const RAW_OIDS = new Set([20, 1700, 1082, 1114, 1184]);

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
    if (RAW_OIDS.has(oid)) return (value: string) => value;
    return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
  },
};

const spelling: SqlSpelling = {
  quote: (id) => `"${id.replace(/"/g, '""')}"`,
  // Byte order for text, whatever the database's default collation: the diff merge compares the same way.
  orderExpression: (c) => (c.kind === 'text' ? `${spelling.quote(c.name)} COLLATE "C"` : spelling.quote(c.name)),
  param: (value, _column, params) => {
    params.push(value);
    return `$${params.length}`;
  },
};

/** Postgres through `pg`: one connection, one short READ ONLY transaction per query. */
export class PostgresDialect implements Dialect {
  readonly kind = 'postgres' as const;
  private lastError: Error | undefined;

  private constructor(private readonly client: pg.Client) {
    // An idle connection the server drops emits 'error'; remember it for the next query instead of crashing.
    client.on('error', (e) => {
      this.lastError = e;
    });
  }

  static async connect(url: string): Promise<PostgresDialect> {
    const client = new pg.Client({ connectionString: url, types, application_name: 'ferry-db-poll', options: '-c TimeZone=UTC', connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    return new PostgresDialect(client);
  }

  /**
   * Runs one statement in its own READ ONLY transaction under the statement
   * timeout: the only way this dialect talks to the database. Public so
   * tests can show what the server does with it (a write is refused).
   */
  async readOnly<T extends pg.QueryResultRow>(sql: string, params: unknown[], timeoutMs: number): Promise<pg.QueryResult<T>> {
    if (this.lastError) throw this.lastError;
    await this.client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.trunc(timeoutMs)}`);
    try {
      const result = await this.client.query<T>(sql, params);
      await this.client.query('COMMIT');
      return result;
    } catch (e) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  async describe(view: string, timeoutMs: number): Promise<Column[]> {
    const r = await this.readOnly(`SELECT * FROM ${quoteName(view, spelling)} LIMIT 0`, [], timeoutMs);
    return r.fields.map((f) => ({ name: f.name, kind: kindOf(f.dataTypeID), utc: false }));
  }

  async page(q: PageQuery, timeoutMs: number): Promise<Row[]> {
    const { sql, params } = pageSql(q, spelling);
    return (await this.readOnly<Row>(sql, params, timeoutMs)).rows;
  }

  async estimateRows(view: string, where: string | undefined, timeoutMs: number): Promise<number | undefined> {
    const r = await this.readOnly<{ 'QUERY PLAN': Array<{ Plan?: { 'Plan Rows'?: number } }> }>(`EXPLAIN (FORMAT JSON) ${selectAllSql(view, where, spelling)}`, [], timeoutMs);
    const rows = r.rows[0]?.['QUERY PLAN'][0]?.Plan?.['Plan Rows'];
    return typeof rows === 'number' ? rows : undefined;
  }

  async writeGrants(views: readonly string[], timeoutMs: number): Promise<WriteGrant[]> {
    const grants: WriteGrant[] = [];
    const role = await this.readOnly<{ rolname: string; rolsuper: boolean }>(
      'SELECT rolname, rolsuper FROM pg_roles WHERE rolname = current_user',
      [],
      timeoutMs,
    );
    const me = role.rows[0];
    const roleName = spelling.quote(me?.rolname ?? 'current_user');
    if (me?.rolsuper) {
      grants.push({ view: '*', privileges: ['SUPERUSER'], grantedBy: `role attribute of ${roleName}`, fix: `ALTER ROLE ${roleName} NOSUPERUSER;` });
    }
    // has_table_privilege counts the roles the user inherits; a role it is a member of without inheriting
    // (NOINHERIT) is one SET ROLE away, so its privileges are the user's too.
    const settable = await this.readOnly<{ rolname: string; rolsuper: boolean }>(
      `SELECT rolname, rolsuper FROM pg_roles WHERE rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER') AND NOT pg_has_role(current_user, oid, 'USAGE') ORDER BY rolname`,
      [],
      timeoutMs,
    );
    for (const { rolname, rolsuper } of settable.rows) {
      if (!rolsuper || me?.rolsuper) continue;
      const other = spelling.quote(rolname);
      grants.push({ view: '*', privileges: ['SUPERUSER'], grantedBy: `role attribute of ${other}, which ${roleName} can SET ROLE to`, fix: `REVOKE ${other} FROM ${roleName};` });
    }
    for (const view of views) {
      const quoted = quoteName(view, spelling);
      const r = await this.readOnly<{ p: string }>(
        `SELECT p FROM unnest(ARRAY['INSERT','UPDATE','DELETE','TRUNCATE']) AS p WHERE has_table_privilege($1, p)`,
        [quoted],
        timeoutMs,
      );
      const privileges = r.rows.map((x) => x.p);
      if (privileges.length > 0) {
        grants.push({
          view,
          privileges,
          grantedBy: `${privileges.join(', ')} on ${quoted} (held by ${roleName}, directly, through a role or PUBLIC)`,
          fix: `REVOKE ${privileges.join(', ')} ON ${quoted} FROM ${roleName};`,
        });
      }
      for (const { rolname } of settable.rows) {
        const viaRole = await this.readOnly<{ p: string }>(
          `SELECT p FROM unnest(ARRAY['INSERT','UPDATE','DELETE','TRUNCATE']) AS p WHERE has_table_privilege($1, $2, p) AND NOT has_table_privilege($2, p)`,
          [rolname, quoted],
          timeoutMs,
        );
        const extra = viaRole.rows.map((x) => x.p);
        if (extra.length === 0) continue;
        const other = spelling.quote(rolname);
        grants.push({
          view,
          privileges: extra,
          grantedBy: `${extra.join(', ')} on ${quoted} (held by ${other}, which ${roleName} can SET ROLE to)`,
          fix: `REVOKE ${extra.join(', ')} ON ${quoted} FROM ${other}; (or REVOKE ${other} FROM ${roleName};)`,
        });
      }
    }
    return grants;
  }

  timeParam(epochMs: number): string {
    return new Date(epochMs).toISOString();
  }

  classify(error: unknown): FailureKind {
    const e = error as { code?: string; message?: string };
    if (e.code === '57014') return 'timeout';
    if (e.code === '42P01' || e.code === '42703' || e.code === '3F000') return 'missing-object';
    if (this.lastError || (e.code && (e.code.startsWith('08') || e.code.startsWith('57P') || e.code.startsWith('E')))) return 'connection';
    if (/Connection terminated|not queryable|ECONNRESET|ECONNREFUSED/i.test(e.message ?? '')) return 'connection';
    return 'other';
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

function kindOf(oid: number): ColumnKind {
  if (NUMBER_OIDS.has(oid)) return 'number';
  if (TEXT_OIDS.has(oid)) return 'text';
  if (TIME_OIDS.has(oid)) return 'time';
  return 'other';
}
