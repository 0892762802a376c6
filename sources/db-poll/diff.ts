import type { SourceRecord } from '../../agent/plugin/source.js';
import type { GenerationStore, GenerationWriter, StoredRow } from './diff-store.js';
import { compareTuples } from './key-order.js';
import { keysetPages } from './keyset-pages.js';
import { changeId, viewRecord, type PollContext, type ResolvedView } from './poll-context.js';
import { rowData, rowHash } from './row-hash.js';

/**
 * Checkpointed state of a diff view: the current generation of stored row
 * hashes and, when the checkpoint was taken mid-poll, how far the poll toward
 * `gen + 1` got: every change up to key `after` is in the events, and the
 * first `bytes` bytes of the unfinished generation file hold those keys.
 */
export interface DiffState {
  gen: number;
  partial?: { after: unknown[]; bytes: number };
}

/**
 * One poll of a diff view: streams the view in key order (keyset pages) and
 * merges it against generation `state.gen` of the stored row hashes, which is
 * streamed in the same order; writes generation `gen + 1` as it goes. Memory
 * holds one page and one stored line, whatever the view's size.
 *
 * Emits `c` for a key not in the previous generation, `u` when its hash
 * changed, `d` (data = before = the key values) for a stored key the view no
 * longer returns, in chunks of at most `pageSize` records. Before yielding a
 * chunk it sets `state.partial` to the last key handled, so the checkpoint
 * taken after the yield resumes right after it; before the last chunk (the
 * return value) the new generation is durable and `state.gen` names it. A
 * poll that finds no change at all yields nothing and keeps the generation.
 *
 * Change ids name the generation, so a poll redone after a crash (same
 * generation, same data) gives the same ids, and a row that goes back to an
 * earlier content later still gives a new id.
 */
export async function* pollDiff(view: ResolvedView, store: GenerationStore, state: DiffState, ctx: PollContext): AsyncGenerator<SourceRecord[], SourceRecord[]> {
  const gen = state.gen + 1;
  const keyCols = view.key;
  const resumed = state.partial && (await store.resume(gen, state.partial.bytes));
  if (state.partial && !resumed) {
    delete state.partial;
    ctx.logger.warn({ view: view.config.name, gen }, `db-poll: the unfinished row hashes of ${view.config.name} (generation ${gen}) are gone; polling it again from the start, with the same change ids`);
  }
  const after = state.partial?.after;
  const writer: GenerationWriter = resumed || (await store.writer(gen));
  const previous = store.rows(state.gen);
  let emitted = after !== undefined;
  let finished = false;
  const record = (op: 'c' | 'u' | 'd', key: unknown[], data: Record<string, unknown>, before: string | undefined, after: string | undefined): SourceRecord =>
    viewRecord(view, op, data, changeId(view, key, `${before ?? '-'}>${after ?? '-'}@${gen}`), { label: 'key', values: key, columns: keyCols }, ctx.pollTime);
  const deleted = (old: StoredRow): SourceRecord =>
    record('d', old[0], rowData(Object.fromEntries(keyCols.map((c, i) => [c.name, old[0][i]])), keyCols), old[1], undefined);
  let out: SourceRecord[] = [];
  let stored: StoredRow[] = [];
  /** Everything up to `key` is handled: its stored rows are written, the chunk's checkpoint says so. */
  const chunk = async (key: unknown[]): Promise<SourceRecord[]> => {
    await writer.append(stored);
    stored = [];
    state.partial = { after: key, bytes: writer.bytes };
    emitted = true;
    const records = out;
    out = [];
    return records;
  };
  try {
    const next = async (): Promise<StoredRow | undefined> => (await previous.next()).value as StoredRow | undefined;
    let old = await next();
    while (old && after && compareTuples(old[0], after, keyCols) <= 0) old = await next();
    for await (const page of keysetPages(view, 'key', { after }, ctx)) {
      for (const { row, tuple: key } of page) {
        const data = rowData(row, view.columns);
        const hash = rowHash(data);
        while (old && compareTuples(old[0], key, keyCols) < 0) {
          out.push(deleted(old));
          if (out.length >= ctx.pageSize) yield await chunk(old[0]);
          old = await next();
        }
        if (old && compareTuples(old[0], key, keyCols) === 0) {
          if (old[1] !== hash) out.push(record('u', key, data, old[1], hash));
          old = await next();
        } else {
          out.push(record('c', key, data, undefined, hash));
        }
        stored.push([key, hash]);
        if (out.length >= ctx.pageSize) yield await chunk(key);
      }
      await writer.append(stored);
      stored = [];
    }
    for (; old; old = await next()) {
      out.push(deleted(old));
      if (out.length >= ctx.pageSize) yield await chunk(old[0]);
    }
    if (!emitted && out.length === 0) {
      await writer.abandon();
      finished = true;
      return [];
    }
    await writer.finish();
    finished = true;
    state.gen = gen;
    delete state.partial;
    return out;
  } finally {
    await previous.return(undefined);
    if (!finished) await writer.close();
  }
}
