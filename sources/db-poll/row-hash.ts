import { createHash } from 'node:crypto';
import type { Column, Row } from './dialects/dialect.js';

/**
 * A row as it goes into an event: exact strings for decimals and big
 * integers (the drivers are set up that way), ISO-8601 times, base64 bytes.
 */
export function rowData(row: Row, columns: readonly Column[]): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const c of columns) data[c.name] = eventValue(row[c.name], c);
  return data;
}

function eventValue(value: unknown, column: Column): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (column.kind === 'time' && typeof value === 'string') return isoTime(value, column.utc);
  return value;
}

/** `2024-01-31 10:00:00.5+00` ⇒ `2024-01-31T10:00:00.5Z`; a date stays a date. */
export function isoTime(raw: string, utc: boolean): string {
  if (!/^\d{4}-\d\d-\d\d[ T]\d/.test(raw)) return raw;
  let s = raw.replace(' ', 'T').replace(/\+00(:00)?$/, 'Z');
  if (utc && !/(Z|[+-]\d\d(:?\d\d)?)$/.test(s.slice(19))) s += 'Z';
  return s;
}

/**
 * The version of a row: a hash of its content in column order. Two reads of
 * an unchanged row give the same hash; it goes into change ids and the diff
 * store. 96 bits: collisions are only ever compared within one key.
 */
export function rowHash(data: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(data)).digest('base64url').slice(0, 16);
}

/** The values of some columns of a row, as the driver gave them (the form used for cursors and keys). */
export function tupleOf(row: Row, columns: readonly Column[]): unknown[] {
  return columns.map((c) => {
    const v = row[c.name];
    return Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'bigint' ? v.toString() : v;
  });
}
