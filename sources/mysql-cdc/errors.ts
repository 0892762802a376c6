import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { formatPosition, type BinlogPosition } from './position.js';
import type { LoggedStatement } from './transaction-reader.js';
import { startOverFix } from '../../agent/errors/start-over.js';

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

/** Which binlog reader an error is about: its pipeline, the replica id it announces and its user. */
export interface ReaderIdentity {
  serverId: number;
  pipeline: string | undefined;
  user?: string | undefined;
}

/**
 * Turns what mysql2/zongji report into the error the runtime acts on:
 * RetryableError (reconnect from the last checkpoint) for dropped
 * connections and server restarts; a typed FerryError that stops the
 * pipeline for what a human must fix (purged binlog, server id taken, no
 * privilege). `at` is the position the reader asked for, named in messages;
 * `reader` names the pipeline and serverId in those a human must act on.
 */
export function classifyMysqlError(err: unknown, at: BinlogPosition, reader?: ReaderIdentity): Error {
  if (err instanceof FerryError) return err;
  const e = (err instanceof Error ? err : new Error(String(err))) as MysqlError;
  const message = e.sqlMessage ?? e.message;
  const where = `binlog ${formatPosition(at)}`;
  // MariaDB drops the older of two readers with one server id (errno 4052,
  // which mysql2 names after an unrelated MySQL error); MySQL sends 1236.
  if (/same server.?(uuid|id)/i.test(message)) return serverIdDropped(reader, e);
  if (e.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG) {
    if (/could not find first log file|impossible position|purged|not find.*binary log/i.test(message)) {
      return positionLost(at, reader?.pipeline, e);
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
    const user = reader?.user || 'repl';
    return new FerryError('FERRY_PREFLIGHT_FAILED', `MySQL refused the replication user ${user}: ${message}`, {
      where: reader?.pipeline === undefined ? where : `pipeline ${reader.pipeline}, ${where}`,
      cause: e,
      fix: `GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${user}'@'%'; (as an administrator; \`ferry check\` lists every missing privilege)`,
    });
  }
  if ((e.code !== undefined && TRANSIENT_CODES.has(e.code)) || e.fatal === true) {
    return new RetryableError(`lost the MySQL connection: ${message}`, { where, cause: e, code: 'FERRY_SOURCE_UNAVAILABLE' });
  }
  return new FerryError('FERRY_SOURCE_UNAVAILABLE', `MySQL binlog reader failed: ${message}`, { where, cause: e });
}


/**
 * Rows of a captured table without column names in the binlog, and no
 * schema history that knows them: rows already written stay that way, so
 * turning the metadata on is not enough; reading must start over after them.
 */
export function noColumnNamesFix(pipeline: string | undefined): string {
  return (
    "SET GLOBAL binlog_row_metadata = 'FULL' and set it in my.cnf (MariaDB 10.5+, MySQL 8.0.1+), so that rows written from now on carry their column names. " +
    `The rows already in the binlog do not, so ${startOverFix(pipeline)}.`
  );
}

/** The stored binlog file is gone from the server (purged or expired while the agent was down). */
export function positionLost(at: BinlogPosition, pipeline: string | undefined, cause?: unknown): FerryError {
  return new FerryError(
    'FERRY_SOURCE_POSITION_LOST',
    `binlog file ${at.file} (position ${formatPosition(at)}) is no longer on the server: it was purged while the agent was down, so changes after it are lost`,
    {
      where: `${pipeline === undefined ? '' : `pipeline ${pipeline}, `}binlog ${formatPosition(at)}`,
      cause,
      fix:
        'Set `snapshot: when_needed` on this source and restart the agent: it snapshots the tables again and streams on from there. ' +
        `Or, keeping \`snapshot\` as it is: ${startOverFix(pipeline)}. ` +
        'Then keep binlogs longer than the agent may be down (binlog_expire_logs_seconds; `ferry check` compares it with retentionToleranceHours).',
    },
  );
}

/** `startAt` names a binlog file the server no longer has (no position is stored yet). */
export function startAtPurged(at: BinlogPosition, pipeline: string | undefined): FerryError {
  return new FerryError('FERRY_SOURCE_POSITION_LOST', `startAt ${formatPosition(at)}: binlog file ${at.file} is not on the server (SHOW BINARY LOGS)`, {
    where: `pipeline ${pipeline ?? 'PIPELINE'}: pipelines[].source.startAt`,
    fix: 'Set startAt to a position in a binlog file the server still has (SHOW BINARY LOGS, SHOW BINLOG EVENTS), or remove startAt to stream from the current end.',
  });
}

/** Where a serverId problem is fixed: the pipeline's `source.serverId`. */
function serverIdField(pipeline: string | undefined): string {
  return `pipeline ${pipeline ?? 'PIPELINE'}: pipelines[].source.serverId`;
}

const UNIQUE_ID =
  'Give every reader of this server a unique id: no two Ferry pipelines, replicas or other binlog clients may share one, and none may equal the server\'s own @@server_id';

/**
 * Refused at start: `serverId` is the server's own id, one a replica
 * registered with (`SHOW SLAVE HOSTS`), or one another pipeline of this
 * agent reads the same server with. `other` says which.
 */
export function serverIdInUse(serverId: number, pipeline: string | undefined, other: string): FerryError {
  return new FerryError('FERRY_CONFIG_INVALID', `serverId ${serverId} of pipeline ${pipeline ?? '(unnamed)'} is already taken: ${other}`, {
    where: serverIdField(pipeline),
    fix: `${UNIQUE_ID}: set pipelines[].source.serverId of pipeline ${pipeline ?? 'PIPELINE'} to another id.`,
  });
}

/**
 * The server dropped this reader because another one connected with the
 * same server id (the server keeps the newer). Not retried: reconnecting
 * would drop the other reader in turn, and the two would knock each other
 * off forever; a replica dropped that way may stop replicating.
 */
export function serverIdDropped(reader: ReaderIdentity | undefined, cause?: unknown): FerryError {
  const id = reader ? `serverId ${reader.serverId}` : 'its serverId';
  const pipeline = reader?.pipeline ?? 'PIPELINE';
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `the server dropped the binlog reader of pipeline ${pipeline} because another reader connected with the same id (${id}); ` +
      'the server keeps one connection per id. This pipeline does not reconnect: that would drop the other reader in turn',
    {
      where: serverIdField(reader?.pipeline),
      cause,
      fix:
        `${UNIQUE_ID}: set pipelines[].source.serverId of pipeline ${pipeline} to an id nothing else uses (replicas show theirs in SHOW SLAVE HOSTS and @@server_id). ` +
        'If the other reader is a second copy of this agent (a second service, a `ferry run` by hand, a deployment that started the new agent before stopping the old one), stop one of them instead.',
    },
  );
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
        `2) This statement's changes must be re-read: stop the agent, delete the pipeline's stored position (redis-cli -u REDIS_URL DEL ferry:pipeline:${name}:checkpoint, ferry being the default queue.prefix) and start it with ` +
        `snapshot: initial, which re-reads every captured table and streams on from there; or with snapshot: never and startAt: ${formatPosition(s.after)} (just after the statement), ` +
        `then run ferry snapshot ${name} ${s.tables.map((t) => `-t ${t}`).join(' ')}. See docs/sources/mysql-cdc.md, "Statement-based changes".`,
    },
  );
}
