import pg from 'pg';
import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { startOverFix } from '../../agent/errors/start-over.js';

/**
 * Session settings for both connections, so the text Postgres sends is the
 * same on the stream and in the snapshot: UTC timestamps, ISO dates, and
 * floats with every digit.
 */
const SESSION_OPTIONS = '-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3';

/** Every value as the text Postgres sent: type-decoding.ts decodes it, as it does for the stream. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

export type ClientKind = 'query' | 'replication';

/** What Ferry's walsenders show in pg_stat_activity: `ferry check` tells a slot held by Ferry from one held by a stranger by it. */
export const REPLICATION_APPLICATION_NAME = 'ferry-cdc';

export function clientConfig(connection: string, kind: ClientKind): pg.ClientConfig {
  return {
    connectionString: connection,
    application_name: kind === 'replication' ? REPLICATION_APPLICATION_NAME : 'ferry-cdc-query',
    options: SESSION_OPTIONS,
    types: TEXT_TYPES as pg.CustomTypesConfig,
    connectionTimeoutMillis: 10_000,
    ...(kind === 'replication' ? { replication: 'database' } : {}),
  } as pg.ClientConfig;
}

/** Opens a client and turns a failure into a Ferry error. */
export async function connect(connection: string, kind: ClientKind): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(connection, kind));
  // Errors after connect surface through the next query; without a listener
  // an idle connection's error would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw toFerryError(error, describeTarget(connection));
  }
  return client;
}

/** `host:port/database` of a connection URL, never the password. */
export function describeTarget(connection: string): string {
  try {
    const url = new URL(connection);
    // The user, never the password: a rejected login must say which one was tried.
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${user}${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return 'postgres connection (unparsable URL)';
  }
}

interface PgLikeError {
  code?: string;
  message?: string;
}

/**
 * Sorts a driver error into what the runtime does with it: retry with backoff
 * (network, server restarting) or stop with a typed error (credentials,
 * privileges, a slot in use or gone).
 */
export function toFerryError(error: unknown, where: string): FerryError {
  if (error instanceof FerryError) return error;
  const e = (error ?? {}) as PgLikeError;
  const code = e.code ?? '';
  const message = e.message ?? String(error);
  const inUse = /replication slot "([^"]+)" is active for PID (\d+)/.exec(message);
  if (inUse) return slotInUse(inUse[1] ?? '?', Number(inUse[2]), where);
  const missing = /replication slot "([^"]+)" does not exist/.exec(message);
  if (missing) return slotLost(missing[1] ?? '?', 'it does not exist any more', where);
  if (code === '28P01' || code === '28000') {
    // Not FERRY_SOURCE_UNAVAILABLE: the runtime retries that one, and a wrong password stays wrong.
    // Exit 2, so a service manager does not restart the agent into the same refusal.
    return new FerryError('FERRY_SOURCE_AUTH_FAILED', `Postgres rejected the login: ${message}`, {
      where,
      fix: 'Check the user and password in `connection`, and pg_hba.conf (the role needs a `replication` entry and a database entry for this host).',
      cause: error,
    });
  }
  if (code === '3D000') {
    return new FerryError('FERRY_PREFLIGHT_FAILED', `Postgres refused the connection: ${message}`, {
      where,
      fix: 'Check the user, password and database in `connection`, and pg_hba.conf (the role needs a `replication` or database entry for this host).',
      cause: error,
    });
  }
  if (code === '42501') {
    return new FerryError('FERRY_PREFLIGHT_FAILED', `Postgres denied a privilege: ${message}`, {
      where,
      fix: 'Grant what docs/sources/postgres-cdc.md lists (ALTER ROLE ... REPLICATION; GRANT SELECT ON the tables), or run `ferry check`.',
      cause: error,
    });
  }
  if (code === '53400' || code === '53300') {
    // The server's limits (max_replication_slots, max_wal_senders, max_connections) are full: another consumer may
    // let go, so the runtime keeps retrying with backoff, but the log must say what is full and how to make room.
    const what = code === '53400' ? 'has no free replication slot' : 'has no free connection or WAL sender';
    return new RetryableError(`Postgres ${what}: ${message}`, {
      where,
      cause: error,
      code: 'FERRY_SOURCE_UNAVAILABLE',
      fix:
        code === '53400'
          ? 'Raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = N; then restart PostgreSQL) or drop a slot no consumer needs; `ferry check` names the inactive ones. Ferry retries until one is free.'
          : 'Raise max_wal_senders / max_connections (then restart PostgreSQL) or stop an idle replication client. Ferry retries until one is free.',
    });
  }
  if (/^(42|22|23)/.test(code)) {
    // A statement Ferry or the operator wrote is wrong (heartbeatQuery, a table's shape): retrying will not help.
    return new FerryError('FERRY_PREFLIGHT_FAILED', `Postgres rejected a statement: ${message}`, { where, fix: 'Check `tables` and `heartbeatQuery`; `ferry check` shows what is wrong.', cause: error });
  }
  return new RetryableError(`Postgres connection failed: ${message}`, { where, cause: error, code: 'FERRY_SOURCE_UNAVAILABLE' });
}

export function slotInUse(slot: string, pid: number, where: string): FerryError {
  return new FerryError('FERRY_SOURCE_SLOT_IN_USE', `replication slot ${slot} is in use by pid ${pid}`, { where });
}

export function slotLost(slot: string, why: string, where: string, pipeline?: string): FerryError {
  return new FerryError(
    'FERRY_SOURCE_POSITION_LOST',
    `${pipeline === undefined ? '' : `pipeline ${pipeline}: `}replication slot ${slot}: ${why}; the changes since Ferry's last position may be gone`,
    {
      where,
      fix:
        `Set \`snapshot: when_needed\` and restart: Ferry recreates slot ${slot} and snapshots the tables again, consistently with the new slot. ` +
        `Or ${startOverFix(pipeline)}. To keep WAL for a slot longer, raise max_slot_wal_keep_size.`,
    },
  );
}
