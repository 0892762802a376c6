import { createConnection as mysqlConnect, type Connection as MysqlConnection } from 'mysql2/promise';
import pg from 'pg';
import { E2E_DELIVERY, mixedWorkload, ordersAndCustomers, rowPipelineWorkspace, type TableRows, type WorkloadDialect } from './change-ledger.js';

const pgClient = pg.Client;

/** The workload's statements in Postgres: RETURNING tells exactly which rows each touched. */
export function postgresDialect(c: pg.Client): WorkloadDialect {
  const rows = async (text: string, values: unknown[]) => (await c.query<{ id: number; version: number }>(text, values)).rows;
  return {
    begin: async () => void (await c.query('BEGIN')),
    commit: async () => void (await c.query('COMMIT')),
    rollback: async () => void (await c.query('ROLLBACK')),
    insert: (t, from, to, note) => rows(`INSERT INTO public.${t} SELECT g, 1, $3 FROM generate_series($1::int, $2::int) g RETURNING id, version`, [from, to, note]),
    update: (t, lo, hi, note) => rows(`UPDATE public.${t} SET version = version + 1, note = $3 WHERE id BETWEEN $1 AND $2 RETURNING id, version`, [lo, hi, note]),
    delete: (t, lo, hi) => rows(`DELETE FROM public.${t} WHERE id BETWEEN $1 AND $2 AND id % 7 = 0 RETURNING id, version`, [lo, hi]),
  };
}

/** The workload's statements in MariaDB (no UPDATE ... RETURNING: the updated range is read back inside the transaction). */
export function mariadbDialect(c: MysqlConnection): WorkloadDialect {
  const rows = async (text: string, values: unknown[]) => (await c.query(text, values))[0] as Array<{ id: number; version: number }>;
  return {
    begin: async () => void (await c.query('START TRANSACTION')),
    commit: async () => void (await c.query('COMMIT')),
    rollback: async () => void (await c.query('ROLLBACK')),
    insert: async (t, from, to, note) => {
      await c.query(`INSERT INTO ${t} SELECT seq, 1, ? FROM seq_${from}_to_${to}`, [note]);
      return Array.from({ length: to - from + 1 }, (_, i) => ({ id: from + i, version: 1 }));
    },
    update: async (t, lo, hi, note) => {
      await c.query(`UPDATE ${t} SET version = version + 1, note = ? WHERE id BETWEEN ? AND ?`, [note, lo, hi]);
      return rows(`SELECT id, version FROM ${t} WHERE id BETWEEN ? AND ?`, [lo, hi]);
    },
    delete: (t, lo, hi) => rows(`DELETE FROM ${t} WHERE id BETWEEN ? AND ? AND id % 7 = 0 RETURNING id, version`, [lo, hi]),
  };
}

/** `mixedWorkload` on its own Postgres connection to `url`. */
export function postgresWorkload(url: string): (changes: number, firstNewId?: number) => Promise<Set<string>> {
  return async (changes, firstNewId) => {
    const c = new pgClient({ connectionString: url });
    await c.connect();
    try {
      return await mixedWorkload(postgresDialect(c), changes, firstNewId);
    } finally {
      await c.end();
    }
  };
}

/** `mixedWorkload` on its own MariaDB connection to `url`. */
export function mariadbWorkload(url: string): (changes: number, firstNewId?: number) => Promise<Set<string>> {
  return async (changes, firstNewId) => {
    const c = await mysqlConnect(url);
    try {
      return await mixedWorkload(mariadbDialect(c), changes, firstNewId);
    } finally {
      await c.end();
    }
  };
}

/** The rows of the end-to-end `tables` in the Postgres database at `url`, keyed `table/id` (see replayedTables). */
export async function postgresTableRows(url: string, tables: readonly string[]): Promise<TableRows> {
  const c = new pgClient({ connectionString: url });
  await c.connect();
  try {
    return await tableRows(tables, async (t) => (await c.query<{ id: number; version: number; note: string }>(`SELECT id, version, note FROM public.${t}`)).rows);
  } finally {
    await c.end();
  }
}

/** The rows of the end-to-end `tables` in the MariaDB database at `url`, keyed `table/id`. */
export async function mariadbTableRows(url: string, tables: readonly string[]): Promise<TableRows> {
  const c = await mysqlConnect(url);
  try {
    return await tableRows(tables, async (t) => (await c.query(`SELECT id, version, note FROM ${t}`))[0] as Array<{ id: number; version: number; note: string }>);
  } finally {
    await c.end();
  }
}

async function tableRows(tables: readonly string[], select: (table: string) => Promise<Array<{ id: number; version: number; note: string }>>): Promise<TableRows> {
  const rows: TableRows = new Map();
  for (const t of tables) for (const r of await select(t)) rows.set(`${t}/${r.id}`, { version: Number(r.version), note: String(r.note) });
  return rows;
}

/** The workspace of a postgres-cdc end-to-end test over `orders` and `customers` (see rowPipelineWorkspace). */
export function postgresCdcWorkspace(opts: { name: string; prefix: string; url: string; slot: string; publication: string }): { dir: string; config: string; out: string } {
  return rowPipelineWorkspace({
    name: opts.name,
    prefix: opts.prefix,
    logLevel: 'warn',
    tables: ordersAndCustomers((t) => `public.${t}`),
    delivery: E2E_DELIVERY,
    source: `      type: postgres-cdc
      connection: "${opts.url}"
      publication: ${opts.publication}
      slot: ${opts.slot}
      tables: [public.orders, public.customers]
      snapshot: initial
      heartbeatMs: 1000`,
  });
}

/** The workspace of a mysql-cdc end-to-end test over `DATABASE.orders` and `DATABASE.customers`. */
export function mysqlCdcWorkspace(opts: { name: string; prefix: string; url: string; database: string; logLevel?: string }): { dir: string; config: string; out: string } {
  return rowPipelineWorkspace({
    name: opts.name,
    prefix: opts.prefix,
    logLevel: opts.logLevel ?? 'warn',
    tables: ordersAndCustomers((t) => `${opts.database}.${t}`),
    delivery: E2E_DELIVERY,
    source: `      type: mysql-cdc
      connection: "${opts.url}"
      serverId: ${5000 + Math.floor(Math.random() * 4000)}
      tables: [${opts.database}.orders, ${opts.database}.customers]
      snapshot: initial`,
  });
}
