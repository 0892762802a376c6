import type { Column, PageQuery } from './dialect.js';

/** How one database spells the pieces of a keyset page query. */
export interface SqlSpelling {
  quote(identifier: string): string;
  /** The expression a column is ordered and compared by (binary collation for text). */
  orderExpression(column: Column): string;
  /** Adds a parameter and returns its placeholder (or an inlined, validated literal). */
  param(value: unknown, column: Column | undefined, params: unknown[]): string;
}

/** `schema.view` ⇒ `"schema"."view"` in the given quoting. */
export function quoteName(name: string, spelling: SqlSpelling): string {
  return name.split('.').map((p) => spelling.quote(p)).join('.');
}

/**
 * `SELECT * FROM v WHERE <not null> [AND first >= from] [AND (a, b) > (x, y)] [AND (where)] ORDER BY a, b LIMIT n`.
 * Rows with a NULL order column are left out: a NULL would stop keyset paging.
 */
export function pageSql(q: PageQuery, s: SqlSpelling): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const exprs = q.orderBy.map((c) => s.orderExpression(c));
  const where = q.orderBy.map((c) => `${s.quote(c.name)} IS NOT NULL`);
  const first = q.orderBy[0];
  if (q.from !== undefined && first) where.push(`${s.quote(first.name)} >= ${s.param(q.from, undefined, params)}`);
  if (q.after) {
    const values = q.after.map((v, i) => s.param(v, q.orderBy[i], params));
    where.push(`(${exprs.join(', ')}) > (${values.join(', ')})`);
  }
  // Last, after every placeholder (mysql2 fills `?` in order, so a `?` inside it stays text), and on
  // lines of its own, so a trailing `--` comment cannot swallow the ORDER BY and LIMIT.
  if (q.where !== undefined) where.push(`(\n${q.where}\n)`);
  const sql = `SELECT * FROM ${quoteName(q.view, s)} WHERE ${where.join(' AND ')} ORDER BY ${exprs.join(', ')} LIMIT ${Math.trunc(q.limit)}`;
  return { sql, params };
}

/** `SELECT * FROM v [WHERE (where)]`: what a row estimate is asked for. */
export function selectAllSql(view: string, where: string | undefined, s: SqlSpelling): string {
  return `SELECT * FROM ${quoteName(view, s)}${where === undefined ? '' : ` WHERE (\n${where}\n)`}`;
}
