import type { SourceRecord } from '../../agent/plugin/source.js';
import { compareTuples } from './key-order.js';
import { keysetPages } from './keyset-pages.js';
import { changeId, viewRecord, type PollContext, type ResolvedView } from './poll-context.js';
import { isoTime, rowData, rowHash, tupleOf } from './row-hash.js';
import { SeenWindow } from './seen-window.js';

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
 * taken after a yield covers exactly what was yielded. `seen` (the window
 * rebuilt from `state.seen` by default) is a parameter so tests can watch its size.
 */
export async function* pollIncremental(
  view: ResolvedView,
  state: IncrementalState,
  lookBackMs: number,
  ctx: PollContext,
  seen: SeenWindow = new SeenWindow(state.seen),
): AsyncGenerator<SourceRecord[]> {
  const cursorCols = view.orderBy;
  const first = cursorCols[0]!;
  const window = lookBackMs > 0 && first.kind === 'time' ? lookBackMs : 0;
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
      if (window > 0) seen.add(timeOf(cursor[0]), hash);
      if (!state.cursor || compareTuples(cursor, state.cursor, cursorCols) > 0) state.cursor = cursor;
    }
    if (window > 0 && state.cursor) {
      seen.prune(timeOf(state.cursor[0]) - window);
      state.seen = seen.toJSON();
    }
    yield records;
  }
}

/** Epoch ms of a first-cursor-column value; naive times are taken as UTC, like the parameters we send back. */
function timeOf(value: unknown): number {
  return Date.parse(isoTime(String(value), true));
}
