import type pg from 'pg';
import { FerryError } from '../../agent/errors/index.js';
import { quoteTable } from './config.js';
import type { PublicationState } from './slot.js';

/** A table of `tables` as the catalog shows it. */
export interface TableState {
  /** As configured: `schema.table`. */
  name: string;
  exists: boolean;
  canSelect: boolean;
  identity: 'default' | 'full' | 'index' | 'nothing';
  hasPrimaryKey: boolean;
  /**
   * Whether an UPDATE or DELETE has an old key to write to the WAL. Without
   * one, Postgres refuses UPDATE and DELETE on the table outright while a
   * publication that publishes them contains it.
   */
  hasIdentity: boolean;
}

type TextRow = Record<string, string | null>;

const IDENTITY = { d: 'default', f: 'full', i: 'index', n: 'nothing' } as const;

/** Reads every configured table in one round trip, in the configured order. */
export async function inspectTables(client: pg.Client, tables: string[]): Promise<TableState[]> {
  const { rows } = await client.query<TextRow>(
    `SELECT t.name, c.oid IS NOT NULL AS exists, c.relreplident,
            has_table_privilege(c.oid, 'SELECT') AS can_select,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident) AS has_identity_index
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(name, quoted, n)
       LEFT JOIN pg_class c ON c.oid = to_regclass(t.quoted)
      ORDER BY t.n`,
    [tables, tables.map(quoteTable)],
  );
  return rows.map((r) => {
    const identity = IDENTITY[(r.relreplident ?? 'd') as keyof typeof IDENTITY] ?? 'default';
    const hasPrimaryKey = r.has_pk === 't';
    return {
      name: String(r.name),
      exists: r.exists === 't',
      canSelect: r.can_select === 't',
      identity,
      hasPrimaryKey,
      // USING INDEX whose index was dropped since logs no key either: Postgres treats it as NOTHING.
      hasIdentity: identity === 'full' || (identity === 'default' && hasPrimaryKey) || (identity === 'index' && r.has_identity_index === 't'),
    };
  });
}

/** `REPLICA IDENTITY DEFAULT, no primary key` and the like: what the table lacks. */
export function describeIdentity(t: TableState): string {
  const dropped = t.identity === 'index' && !t.hasIdentity ? ' (its index was dropped)' : '';
  return `REPLICA IDENTITY ${t.identity.toUpperCase()}${dropped}${t.hasPrimaryKey ? '' : ', no primary key'}`;
}

/** The statement that gives the table an identity without touching its data. */
export function identityFix(table: string): string {
  return `ALTER TABLE ${quoteTable(table)} REPLICA IDENTITY FULL;`;
}

/**
 * Why a table without a replica identity stops the pipeline, given the
 * publication: undefined when it does not (the publication publishes
 * inserts only, so Postgres refuses nothing and no change needs a key).
 */
export function identityProblem(t: TableState, publication: string, pub: PublicationState): string | undefined {
  if (!t.exists || t.hasIdentity) return undefined;
  const refused = "every UPDATE and DELETE on it, the application's own included";
  if (!pub.exists) return `in publication ${publication}, which Ferry would create, Postgres would refuse ${refused}`;
  if (!pub.publishesUpdatesOrDeletes) return undefined;
  if (pub.missing.includes(t.name)) return `added to publication ${publication}, it would make Postgres refuse ${refused}`;
  return `publication ${publication} publishes it, so Postgres already refuses ${refused}, and the stream has no key for its changes`;
}

/**
 * What `open` does before the publication step: a missing table is a
 * config error (exit 2), a table the publication would break is refused
 * before Ferry creates anything.
 */
export function requireCapturableTables(states: TableState[], publication: string, pub: PublicationState, pipeline: string, where: string): void {
  const missing = states.filter((t) => !t.exists).map((t) => t.name);
  if (missing.length > 0) {
    throw new FerryError('FERRY_CONFIG_INVALID', `pipeline ${pipeline}: ${missing.length === 1 ? 'table' : 'tables'} ${missing.join(', ')} of source.tables ${missing.length === 1 ? 'does' : 'do'} not exist (${where})`, {
      // A field path the runtime can turn into ferry.yaml:LINE of the list item.
      where: 'source.tables',
      fix: `Create ${missing.length === 1 ? 'the table' : 'the tables'}, or correct \`tables\` (schema.table, as the catalog spells it).`,
    });
  }
  const problems = states.flatMap((t) => {
    const problem = identityProblem(t, publication, pub);
    return problem ? [{ table: t.name, problem: `${t.name} has ${describeIdentity(t)}: ${problem}` }] : [];
  });
  if (problems.length === 0) return;
  throw new FerryError('FERRY_PREFLIGHT_FAILED', `pipeline ${pipeline}: ${problems.map((p) => p.problem).join('; ')}`, {
    where: `pipeline ${pipeline}, source.tables (${where})`,
    fix: `${problems.map((p) => identityFix(p.table)).join(' ')} -- or give ${problems.length === 1 ? 'the table' : 'each table'} a primary key; then start Ferry again.`,
  });
}
