import type { SourceRecord } from '../../agent/plugin/source.js';
import { compareTuples } from './key-order.js';
import { keysetPages } from './keyset-pages.js';
import { changeId, viewRecord, type PollContext, type ResolvedView } from './poll-context.js';
import { isoTime, rowData, rowHash, tupleOf } from './row-hash.js';

/** Most row hashes remembered for the look-back window; beyond it, re-reads are re-emitted (same change ids). */
export const MAX_SEEN = 10_000;

/**
 * Checkpointed state of an incremental view: the high-watermark cursor (the
 * last row delivered, in the driver's form) and, with a look-back window,
 * the hashes of rows already delivered inside it as `[epochMs, hash]`.
 */
export interface IncrementalState {
  cursor?: unknown[];
  seen?: [number, string][];
}

/**
 * One poll of an incremental view: keyset pages ordered by the cursor tuple,
 * from the stored cursor (or from `cursor[0] - lookBackMs`), until a short
 * page. Mutates `state` before yielding each page's records, so the checkpoint
 * taken after a yield covers exactly what was yielded.
 */
export async function* pollIncremental(view: ResolvedView, state: IncrementalState, lookBackMs: number, ctx: PollContext): AsyncGenerator<SourceRecord[]> {
  const cursorCols = view.orderBy;
  const first = cursorCols[0]!;
  const window = lookBackMs > 0 && first.kind === 'time' ? lookBackMs : 0;
  const seen = new Map<string, number>((state.seen ?? []).map(([t, h]) => [h, t]));
  // With a look-back window the poll re-reads from cursor[0] - window; without, it goes on after the cursor.
  const start = window > 0 && state.cursor ? { from: ctx.dialect.timeParam(timeOf(state.cursor[0]) - window) } : { after: state.cursor };
  for await (const page of keysetPages(view, 'cursor', start, ctx)) {
    const records: SourceRecord[] = [];
    for (const { row, tuple: cursor } of page) {
      const data = rowData(row, view.columns);
      const hash = rowHash(data);
      if (!seen.has(hash)) {
        const created = view.config.createdColumn !== undefined && data[view.config.createdColumn] === data[first.name];
        records.push(viewRecord(view, created ? 'c' : 'u', data, changeId(view, tupleOf(row, view.key), hash), { label: 'cursor', values: cursor, columns: cursorCols }, ctx.pollTime));
      }
      if (window > 0) seen.set(hash, timeOf(cursor[0]));
      if (!state.cursor || compareTuples(cursor, state.cursor, cursorCols) > 0) state.cursor = cursor;
    }
    if (window > 0 && state.cursor) state.seen = inWindow(seen, timeOf(state.cursor[0]) - window);
    yield records;
  }
}

function inWindow(seen: Map<string, number>, since: number): [number, string][] {
  const kept = [...seen].filter(([, t]) => t >= since).map(([h, t]): [number, string] => [t, h]);
  kept.sort((a, b) => a[0] - b[0]);
  return kept.slice(-MAX_SEEN);
}

/** Epoch ms of a first-cursor-column value; naive times are taken as UTC, like the parameters we send back. */
function timeOf(value: unknown): number {
  return Date.parse(isoTime(String(value), true));
}
