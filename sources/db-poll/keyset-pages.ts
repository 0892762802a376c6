import type { Row } from './dialects/dialect.js';
import { compareTuples } from './key-order.js';
import { notAscending, type PollContext, type ResolvedView } from './poll-context.js';
import { tupleOf } from './row-hash.js';

/** A row and its order tuple (cursor or key values, in the driver's form). */
export interface PagedRow {
  row: Row;
  tuple: unknown[];
}

/**
 * Keyset pages of a view ordered by `view.orderBy`: rows after `start.after`
 * (and from `start.from` on the first column, and meeting `start.where`),
 * one query per page, until a short page. Each tuple must be above the one before it, else the order
 * columns are not unique and paging would skip rows: that stops the poll.
 */
export async function* keysetPages(view: ResolvedView, field: 'key' | 'cursor', start: { after?: unknown[]; from?: string; where?: string }, ctx: PollContext): AsyncGenerator<PagedRow[]> {
  const orderBy = view.orderBy;
  let after = start.after;
  let previous: unknown[] | undefined;
  for (;;) {
    const rows = await ctx.run(ctx.dialect.page({ view: view.config.name, orderBy, after, from: start.from, where: start.where, limit: ctx.pageSize }, ctx.queryTimeoutMs));
    const page: PagedRow[] = [];
    for (const row of rows) {
      const tuple = tupleOf(row, orderBy);
      if (previous && compareTuples(tuple, previous, orderBy) <= 0) throw notAscending(view, field, previous, tuple);
      previous = tuple;
      page.push({ row, tuple });
    }
    if (page.length > 0) yield page;
    if (rows.length < ctx.pageSize) return;
    after = previous;
  }
}
