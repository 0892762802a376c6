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

/** Drops a test database and its replication slots, after ending whatever still reads them. */
export async function dropDatabaseAndSlots(adminUrl: string, database: string): Promise<void> {
  await pgQuery(adminUrl, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [database]).catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  await pgQuery(adminUrl, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [database]).catch(() => {});
  await pgQuery(adminUrl, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
}
