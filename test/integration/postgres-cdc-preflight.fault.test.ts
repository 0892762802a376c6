import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFerry, uniquePrefix } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery, withClient } from '../support/postgres.js';
import { restartPostgres } from '../support/server-restart.js';
import { RetryableError } from '../../agent/errors/index.js';
import { resolveConfig } from '../../sources/postgres-cdc/config.js';
import { PostgresCdcSource } from '../../sources/postgres-cdc/postgres-cdc-source.js';
import { context } from './postgres-cdc.helpers.js';

/**
 * `ferry check` on postgres-cdc against server-wide state the role cannot
 * change: every replication slot taken, `wal_level` below logical, and
 * `max_slot_wal_keep_size`. Each failure is shown through the real CLI (exit
 * code, the finding's line, its fix), then the fix is applied and the check
 * passes. A fault test: it fills the server's slots and restarts it, so it
 * runs alone after the rest (vitest.fault.config.ts), and it puts every
 * setting back, failing loudly if it cannot.
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const suffix = randomBytes(4).toString('hex');
const DB = `ferry_pgpreflight_${suffix}`;
const SLOT = `${DB}_slot`;
/** Throwaway physical slots that fill the server; all of them carry this prefix. */
const FILLER = `ferry_filler_${suffix}_`;

beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  await pgQuery(`postgres://postgres@127.0.0.1:5432/${DB}`, `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text)`);
});

afterAll(async () => {
  await dropFillers();
  await dropDatabaseAndSlots(ADMIN, DB);
});

function workspace(): string {
  return rowPipelineWorkspace({
    name: 'pg-preflight',
    prefix: uniquePrefix('pgpreflight'),
    tables: [{ mapping: 'orders', entity: 'order', table: 'public.orders' }],
    source: `      type: postgres-cdc
      connection: "postgres://postgres@127.0.0.1:5432/${DB}"
      publication: ferry_preflight
      slot: ${SLOT}
      tables: [public.orders]`,
  }).config;
}

/** The source's failed findings as printed: each `✗` line with the `fix:` line under it. */
function failures(stdout: string): Array<{ line: string; fix: string | undefined }> {
  const lines = stdout.split('\n');
  return lines.flatMap((line, i) => (line.startsWith('✗ shop/source (postgres-cdc)') ? [{ line, fix: /^\s+fix: (.*)$/.exec(lines[i + 1] ?? '')?.[1] }] : []));
}

/** `ferry check` expected to fail on exactly one finding of the source; returns it. */
async function failsOnOne(config: string): Promise<{ line: string; fix: string }> {
  const r = await runFerry(['check', '--config', config]);
  expect(r.code, r.stdout + r.stderr).toBe(1);
  const found = failures(r.stdout);
  expect(found, r.stdout).toHaveLength(1);
  expect(r.stdout).toContain('1 check failed');
  expect(found[0]!.fix, r.stdout).toBeDefined();
  return { line: found[0]!.line, fix: found[0]!.fix! };
}

/** `ferry check` expected to pass; returns its output. */
async function passes(config: string): Promise<string> {
  const r = await runFerry(['check', '--config', config]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toContain('All checks passed.');
  return r.stdout;
}

async function dropFillers(): Promise<void> {
  await pgQuery(ADMIN, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE starts_with(slot_name, $1)`, [FILLER]);
}

async function show(setting: string): Promise<string> {
  return String((await pgQuery(ADMIN, `SHOW ${setting}`))[0]![setting]);
}

/** `wal_level` as the server runs it, and as its configuration files will set it at the next start. */
async function walLevel(): Promise<{ running: string; configured: string | undefined }> {
  const [row] = await pgQuery(
    ADMIN,
    `SELECT current_setting('wal_level') AS running,
            (SELECT setting FROM pg_file_settings WHERE name = 'wal_level' ORDER BY seqno DESC LIMIT 1) AS configured`,
  );
  return { running: String(row!.running), configured: row!.configured ?? undefined };
}

/**
 * Puts `wal_level = logical` back in the configuration and in the running
 * server. The usual way is ALTER SYSTEM and a restart. If the server does not
 * answer (PostgreSQL refuses to start below logical while a logical slot
 * exists, one created meanwhile by someone else), it is started with
 * `-c wal_level=logical` on its command line first. Throws, naming the manual
 * fix, when logical could not be restored: every postgres-cdc test needs it.
 */
async function restoreLogicalWalLevel(): Promise<void> {
  const isLogical = async () => {
    const w = await walLevel();
    return w.running === 'logical' && w.configured === 'logical';
  };
  if (await isLogical().catch(() => false)) return;
  const errors: unknown[] = [];
  for (const settings of [undefined, { wal_level: 'logical' }]) {
    try {
      if (settings) await restartPostgres({ settings });
      await pgQuery(ADMIN, `ALTER SYSTEM SET wal_level = logical`);
      await restartPostgres();
      if (await isLogical()) return;
      errors.push(new Error(`after the restart: ${JSON.stringify(await walLevel())}`));
    } catch (error) {
      errors.push(error);
    }
  }
  throw new AggregateError(
    errors,
    'PostgreSQL could not be put back to wal_level = logical, which every postgres-cdc test needs. By hand: ' +
      "set wal_level = 'logical' in postgresql.auto.conf (data directory), then pg_ctlcluster --skip-systemctl-redirect 15 main restart",
  );
}

/** Sets `max_slot_wal_keep_size` and reloads; returns once new sessions see it. */
async function setKeepSize(value: string): Promise<void> {
  await pgQuery(ADMIN, `ALTER SYSTEM SET max_slot_wal_keep_size = '${value}'`);
  await reloadUntil(value);
}

async function reloadUntil(value: string): Promise<void> {
  await pgQuery(ADMIN, 'SELECT pg_reload_conf()');
  const deadline = Date.now() + 10_000;
  while ((await show('max_slot_wal_keep_size')) !== value) {
    if (Date.now() > deadline) throw new Error(`max_slot_wal_keep_size is not ${value} 10 s after the reload`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('ferry check on postgres-cdc server settings', () => {
  it('fails when no replication slot is free, naming the inactive slots; dropping one of them fixes it', async () => {
    const config = workspace();
    try {
      await withClient(ADMIN, async (c) => {
        const { rows } = await c.query<{ free: number }>(`SELECT current_setting('max_replication_slots')::int - count(*)::int AS free FROM pg_replication_slots`);
        for (let i = 0; i < rows[0]!.free; i++) await c.query('SELECT pg_create_physical_replication_slot($1)', [`${FILLER}${i}`]);
        // Full as Postgres counts it: one more is refused.
        await expect(c.query('SELECT pg_create_physical_replication_slot($1)', [`${FILLER}extra`])).rejects.toMatchObject({ code: '53400' });
      });
      const max = Number(await show('max_replication_slots'));
      const inactive = (await pgQuery(ADMIN, 'SELECT slot_name FROM pg_replication_slots WHERE NOT active')).map((r) => String(r.slot_name));

      const { line, fix } = await failsOnOne(config);
      expect(line).toMatch(new RegExp(`free replication slots +none free: max_replication_slots = ${max}, ${max} in use; creating slot ${SLOT} needs one$`));
      const parts = new RegExp(`^ALTER SYSTEM SET max_replication_slots = ${max + 1}; then restart PostgreSQL -- or drop a slot no consumer needs any more \\(inactive now: (.+?)(?: and (\\d+) more)?\\): SELECT pg_drop_replication_slot\\('<name>'\\);$`).exec(fix);
      expect(parts, fix).not.toBeNull();
      const named = parts![1]!.split(', ');
      // Up to five named, the rest counted; every one is an inactive slot of the server.
      expect(named.length).toBe(Math.min(5, inactive.length));
      expect(named.length + Number(parts![2] ?? 0)).toBe(inactive.length);
      for (const name of named) expect(inactive).toContain(name);

      // `ferry run` meets the same full server: a retryable wait that says what is full and how to make room,
      // not a bare "connection failed".
      const source = new PostgresCdcSource(
        resolveConfig({ type: 'postgres-cdc', connection: `postgres://postgres@127.0.0.1:5432/${DB}`, publication: 'ferry_preflight', slot: SLOT, tables: ['public.orders'] }),
      );
      const err = await source.open(undefined, context()).then(() => undefined, (e: unknown) => e);
      await source.close();
      expect(err).toBeInstanceOf(RetryableError);
      expect(err).toMatchObject({ code: 'FERRY_SOURCE_UNAVAILABLE', message: expect.stringContaining('has no free replication slot'), fix: expect.stringContaining('max_replication_slots') });

      // The fix, as an operator would follow it: drop a named slot nobody needs (one of ours).
      const ours = named.find((n) => n.startsWith(FILLER));
      expect(ours, `none of ${named.join(', ')} is a filler slot`).toBeDefined();
      await pgQuery(ADMIN, 'SELECT pg_drop_replication_slot($1)', [ours]);
      expect(await passes(config)).toMatch(new RegExp(`^✓ shop/source \\(postgres-cdc\\) +free replication slots +1 of ${max} free$`, 'm'));
    } finally {
      await dropFillers();
    }
    expect(await pgQuery(ADMIN, `SELECT slot_name FROM pg_replication_slots WHERE starts_with(slot_name, $1)`, [FILLER])).toEqual([]);
  });

  it('fails on wal_level = replica and prints the ALTER SYSTEM and restart that fix it', async () => {
    const config = workspace();
    // PostgreSQL does not start below logical while a logical slot exists: do not take the shared server down.
    const logical = await pgQuery(ADMIN, `SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'logical'`);
    expect(logical, 'logical slots exist: PostgreSQL would not start with wal_level = replica').toEqual([]);
    try {
      await pgQuery(ADMIN, 'ALTER SYSTEM SET wal_level = replica');
      await restartPostgres();
      expect(await show('wal_level')).toBe('replica');

      const { line, fix } = await failsOnOne(config);
      expect(line).toMatch(/wal_level +wal_level = replica$/);
      expect(fix).toBe('ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');

      // The fix, as printed: the statement, then the restart.
      await pgQuery(ADMIN, fix.slice(0, fix.indexOf(';') + 1));
      await restartPostgres();
      expect(await passes(config)).toMatch(/^✓ shop\/source \(postgres-cdc\) +wal_level +wal_level = logical$/m);
    } finally {
      await restoreLogicalWalLevel();
    }
    expect(await walLevel()).toEqual({ running: 'logical', configured: 'logical' });
  });

  it('reports max_slot_wal_keep_size with its value: a warning with a fix when unlimited', async () => {
    const config = workspace();
    const [before] = await pgQuery(
      ADMIN,
      `SELECT current_setting('max_slot_wal_keep_size') AS value,
              EXISTS (SELECT 1 FROM pg_file_settings WHERE name = 'max_slot_wal_keep_size' AND sourcefile LIKE '%postgresql.auto.conf') AS altered`,
    );
    try {
      // Far more than any slot here lags, so no test's slot is lost meanwhile.
      await setKeepSize('100GB');
      expect(await passes(config)).toMatch(
        /^✓ shop\/source \(postgres-cdc\) +max_slot_wal_keep_size +100GB: a slot that falls more than 100GB of WAL behind \(its reader down or slow\) is lost \(FERRY_SOURCE_POSITION_LOST\)$/m,
      );

      // Unlimited is advice, not a failure: `!`, the fix under it, exit 0.
      await setKeepSize('-1');
      const out = await passes(config);
      expect(out).toMatch(/^! shop\/source \(postgres-cdc\) +max_slot_wal_keep_size +-1 \(unlimited\): a slot nobody reads keeps WAL until the disk is full\n +fix: ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf\(\);$/m);
    } finally {
      await pgQuery(ADMIN, before!.altered ? `ALTER SYSTEM SET max_slot_wal_keep_size = '${before!.value}'` : 'ALTER SYSTEM RESET max_slot_wal_keep_size');
      await reloadUntil(String(before!.value));
    }
  });
});
