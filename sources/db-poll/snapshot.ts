import { FerryError } from '../../agent/errors/index.js';
import type { SnapshotBatch } from '../../agent/plugin/source.js';
import type { ViewConfig } from './config.js';
import { keysetPages } from './keyset-pages.js';
import { changeId, viewRecord, type PollContext, type ResolvedView } from './poll-context.js';
import { rowData, rowHash } from './row-hash.js';

/**
 * The views `ferry snapshot -t` names (every configured view when none),
 * with their index in `source.views`. An unknown name is a usage error.
 */
export function snapshotTargets(views: readonly ViewConfig[], tables: readonly string[] | undefined): Array<[index: number, view: ViewConfig]> {
  const all = views.map((view, index): [number, ViewConfig] => [index, view]);
  if (!tables || tables.length === 0) return all;
  return tables.map((name) => {
    const found = all.find(([, v]) => v.name === name);
    if (!found) {
      throw new FerryError('FERRY_USAGE', `db-poll does not poll "${name}"`, { where: '--table', fix: `Use one of the views in source.views: ${views.map((v) => v.name).join(', ')}.` });
    }
    return found;
  });
}

/**
 * `ferry snapshot --where`: one SQL condition, passed into the read-only
 * query. A `;` could end the statement (and the READ ONLY transaction) and
 * start another, so it is refused outright, even inside a string literal.
 */
export function snapshotCondition(where: string | undefined): string | undefined {
  if (where === undefined || where.trim() === '') return undefined;
  if (where.includes(';')) {
    throw new FerryError('FERRY_USAGE', `--where must be a single SQL condition without ";": ${where}`, {
      where: '--where',
      fix: 'Remove the ";" (a condition such as `id > 10 AND status = \'open\'` needs none).',
    });
  }
  return where;
}

/**
 * Reads one view for `ferry snapshot`: keyset pages in key order (whatever
 * the view's mode), each page its own READ ONLY transaction under the
 * statement timeout, as op `r` records. Change ids are the polling ones
 * prefixed with `snapshot:<runId>:`, so they never collide with polled
 * changes and a repeated run makes new events. `estimate` (the planner's) is
 * the progress total until the view is read; the last batch, empty, carries
 * the exact count.
 */
export async function* snapshotView(view: ResolvedView, where: string | undefined, runId: string, estimate: number | undefined, ctx: PollContext): AsyncGenerator<SnapshotBatch> {
  const byKey: ResolvedView = { ...view, orderBy: view.key };
  const table = view.config.name;
  let rowsDone = 0;
  for await (const page of keysetPages(byKey, 'key', { where }, ctx)) {
    rowsDone += page.length;
    const records = page.map(({ row, tuple: key }) => {
      const data = rowData(row, view.columns);
      return viewRecord(view, 'r', data, `snapshot:${runId}:${changeId(view, key, rowHash(data))}`, { label: 'key', values: key, columns: view.key }, ctx.pollTime);
    });
    yield { records, progress: { table, rowsDone, rowsTotal: estimate === undefined ? undefined : Math.max(estimate, rowsDone) } };
  }
  yield { records: [], progress: { table, rowsDone, rowsTotal: rowsDone } };
}
