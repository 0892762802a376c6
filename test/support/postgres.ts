import pg from 'pg';

/** Runs `fn` on a fresh connection to `url`, closed afterwards whatever happens. */
export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** One statement (or several, without parameters) on its own connection; returns the rows. */
export function pgQuery(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  return withClient(url, async (c) => (await c.query(text, values)).rows);
}
