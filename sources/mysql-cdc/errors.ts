import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { formatPosition, type BinlogPosition } from './position.js';
import type { LoggedStatement } from './transaction-reader.js';

/** mysql2 error fields this module looks at. */
interface MysqlError extends Error {
  code?: string;
  errno?: number;
  fatal?: boolean;
  sqlMessage?: string;
}

/** Network-level failures and server states that pass: reconnect with backoff. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN', 'ER_CON_COUNT_ERROR', 'ER_CONNECTION_KILLED', 'ER_QUERY_INTERRUPTED', 'ER_TOO_MANY_USER_CONNECTIONS',
]);
const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;

/**
 * Turns what mysql2/zongji report into the error the runtime acts on:
 * RetryableError (reconnect from the last checkpoint) for dropped
 * connections and server restarts; a typed FerryError that stops the
 * pipeline for what a human must fix (purged binlog, server id taken, no
 * privilege). `at` is the position the reader asked for, named in messages.
 */
export function classifyMysqlError(err: unknown, at: BinlogPosition): Error {
  if (err instanceof FerryError) return err;
  const e = (err instanceof Error ? err : new Error(String(err))) as MysqlError;
  const message = e.sqlMessage ?? e.message;
  const where = `binlog ${formatPosition(at)}`;
  // MariaDB drops the older of two readers with one server id (errno 4052,
  // which mysql2 names after an unrelated MySQL error); MySQL sends 1236.
  if (/same server.?(uuid|id)/i.test(message)) return serverIdInUse(undefined, e);
  if (e.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG) {
    if (/could not find first log file|impossible position|purged|not find.*binary log/i.test(message)) {
      return positionLost(at, e);
    }
  }
  if (e.code === 'ER_ACCESS_DENIED_ERROR' || e.code === 'ER_DBACCESS_DENIED_ERROR') {
    // A wrong password stays wrong: not retried (FERRY_SOURCE_UNAVAILABLE would be), exit 2.
    return new FerryError('FERRY_SOURCE_AUTH_FAILED', `MySQL rejected the login: ${message}`, {
      where,
      cause: e,
      fix: "Check the user and password in source.connection; the user needs access from this host ('repl'@'%').",
    });
  }
  if (e.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR') {
    return new FerryError('FERRY_PREFLIGHT_FAILED', `MySQL refused the replication user: ${message}`, {
      where,
      cause: e,
      fix: "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'repl'@'%'; and check the password in source.connection",
    });
  }
  if ((e.code !== undefined && TRANSIENT_CODES.has(e.code)) || e.fatal === true) {
    return new RetryableError(`lost the MySQL connection: ${message}`, { where, cause: e, code: 'FERRY_SOURCE_UNAVAILABLE' });
  }
  return new FerryError('FERRY_SOURCE_UNAVAILABLE', `MySQL binlog reader failed: ${message}`, { where, cause: e });
}

/** The stored binlog file is gone from the server (purged or expired while the agent was down). */
export function positionLost(at: BinlogPosition, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_SOURCE_POSITION_LOST',
    `binlog file ${at.file} (position ${formatPosition(at)}) is no longer on the server: it was purged while the agent was down, so changes after it are lost`,
    {
      where: `binlog ${formatPosition(at)}`,
      cause,
      fix: 'Set `snapshot: when_needed` (or run `ferry snapshot PIPELINE`) to re-read the tables, and keep binlogs longer than the agent may be down (binlog_expire_logs_seconds).',
    },
  );
}

/** Another replica (or another Ferry) reads the binlog with the same server id. */
export function serverIdInUse(serverId: number | undefined, cause?: unknown): FerryError {
  const id = serverId === undefined ? 'source.serverId' : `serverId ${serverId}`;
  return new FerryError('FERRY_CONFIG_INVALID', `${id} is already used by another replica connected to this server; two readers with one id disconnect each other`, {
    where: 'source.serverId',
    cause,
    fix: 'Give this pipeline a serverId no other replica or Ferry pipeline uses (see SHOW SLAVE HOSTS and @@server_id).',
  });
}

/**
 * A row change logged as SQL (the writing session's binlog_format is
 * STATEMENT or MIXED): its rows are in no row event, so Ferry stops at it
 * rather than skip it. `pipeline` names the stored position to delete.
 */
export function statementBinlog(s: LoggedStatement, pipeline: string | undefined): FerryError {
  const what = s.targets?.length ? `${s.verb} on ${s.targets.join(', ')}` : `${s.verb} (its tables cannot be told from the statement)`;
  const name = pipeline ?? 'PIPELINE';
  return new FerryError(
    'FERRY_SOURCE_STATEMENT_BINLOG',
    `binlog ${formatPosition(s.at)} holds a row change as an SQL statement, not as rows: ${what}, default database ${s.database || '(none)'}, ` +
      `which could change the captured tables ${s.tables.join(', ')}: "${s.head}". The session that wrote it used binlog_format STATEMENT or MIXED; ` +
      'its changes cannot be read from the binlog, so the source stops here instead of skipping them (the position stays before this transaction)',
    {
      where: `binlog ${formatPosition(s.at)}`,
      fix:
        `1) Make every session write rows: SET GLOBAL binlog_format = 'ROW'; set binlog_format = ROW in my.cnf, and remove SET [SESSION] binlog_format from the application that writes to ${s.databases.join(', ')} ` +
        '(connected sessions keep their format until they reconnect). ' +
        `2) This statement's changes must be re-read: stop the agent, delete the pipeline's stored position (redis-cli DEL PREFIX:pipeline:${name}:checkpoint) and start it with ` +
        `snapshot: initial, which re-reads every captured table and streams on from there; or with snapshot: never and startAt: ${formatPosition(s.after)} (just after the statement), ` +
        `then run ferry snapshot ${name} ${s.tables.map((t) => `-t ${t}`).join(' ')}. See docs/sources/mysql-cdc.md, "Statement-based changes".`,
    },
  );
}
