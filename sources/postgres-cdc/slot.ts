import type pg from 'pg';
import { FerryError } from '../../agent/errors/index.js';
import { connect, slotInUse, toFerryError } from './connection.js';
import { quoteIdent, quoteTable } from './config.js';
import { normaliseLsn } from './lsn.js';

/** A replication slot as pg_replication_slots shows it. */
export interface SlotState {
  plugin: string | null;
  database: string | null;
  activePid: number | null;
  confirmedFlushLsn: string | null;
  /** `reserved`, `extended`, `unreserved` or `lost` (Postgres 13+). */
  walStatus: string | null;
}

// The query client returns every value as text (see connection.ts).
type TextRow = Record<string, string | null>;

export async function inspectSlot(client: pg.Client, slot: string): Promise<SlotState | undefined> {
  const { rows } = await client.query<TextRow>(
    `SELECT plugin, database, active_pid, confirmed_flush_lsn, wal_status
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    plugin: row.plugin ?? null,
    database: row.database ?? null,
    activePid: row.active_pid ? Number(row.active_pid) : null,
    confirmedFlushLsn: row.confirmed_flush_lsn ? normaliseLsn(row.confirmed_flush_lsn) : null,
    walStatus: row.wal_status ?? null,
  };
}

/**
 * Waits a little for a slot held by another connection to come free: after a
 * reconnect, Ferry's own previous walsender may still be shutting down.
 * Still held after `waitMs` ⇒ FERRY_SOURCE_SLOT_IN_USE naming the pid.
 */
export async function waitForSlotFree(client: pg.Client, slot: string, where: string, waitMs: number): Promise<SlotState | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const state = await inspectSlot(client, slot);
    if (!state || state.activePid === null) return state;
    if (Date.now() >= deadline) throw slotInUse(slot, state.activePid, where);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A slot created with an exported snapshot; the snapshot lives as long as `holder` stays open and idle. */
export interface ExportedSlot {
  holder: pg.Client;
  consistentPoint: string;
  snapshotName: string;
}

/**
 * Creates the slot over a replication connection with EXPORT_SNAPSHOT: the
 * snapshot shows the database exactly as of the slot's consistent point, so
 * a snapshot read in it plus the stream from that point miss and repeat nothing.
 */
export async function createSlotWithSnapshot(connection: string, slot: string, where: string, opts: { temporary?: boolean } = {}): Promise<ExportedSlot> {
  const holder = await connect(connection, 'replication');
  try {
    // A TEMPORARY slot lives only as long as `holder`: used for its exported snapshot and consistent point alone.
    const { rows } = await holder.query<TextRow>(`CREATE_REPLICATION_SLOT ${quoteIdent(slot)}${opts.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput EXPORT_SNAPSHOT`);
    const row = rows[0];
    if (!row?.consistent_point || !row.snapshot_name) throw new Error('CREATE_REPLICATION_SLOT returned no snapshot');
    return { holder, consistentPoint: normaliseLsn(row.consistent_point), snapshotName: row.snapshot_name };
  } catch (error) {
    await holder.end().catch(() => undefined);
    throw toFerryError(error, where);
  }
}

/** Creates the slot without a snapshot (snapshot: never); returns its consistent point. */
export async function createSlot(client: pg.Client, slot: string): Promise<string> {
  const { rows } = await client.query<TextRow>(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return normaliseLsn(rows[0]?.lsn ?? '0/0');
}

export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
}

/** Bytes of WAL the server keeps for this slot beyond what Ferry confirmed. */
export async function slotLagBytes(client: pg.Client, slot: string): Promise<number | undefined> {
  const { rows } = await client.query<TextRow>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const lag = rows[0]?.lag;
  return lag ? Number(lag) : undefined;
}

/** The publication as far as Ferry cares: whether it exists, which of `tables` it lacks, and whether it publishes updates or deletes. */
export interface PublicationState {
  exists: boolean;
  /** Tables of `tables` it does not publish (all of them when it does not exist). */
  missing: string[];
  /** Ferry creates it with the default `publish`, which includes both: true when it does not exist. */
  publishesUpdatesOrDeletes: boolean;
}

export async function inspectPublication(client: pg.Client, publication: string, tables: string[]): Promise<PublicationState> {
  const pub = await client.query<TextRow>(`SELECT puballtables, pubupdate OR pubdelete AS changes FROM pg_publication WHERE pubname = $1`, [publication]);
  const row = pub.rows[0];
  if (!row) return { exists: false, missing: tables, publishesUpdatesOrDeletes: true };
  const publishesUpdatesOrDeletes = row.changes === 't';
  if (row.puballtables === 't') return { exists: true, missing: [], publishesUpdatesOrDeletes };
  const { rows } = await client.query<TextRow>(`SELECT schemaname || '.' || tablename AS name FROM pg_publication_tables WHERE pubname = $1`, [publication]);
  const published = new Set(rows.map((r) => r.name));
  return { exists: true, missing: tables.filter((t) => !published.has(t)), publishesUpdatesOrDeletes };
}

/**
 * Creates the publication for the configured tables when it is missing. An
 * existing publication is used as given (an operator may manage it); tables
 * it lacks are returned, since their changes would silently not arrive.
 * The source checks the tables first (tables.ts): that they exist, and that
 * publishing them does not make Postgres refuse the application's writes.
 * `known`: the publication as the caller just read it.
 */
export async function ensurePublication(client: pg.Client, publication: string, tables: string[], where: string, known?: PublicationState): Promise<string[]> {
  const pub = known ?? (await inspectPublication(client, publication, tables));
  if (pub.exists) return pub.missing;
  const sql = `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tables.map(quoteTable).join(', ')}`;
  try {
    await client.query(sql);
  } catch (error) {
    const e = error as { code?: string; message?: string };
    if (e.code === '42501') {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `cannot create publication ${publication}: ${e.message}`, {
        where,
        fix: `Run as the tables' owner or a superuser: ${sql};`,
        cause: error,
      });
    }
    if (e.code === '42P01') {
      // Dropped between the table check and here.
      throw new FerryError('FERRY_CONFIG_INVALID', `cannot create publication ${publication}: ${e.message}`, {
        where: `${where}, source.tables`,
        fix: 'Create the table, or correct `tables`.',
        cause: error,
      });
    }
    throw toFerryError(error, where);
  }
  return [];
}
