import type pg from 'pg';
import type { CheckResult } from '../../agent/plugin/source.js';
import type { ResolvedConfig } from './config.js';
import { quoteIdent, quoteTable } from './config.js';
import { connect, REPLICATION_APPLICATION_NAME } from './connection.js';
import { inspectPublication, inspectSlot, type PublicationState } from './slot.js';
import { describeIdentity, identityFix, identityProblem, inspectTables, type TableState } from './tables.js';

type TextRow = Record<string, string | null>;

/**
 * `ferry check` for postgres-cdc: reads settings and catalogs only, changes
 * nothing. Every failed finding carries the statement that fixes it.
 */
export async function preflight(config: ResolvedConfig): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  let client;
  try {
    client = await connect(config.connection, 'query');
  } catch (error) {
    const e = error as { message?: string; fix?: string };
    return [{ name: 'connection', ok: false, detail: e.message ?? String(error), fix: e.fix ?? 'Check host, port, user and password in `connection`.' }];
  }
  try {
    const one = async (sql: string, params: unknown[] = []): Promise<TextRow> => (await client.query<TextRow>(sql, params)).rows[0] ?? {};
    results.push({ name: 'connection', ok: true, detail: 'connected' });

    const wal = (await one('SHOW wal_level')).wal_level;
    results.push({ name: 'wal_level', ok: wal === 'logical', detail: `wal_level = ${wal}`, fix: 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL' });

    const role = await one('SELECT current_user AS name, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user');
    // As the printed fixes must spell it: a role name may need quotes.
    const roleSql = quoteIdent(String(role.name));
    const canReplicate = role.rolreplication === 't' || role.rolsuper === 't';
    results.push({
      name: 'replication privilege',
      ok: canReplicate,
      detail: canReplicate ? `role ${role.name} may replicate` : `role ${role.name} lacks the REPLICATION attribute`,
      fix: `ALTER ROLE ${roleSql} WITH REPLICATION; -- as a superuser`,
    });

    const pub = await inspectPublication(client, config.publication, config.tables);
    for (const t of await inspectTables(client, config.tables)) {
      const table = t.name;
      if (!t.exists) {
        results.push({ name: `table ${table}`, ok: false, detail: 'does not exist', fix: 'Correct `tables`, or create the table.' });
        continue;
      }
      results.push({ name: `table ${table} select`, ok: t.canSelect, detail: t.canSelect ? 'readable' : 'no SELECT privilege', fix: `GRANT SELECT ON ${quoteTable(table)} TO ${roleSql};` });
      results.push(identityResult(t, config.publication, pub));
    }

    const createPublication = `CREATE PUBLICATION ${config.publication} FOR TABLE ${config.tables.map(quoteTable).join(', ')};`;
    if (!pub.exists) {
      // Ferry creates it at start, but only as the tables' owner with CREATE on
      // the database; otherwise `ferry run` stops on it, so the check must too.
      const barriers = role.rolsuper === 't' ? [] : await publicationBarriers(client, config.tables);
      results.push(
        barriers.length === 0
          ? { name: `publication ${config.publication}`, ok: true, severity: 'warning', detail: 'missing; Ferry creates it at start', fix: createPublication }
          : {
              name: `publication ${config.publication}`,
              ok: false,
              detail: `missing, and role ${role.name} may not create it: ${barriers.map((b) => b.reason).join('; ')}`,
              fix: barriers.some((b) => b.kind === 'owner')
                ? `${createPublication} -- as the owner of the tables or a superuser`
                : `GRANT CREATE ON DATABASE ${quoteIdent(String(barriers[0]!.database))} TO ${roleSql}; -- or, as a superuser: ${createPublication}`,
            },
      );
    } else {
      results.push({
        name: `publication ${config.publication}`,
        ok: pub.missing.length === 0,
        detail: pub.missing.length === 0 ? 'publishes every table' : `does not publish ${pub.missing.join(', ')}`,
        fix: `ALTER PUBLICATION ${config.publication} ADD TABLE ${pub.missing.map(quoteTable).join(', ')};`,
      });
    }

    const slot = await inspectSlot(client, config.slot);
    const database = (await one('SELECT current_database() AS db')).db;
    const otherDb = slot !== undefined && slot.database !== database;
    // A slot held by a Ferry walsender is this pipeline's agent at work (or its twin on another host): a note, not a failure.
    const holder = slot && slot.activePid !== null ? (await one('SELECT application_name FROM pg_stat_activity WHERE pid = $1', [slot.activePid])).application_name : undefined;
    const heldByFerry = holder === REPLICATION_APPLICATION_NAME;
    const slotOk = !slot || (!otherDb && slot.plugin === 'pgoutput' && slot.walStatus !== 'lost' && (slot.activePid === null || heldByFerry));
    results.push({
      name: `slot ${config.slot}`,
      ok: slotOk,
      detail: !slot
        ? 'missing; Ferry creates it at start'
        : otherDb
          ? `belongs to database ${slot.database ?? '(physical slot)'}, not ${database}`
          : slot.walStatus === 'lost'
          ? 'lost: the server removed WAL it needed'
          : slot.activePid !== null && !heldByFerry
            ? `in use by pid ${slot.activePid}${holder ? ` (${holder})` : ''}`
            : slot.plugin !== 'pgoutput'
              ? `uses plugin ${slot.plugin}, not pgoutput`
              : `${heldByFerry ? `read by a Ferry agent now (pid ${slot.activePid}, application_name ${holder}); ` : ''}confirmed up to ${slot.confirmedFlushLsn}, wal_status ${slot.walStatus}`,
      fix: otherDb
        ? 'Slot names are server-wide: give this pipeline another `slot` name.'
        : slot?.activePid
          ? `Stop the other reader (SELECT * FROM pg_stat_replication WHERE pid = ${slot.activePid}) or use another slot.`
          : `SELECT pg_drop_replication_slot('${config.slot}'); -- then restart with snapshot: when_needed`,
    });

    results.push(await freeSlots(client, config.slot, slot !== undefined));
    const senders = await one(`SELECT current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_stat_replication) AS free`);
    results.push({ name: 'free wal senders', ok: Number(senders.free) > 0, detail: `${senders.free} free`, fix: 'ALTER SYSTEM SET max_wal_senders = <more>; then restart PostgreSQL' });

    const keep = (await one('SHOW max_slot_wal_keep_size')).max_slot_wal_keep_size;
    const unlimited = keep === '-1';
    results.push({
      name: 'max_slot_wal_keep_size',
      ok: !unlimited,
      severity: 'warning',
      detail: unlimited
        ? '-1 (unlimited): a slot nobody reads keeps WAL until the disk is full'
        : `${keep}: a slot that falls more than ${keep} of WAL behind (its reader down or slow) is lost (FERRY_SOURCE_POSITION_LOST)`,
      fix: "ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();",
    });
  } catch (error) {
    results.push({ name: 'catalog queries', ok: false, detail: (error as Error).message, fix: 'Check the role may read pg_catalog.' });
  } finally {
    await client.end().catch(() => undefined);
  }
  // A passed check needs no fix; warnings keep theirs (ok or not, they advise).
  return results.map((r) => (r.ok && r.severity !== 'warning' ? { name: r.name, ok: r.ok, detail: r.detail } : r));
}

/** Slots the fix names at most; the rest are counted. */
const NAMED_SLOTS = 5;

/**
 * Whether creating the pipeline's slot would find a free one. An existing slot
 * needs none. The fix names the inactive slots, the candidates to drop: an
 * inactive slot may still be a stopped consumer's, so it is named, not dropped.
 */
async function freeSlots(client: pg.Client, slot: string, exists: boolean): Promise<CheckResult> {
  // The connection returns every value as text. Slot names are [a-z0-9_], so a comma separates them.
  const { rows } = await client.query<TextRow>(
    `SELECT current_setting('max_replication_slots') AS max, count(*) AS used,
            string_agg(slot_name, ',' ORDER BY slot_name) FILTER (WHERE NOT active) AS inactive
       FROM pg_replication_slots`,
  );
  const max = Number(rows[0]?.max);
  const used = Number(rows[0]?.used);
  const inactive = rows[0]?.inactive?.split(',') ?? [];
  const free = Math.max(0, max - used);
  const ok = exists || free > 0;
  const named = inactive.slice(0, NAMED_SLOTS).join(', ') + (inactive.length > NAMED_SLOTS ? ` and ${inactive.length - NAMED_SLOTS} more` : '');
  return {
    name: 'free replication slots',
    ok,
    detail: ok
      ? `${free} of ${max} free${exists ? `; slot ${slot} exists` : ''}`
      : `none free: max_replication_slots = ${max}, ${used} in use; creating slot ${slot} needs one`,
    fix:
      `ALTER SYSTEM SET max_replication_slots = ${max + 1}; then restart PostgreSQL -- ` +
      (inactive.length
        ? `or drop a slot no consumer needs any more (inactive now: ${named}): SELECT pg_drop_replication_slot('<name>');`
        : 'every slot is being read now: none to drop'),
  };
}

type PublicationBarrier = { kind: 'owner' | 'database'; reason: string; database?: string };

/** Why the connected role may not run CREATE PUBLICATION for `tables` (none: it may). Tables that do not exist are reported elsewhere. */
async function publicationBarriers(client: pg.Client, tables: string[]): Promise<PublicationBarrier[]> {
  const barriers: PublicationBarrier[] = [];
  // One round trip for every table, in the configured order.
  const owned = await client.query<TextRow>(
    `SELECT t.name, pg_has_role(c.relowner, 'USAGE') AS owns
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(name, quoted, n)
       JOIN pg_class c ON c.oid = to_regclass(t.quoted)
      ORDER BY t.n`,
    [tables, tables.map(quoteTable)],
  );
  const notOwned = owned.rows.filter((r) => r.owns !== 't').map((r) => String(r.name));
  if (notOwned.length) barriers.push({ kind: 'owner', reason: `it does not own ${notOwned.join(', ')}` });
  const { rows } = await client.query<TextRow>(`SELECT current_database() AS db, has_database_privilege(current_database(), 'CREATE') AS can_create`);
  if (rows[0]?.can_create !== 't') barriers.push({ kind: 'database', reason: `it has no CREATE privilege on database ${rows[0]?.db}`, database: rows[0]?.db ?? '' });
  return barriers;
}

/**
 * A table without a replica identity fails the check whenever `ferry run`
 * would refuse it: Postgres refuses UPDATE and DELETE on such a table in a
 * publication that publishes them, so Ferry must not put it in one.
 */
function identityResult(t: TableState, publication: string, pub: PublicationState): CheckResult {
  const name = `table ${t.name} replica identity`;
  if (t.hasIdentity) return { name, ok: true, detail: `${describeIdentity(t)}${t.identity === 'full' ? ' (before-images on updates and deletes)' : ''}` };
  const problem = identityProblem(t, publication, pub);
  if (!problem) return { name, ok: true, detail: `${describeIdentity(t)}; publication ${publication} publishes inserts only, so no change needs a key` };
  return { name, ok: false, detail: `${describeIdentity(t)}: ${problem}`, fix: `${identityFix(t.name)} -- or add a primary key` };
}
