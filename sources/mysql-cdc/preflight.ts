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

/** The server variables the checks read; absent ones (another server flavour or version) read as ''. */
async function serverVariables(conn: Connection): Promise<Map<string, string>> {
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
 * The binlog settings every change depends on. Each failure of severity
 * `error` means changes would be missing from what Ferry can read (no
 * binlog, statements instead of rows, partial row images, undecodable
 * payloads): `ferry check` reports them and `open()` refuses to start.
 */
function binlogChecks(vars: Map<string, string>): CheckResult[] {
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
  const failed = binlogChecks(await serverVariables(conn)).filter((r) => !r.ok && r.severity === 'error');
  if (failed.length === 0) return;
  throw new FerryError(
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

  results.push(...(await privilegeChecks(conn, opts.user)));
  for (const table of opts.tables) results.push(await selectCheck(conn, table, opts.user));
  return results;
}

async function privilegeChecks(conn: Connection, user: string): Promise<CheckResult[]> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW GRANTS');
  const grants = rows.map((r) => String(Object.values(r)[0])).join('\n').toUpperCase();
  const global = grants.split('\n').filter((g) => / ON \*\.\* /.test(g)).join('\n');
  const all = /GRANT ALL PRIVILEGES ON \*\.\*/.test(global);
  const fix = (priv: string): string => `GRANT ${priv} ON *.* TO '${user}'@'%'; (as an administrator)`;
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
