import type { Logger } from 'pino';
import { FerryError } from '../../agent/errors/index.js';
import type { SourceRecord } from '../../agent/plugin/source.js';
import type { Column, Dialect } from './dialects/dialect.js';
import type { ViewConfig } from './config.js';
import { rowData } from './row-hash.js';

/** A view resolved against the database for one poll. */
export interface ResolvedView {
  config: ViewConfig;
  /** Every column, in the view's order. */
  columns: Column[];
  /** The columns pages are ordered by: the cursor (incremental) or the key (diff). */
  orderBy: Column[];
  key: Column[];
}

/** What one poll of one view needs. */
export interface PollContext {
  dialect: Dialect;
  queryTimeoutMs: number;
  pageSize: number;
  /** The poll's start, ISO-8601: the `time` of every record it emits. */
  pollTime: string;
  logger: Logger;
  /** Awaits a query, or rejects with `PollAborted` as soon as the source is stopped. */
  run<T>(query: Promise<T>): Promise<T>;
}

/** Thrown inside a poll when the read signal aborts; `read` turns it into a plain return. */
export class PollAborted extends Error {}

export function abortable<T>(query: Promise<T>, signal: AbortSignal): Promise<T> {
  // The query may still settle after we stopped waiting; its outcome no longer matters.
  query.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new PollAborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new PollAborted());
    signal.addEventListener('abort', onAbort, { once: true });
    query.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** A change record of a view; `keyValues` and `position` are in the driver's form. */
export function viewRecord(
  view: ResolvedView,
  op: SourceRecord['op'],
  data: Record<string, unknown>,
  changeId: string,
  where: { label: 'cursor' | 'key'; values: readonly unknown[]; columns: readonly Column[] },
  pollTime: string,
): SourceRecord {
  const shown = Object.values(rowData(Object.fromEntries(where.columns.map((c, i) => [c.name, where.values[i]])), where.columns));
  const record: SourceRecord = {
    origin: { kind: 'table', name: view.config.name },
    op,
    data,
    changeId,
    time: pollTime,
    location: `${view.config.name} ${where.label} (${shown.map(String).join(', ')})`,
    position: JSON.stringify(where.values),
  };
  if (op === 'd') record.before = data;
  return record;
}

/** The change id: view, key and row version, so a re-read of the same version gives the same id. */
export function changeId(view: ResolvedView, key: readonly unknown[], version: string): string {
  return `${view.config.name}|${JSON.stringify(key)}|${version}`;
}

/**
 * The database returned an order tuple that is not above the previous one:
 * the columns are not unique, so keyset paging would skip rows. Stopping is
 * the only way not to lose them silently.
 */
export function notAscending(view: ResolvedView, field: 'key' | 'cursor', previous: readonly unknown[], current: readonly unknown[]): FerryError {
  const names = view.orderBy.map((c) => c.name).join(', ');
  return new FerryError(
    'FERRY_CONFIG_INVALID',
    `View ${view.config.name} returned ${field} ${JSON.stringify(current)} after ${JSON.stringify(previous)}: the ${field} columns [${names}] do not identify a row uniquely, so rows could be skipped`,
    { where: `source.views (${view.config.name}).${field}`, fix: `Make \`${field}\` unique: end it with the view's key columns.` },
  );
}
