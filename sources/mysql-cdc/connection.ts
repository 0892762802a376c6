import type { ConnectionOptions } from 'mysql2';
import { ConfigError } from '../../agent/errors/index.js';

/**
 * mysql2 options from the `connection` URL
 * (`mysql://user:password@host:3306/database`). Every connection the source
 * opens uses them: UTC session time zone (TIMESTAMP values are instants),
 * dates as strings (DATETIME has no zone and must not be shifted), BIGINT and
 * DECIMAL as exact strings, JSON as text.
 */
export function connectionOptions(url: string, field = 'source.connection'): ConnectionOptions {
  // Not `new URL()`: a password from `${env:...}` arrives unencoded and may
  // hold `#`, `?`, `/` or `@`. The host part follows the last `@`.
  const scheme = /^(mysql|mariadb):\/\//i.exec(url);
  if (!scheme) {
    throw new ConfigError([{ file: 'ferry.yaml', field, message: `connection must start with mysql:// (got ${url.split(':')[0]}://...)` }]);
  }
  const rest = url.slice(scheme[0].length);
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? '' : rest.slice(0, at);
  const hostPart = /^(\[[^\]]+\]|[^:/?]*)(?::(\d+))?/.exec(rest.slice(at + 1));
  const colon = userinfo.indexOf(':');
  return {
    host: hostPart?.[1]?.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: hostPart?.[2] ? Number(hostPart[2]) : 3306,
    user: decode(colon < 0 ? userinfo : userinfo.slice(0, colon)),
    password: colon < 0 ? '' : decode(userinfo.slice(colon + 1)),
    // The path's database is not selected: every query names its tables in
    // full (database.table), so a user with SELECT on those tables only works.
    timezone: 'Z',
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    connectTimeout: 10_000,
    // JSON stays text, as the binlog has it (MariaDB flags JSON columns and
    // mysql2 would parse them): exact numbers, and snapshot rows equal to streamed ones.
    jsonStrings: true,
  };
}

/** Percent-decodes a URL part written encoded; leaves one that is not (a raw secret) as it is. */
function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** `user@host:port` for messages: never the password. */
export function describeConnection(o: ConnectionOptions): string {
  return `${o.user ?? ''}@${o.host ?? ''}:${o.port ?? 3306}`;
}

/** Backquotes an identifier for SQL text (names come from config, not from users at run time). */
export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `db.table` split into its two parts. */
export function splitTable(qualified: string): { database: string; table: string } {
  const dot = qualified.indexOf('.');
  return { database: qualified.slice(0, dot), table: qualified.slice(dot + 1) };
}
