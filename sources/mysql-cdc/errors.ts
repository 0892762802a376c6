import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { formatPosition, type BinlogPosition } from './position.js';

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
