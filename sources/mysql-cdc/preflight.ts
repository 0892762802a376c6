import type { Connection, RowDataPacket } from 'mysql2/promise';
import { FerryError } from '../../agent/errors/index.js';
import type { CheckResult } from '../../agent/plugin/source.js';
import { quoteId, splitTable } from './connection.js';

export interface PreflightOptions {
  serverId: number;
  tables: readonly string[];
  /** Hours the agent may be down and still find its binlog position. */
  retentionToleranceHours: number;
  /** The replication user, for the GRANT statements printed as fixes. */
  user: string;
}

/** The server variables the checks read, lower-case names; absent ones (another server flavour or version) read as ''. */
export async function serverVariables(conn: Connection): Promise<Map<string, string>> {
  const [varRows] = await conn.query<RowDataPacket[]>(
    `SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', 'binlog_row_metadata',
      'binlog_row_value_options', 'binlog_transaction_compression', 'binlog_expire_logs_seconds', 'expire_logs_days', 'server_id', 'version', 'version_comment',
      'time_zone', 'system_time_zone')`,
  );
  return new Map(varRows.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
}

const PERSIST = 'and set it in my.cnf under [mysqld] so it survives a restart';

/** A finding: a failed one carries its fix and severity, a passed one neither. */
function finding(name: string, ok: boolean, detail: string, fix: string, severity: 'error' | 'warning' = 'error'): CheckResult {
  return ok ? { name, ok, detail } : { name, ok, detail, fix, severity };
}

/**
 * The binlog settings every change depends on, judged from the server's
 * global variables (`serverVariables`). Each failure of severity `error`
 * means changes would be missing from what Ferry can read (no binlog,
 * statements instead of rows, partial row images, undecodable payloads):
 * `ferry check` reports them and `open()` refuses to start.
 */
export function binlogChecks(vars: Map<string, string>): CheckResult[] {
  const v = (name: string): string => vars.get(name) ?? '';
  const results: CheckResult[] = [];
  const add = (...args: Parameters<typeof finding>): void => void results.push(finding(...args));
  add('log_bin', v('log_bin').toUpperCase() === 'ON', `log_bin = ${v('log_bin') || 'unknown'}`, 'Set log_bin = mysql-bin in my.cnf under [mysqld] and restart the server (log_bin cannot change at run time).');
  add(
    'binlog_format',
    v('binlog_format').toUpperCase() === 'ROW',
    `binlog_format = ${v('binlog_format')}`,
    `SET GLOBAL binlog_format = 'ROW'; ${PERSIST}. Sessions already connected keep their format until they reconnect: restart the applications' connection pools.`,
  );
  add('binlog_row_image', v('binlog_row_image').toUpperCase() === 'FULL', `binlog_row_image = ${v('binlog_row_image')}`, `SET GLOBAL binlog_row_image = 'FULL'; ${PERSIST}.`);
  add(
    'binlog_row_metadata',
    v('binlog_row_metadata').toUpperCase() === 'FULL',
    vars.has('binlog_row_metadata') ? `binlog_row_metadata = ${v('binlog_row_metadata')}` : 'binlog_row_metadata is not supported by this server (MariaDB < 10.5, MySQL < 8.0.1)',
    `SET GLOBAL binlog_row_metadata = 'FULL'; ${PERSIST}. Column names then travel in the binlog; without them Ferry follows ALTER TABLE itself and stops at DDL it cannot parse.`,
    'warning',
  );
  const rowValueOptions = v('binlog_row_value_options');
  add('binlog_row_value_options', !/PARTIAL_JSON/i.test(rowValueOptions), `binlog_row_value_options = '${rowValueOptions}'`, `SET GLOBAL binlog_row_value_options = ''; ${PERSIST} (PARTIAL_JSON writes JSON diffs that cannot be turned into after-images).`);
  add(
    'binlog_transaction_compression',
    v('binlog_transaction_compression').toUpperCase() !== 'ON',
    `binlog_transaction_compression = ${v('binlog_transaction_compression') || 'not supported (OFF)'}`,
    `SET GLOBAL binlog_transaction_compression = OFF; ${PERSIST} (the binlog reader cannot decode compressed transactions and stops at the first one).`,
  );
  return results;
}

/**
 * Called by `open()`: refuses to stream from a server whose binlog would
 * not hold every change as full rows (the failures of {@link binlogChecks}),
 * with FERRY_PREFLIGHT_FAILED naming each setting, its value and the fix.
 * Only the global values can be read; a session that sets its own
 * binlog_format is caught in the stream (FERRY_SOURCE_STATEMENT_BINLOG).
 */
export async function requireRowBinlog(conn: Connection, server: string): Promise<void> {
  const refusal = rowBinlogRefusal(await serverVariables(conn), server);
  if (refusal) throw refusal;
}

/** The error `requireRowBinlog` throws for these global variables of `server`, if any. */
export function rowBinlogRefusal(vars: Map<string, string>, server: string): FerryError | undefined {
  const failed = binlogChecks(vars).filter((r) => !r.ok && r.severity === 'error');
  if (failed.length === 0) return undefined;
  return new FerryError(
    'FERRY_PREFLIGHT_FAILED',
    `the server's binlog would not hold every change as full rows: ${failed.map((r) => r.detail).join(', ')} (needed: log_bin = ON, binlog_format = ROW, binlog_row_image = FULL, no PARTIAL_JSON, no transaction compression)`,
    { where: `server ${server}, global variables`, fix: failed.map((r) => `${r.name}: ${r.fix ?? ''}`).join(' ') },
  );
}

/**
 * What `ferry check` verifies before a mysql-cdc pipeline runs, each
 * finding with the statement that fixes it. Reads only: variables, grants
 * and a `SELECT ... LIMIT 0` per table.
 */
export async function preflight(conn: Connection, opts: PreflightOptions): Promise<CheckResult[]> {
  const vars = await serverVariables(conn);
  const v = (name: string): string => vars.get(name) ?? '';
  const results: CheckResult[] = binlogChecks(vars);
  const add = (...args: Parameters<typeof finding>): void => void results.push(finding(...args));

  add('server_id', String(opts.serverId) !== v('server_id'), `server @@server_id = ${v('server_id')}, source.serverId = ${opts.serverId}`, 'Choose a source.serverId different from the server\'s own server_id and from every other replica\'s.');
  const replicas = await registeredReplicas(conn);
  const taken = replicas?.find((r) => r.serverId === opts.serverId);
  if (taken) {
    add('serverId in use', false, `a replica registered from ${taken.host} uses serverId ${opts.serverId}: connecting would disconnect it`, 'Choose a source.serverId no replica, other Ferry pipeline or binlog client of this server uses.');
  } else {
    results.push({
      name: 'serverId in use',
      ok: true,
      detail: replicas
        ? `no registered replica uses serverId ${opts.serverId} (SHOW SLAVE HOSTS); other binlog readers, Ferry included, do not register and are only noticed when the server drops one of two readers with one id`
        : `not checked: SHOW SLAVE HOSTS needs REPLICATION MASTER ADMIN on MariaDB; a reader with serverId ${opts.serverId} elsewhere is only noticed when the server drops one of the two`,
    });
  }

  const retentionSeconds = Number(v('binlog_expire_logs_seconds')) || Number(v('expire_logs_days')) * 86400;
  const wantSeconds = opts.retentionToleranceHours * 3600;
  add(
    'binlog retention',
    retentionSeconds === 0 || retentionSeconds >= wantSeconds,
    retentionSeconds === 0 ? 'binlogs are never expired automatically' : `binlogs are kept ${(retentionSeconds / 3600).toFixed(1)} h; source.retentionToleranceHours = ${opts.retentionToleranceHours}`,
    `SET GLOBAL binlog_expire_logs_seconds = ${wantSeconds}; ${PERSIST} (or lower retentionToleranceHours).`,
    'warning',
  );

  // Not a failure either way: DATETIME values are passed on as the server's
  // wall-clock time, so whoever maps them needs to know the zone.
  const zone = v('time_zone').toUpperCase() === 'SYSTEM' ? `SYSTEM (${v('system_time_zone')})` : v('time_zone');
  results.push({ name: 'time_zone', ok: true, detail: `server time zone ${zone}: DATETIME values are wall-clock times in it; TIMESTAMP values are sent in UTC` });

  results.push(...(await privilegeChecks(conn, opts.user, /mariadb/i.test(v('version')))));
  for (const table of opts.tables) results.push(await selectCheck(conn, table, opts.user));
  return results;
}

/**
 * The replicas registered with the server now, or undefined when the user
 * may not list them: MySQL needs REPLICATION SLAVE (and knows only SHOW
 * REPLICAS from 8.4), MariaDB 10.5.2+ REPLICATION MASTER ADMIN, which a
 * replication user does not otherwise need.
 */
export async function registeredReplicas(conn: Connection): Promise<Array<{ serverId: number; host: string }> | undefined> {
  for (const sql of ['SHOW REPLICAS', 'SHOW SLAVE HOSTS']) {
    try {
      const [rows] = await conn.query<RowDataPacket[]>(sql);
      return rows.map((r) => ({ serverId: Number(r.Server_id), host: `${String(r.Host || '?')}:${String(r.Port ?? '?')}` }));
    } catch {
      // not this statement on this server, or not allowed
    }
  }
  return undefined;
}

/** A role as SHOW GRANTS and CURRENT_ROLE() print it: `r`, `r`@`%` (MySQL), 'r'@'%', or bare. */
const ROLE = /`(?:[^`]|``)+`(?:@`(?:[^`]|``)*`)?|'(?:[^']|'')+'(?:@'(?:[^']|'')*')?|[\w$]+(?:@[\w$%.]+)?/g;

/** A role's name to compare by: no quotes, no MySQL `@%`. */
function roleName(role: string): string {
  return role.replace(/[`']/g, '').replace(/@%$/, '');
}

/** The roles a `GRANT role[, role] TO grantee` line grants; none for a privilege grant (`GRANT ... ON ...`). */
function rolesGranted(line: string): string[] {
  const m = /^GRANT (.+?) TO /i.exec(line);
  return !m || / ON /i.test(line) ? [] : ((m[1] as string).match(ROLE) ?? []);
}

/**
 * The session's grants, with those of its enabled roles. MariaDB's SHOW
 * GRANTS already lists the current role's, nested ones too; MySQL's lists
 * only `GRANT role TO user`, so each enabled role (and each role granted to
 * one) is asked for its own, which a user may do for its own roles.
 * `dormant`: roles granted to the user but not enabled at login, whose
 * privileges do not count until one is made the user's default role.
 */
async function sessionGrants(conn: Connection): Promise<{ grants: string[]; dormant: string[] }> {
  const show = async (sql: string): Promise<string[]> => {
    const [rows] = await conn.query<RowDataPacket[]>(sql);
    return rows.map((r) => String(Object.values(r)[0]));
  };
  const grants = await show('SHOW GRANTS');
  const [current] = await show('SELECT CURRENT_ROLE()').catch((): string[] => []);
  const queue = (current ?? '').match(ROLE)?.filter((r) => !/^(NONE|NULL)$/i.test(r)) ?? [];
  const enabled = new Set<string>();
  for (let role = queue.shift(); role !== undefined && enabled.size < 50; role = queue.shift()) {
    if (enabled.has(roleName(role))) continue;
    enabled.add(roleName(role));
    const own = await show(`SHOW GRANTS FOR ${/^[`']/.test(role) ? role : `\`${role}\``}`).catch((): string[] => []);
    grants.push(...own);
    queue.push(...own.flatMap(rolesGranted));
  }
  const dormant = [...new Set(grants.flatMap(rolesGranted).map(roleName))].filter((r) => !enabled.has(r));
  return { grants, dormant };
}

async function privilegeChecks(conn: Connection, user: string, mariadb: boolean): Promise<CheckResult[]> {
  const { grants: lines, dormant } = await sessionGrants(conn);
  const global = lines.map((g) => g.toUpperCase()).filter((g) => / ON \*\.\* /.test(g)).join('\n');
  const all = /GRANT ALL PRIVILEGES ON \*\.\*/.test(global);
  const defaultRole = (role: string): string => (mariadb ? `SET DEFAULT ROLE \`${role}\` FOR '${user}'@'%';` : `SET DEFAULT ROLE \`${role}\` TO '${user}'@'%';`);
  const viaRole =
    dormant.length === 0
      ? ''
      : ` Or, if the role ${dormant.join(' or ')} granted to the user holds it: roles count only when enabled at login, so make it the default role: ${dormant.map(defaultRole).join(' or ')}`;
  const fix = (priv: string): string => `GRANT ${priv} ON *.* TO '${user}'@'%'; (as an administrator)${viaRole}`;
  // MariaDB 10.5 renamed REPLICATION CLIENT to BINLOG MONITOR and shows the new name.
  const slave = all || /REPLICATION (SLAVE|REPLICA)/.test(global);
  const client = all || /REPLICATION CLIENT|BINLOG MONITOR|SUPER/.test(global);
  return [
    slave
      ? { name: 'REPLICATION SLAVE', ok: true, detail: 'granted' }
      : { name: 'REPLICATION SLAVE', ok: false, detail: 'missing: the binlog cannot be read', fix: fix('REPLICATION SLAVE'), severity: 'error' },
    client
      ? { name: 'REPLICATION CLIENT', ok: true, detail: 'granted' }
      : { name: 'REPLICATION CLIENT', ok: false, detail: 'missing: SHOW MASTER STATUS / SHOW BINARY LOGS are refused', fix: fix('REPLICATION CLIENT'), severity: 'error' },
  ];
}

async function selectCheck(conn: Connection, qualified: string, user: string): Promise<CheckResult> {
  const { database, table } = splitTable(qualified);
  const name = `SELECT on ${qualified}`;
  try {
    await conn.query(`SELECT 1 FROM ${quoteId(database)}.${quoteId(table)} LIMIT 0`);
    return { name, ok: true, detail: 'readable' };
  } catch (err) {
    const message = (err as { sqlMessage?: string }).sqlMessage ?? String(err);
    return { name, ok: false, detail: message, fix: `GRANT SELECT ON ${quoteId(database)}.${quoteId(table)} TO '${user}'@'%'; (as an administrator)`, severity: 'error' };
  }
}
