import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';
import { resolveConfig } from '../../sources/postgres-cdc/config.js';
import { PostgresCdcSource } from '../../sources/postgres-cdc/postgres-cdc-source.js';
import { context } from './postgres-cdc.helpers.js';

/**
 * Tables Ferry must not publish: one without a replica identity (no primary
 * key under REPLICA IDENTITY DEFAULT, or NOTHING) makes Postgres refuse the
 * legacy application's own UPDATE and DELETE on it once it is in a
 * publication; one that does not exist is a mistake in `tables`. Both stop
 * `ferry check` and `ferry run` before anything is created, through the real CLI.
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_pgkeyless_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const prefixes: string[] = [];
const running: FerryProcess[] = [];

beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  await pgQuery(
    URL,
    `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text);
     CREATE TABLE public.notes (id integer, version integer, note text);
     INSERT INTO public.notes VALUES (1, 1, 'kept by the ERP');
     CREATE TABLE public.legacy (id integer, version integer, note text);
     INSERT INTO public.legacy VALUES (1, 1, 'published by its DBA');
     CREATE TABLE public.inserts_only (id integer, version integer, note text);
     CREATE TABLE public.nothing (id integer PRIMARY KEY, version integer, note text);
     ALTER TABLE public.nothing REPLICA IDENTITY NOTHING;`,
  );
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropDatabaseAndSlots(ADMIN, DB);
  for (const p of prefixes) await deleteRedisPrefix(p);
});

function workspace(publication: string, tables: string[]): string {
  const prefix = uniquePrefix('pgkeyless');
  prefixes.push(prefix);
  return rowPipelineWorkspace({
    name: 'pg-keyless',
    prefix,
    tables: tables.map((t) => ({ mapping: t, entity: t, table: `public.${t}` })),
    source: `      type: postgres-cdc
      connection: "${URL}"
      publication: ${publication}
      slot: ${DB}_${publication}
      tables: [${tables.map((t) => `public.${t}`).join(', ')}]`,
  }).config;
}

/** The source's failed findings as printed: each `✗` line with the `fix:` line under it. */
function failures(stdout: string): Array<{ line: string; fix: string | undefined }> {
  const lines = stdout.split('\n');
  return lines.flatMap((line, i) => (line.startsWith('✗ shop/source (postgres-cdc)') ? [{ line, fix: /^\s+fix: (.*)$/.exec(lines[i + 1] ?? '')?.[1] }] : []));
}

const publicationExists = async (name: string) => (await pgQuery(URL, `SELECT 1 FROM pg_publication WHERE pubname = $1`, [name])).length > 0;
const slotExists = async (name: string) => (await pgQuery(ADMIN, `SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).length > 0;

describe('postgres-cdc on a table without a replica identity', () => {
  it("fails ferry check with the fix, refuses ferry run before publishing it (the application's UPDATE and DELETE keep working), and runs once the fix is applied", async () => {
    const config = workspace('ferry_keyless', ['orders', 'notes']);
    const check = await runFerry(['check', '--config', config]);
    expect(check.code, check.stdout + check.stderr).toBe(1);
    expect(failures(check.stdout)).toEqual([
      {
        line: expect.stringMatching(
          /table public\.notes replica identity +REPLICA IDENTITY DEFAULT, no primary key: in publication ferry_keyless, which Ferry would create, Postgres would refuse every UPDATE and DELETE on it, the application's own included$/,
        ),
        fix: 'ALTER TABLE "public"."notes" REPLICA IDENTITY FULL; -- or add a primary key',
      },
    ]);

    const run = await runFerry(['run', '--config', config]);
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(
      "ferry: FERRY_PREFLIGHT_FAILED: pipeline shop: public.notes has REPLICA IDENTITY DEFAULT, no primary key: in publication ferry_keyless, which Ferry would create, Postgres would refuse every UPDATE and DELETE on it, the application's own included",
    );
    expect(run.stderr).toContain('fix: ALTER TABLE "public"."notes" REPLICA IDENTITY FULL; -- or give the table a primary key; then start Ferry again.');
    // Nothing was created, so the legacy application writes as before.
    expect(await publicationExists('ferry_keyless')).toBe(false);
    expect(await slotExists(`${DB}_ferry_keyless`)).toBe(false);
    await pgQuery(URL, `UPDATE public.notes SET version = 2 WHERE id = 1`);
    await pgQuery(URL, `DELETE FROM public.notes WHERE id = 1; INSERT INTO public.notes VALUES (1, 3, 'kept by the ERP')`);

    await pgQuery(URL, failures(check.stdout)[0]!.fix!);
    const fixed = await runFerry(['check', '--config', config]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(/^✓ shop\/source \(postgres-cdc\) +table public\.notes replica identity +REPLICA IDENTITY FULL, no primary key \(before-images on updates and deletes\)$/m);

    const agent = startAgent(config);
    running.push(agent);
    await waitFor('the agent streaming from its slot', async () => (await pgQuery(ADMIN, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [`${DB}_ferry_keyless`]))[0]?.active_pid, 60_000, 200);
    expect(await publicationExists('ferry_keyless')).toBe(true);
    await pgQuery(URL, `UPDATE public.notes SET version = 4 WHERE id = 1`);
    await pgQuery(URL, `DELETE FROM public.notes WHERE id = 1`);
    expect(await agent.stop()).toBe(0);
  }, 120_000);

  it('reports a publication made outside Ferry that already publishes such a table, and lets an inserts-only one be', async () => {
    await pgQuery(URL, `CREATE PUBLICATION dba_pub FOR TABLE public.legacy, public.orders; CREATE PUBLICATION dba_inserts FOR TABLE public.inserts_only WITH (publish = 'insert')`);
    // Postgres refuses the application's writes already; Ferry did not cause it, but it must say so.
    await expect(pgQuery(URL, `UPDATE public.legacy SET version = 2`)).rejects.toThrow(/does not have a replica identity and publishes updates/);

    const source = (publication: string, tables: string[]) =>
      new PostgresCdcSource(resolveConfig({ type: 'postgres-cdc', connection: URL, publication, slot: `${DB}_${publication}`, tables, snapshot: 'never' }));
    const given = source('dba_pub', ['public.orders', 'public.legacy']);
    const findings = new Map((await given.check()).map((r) => [r.name, r]));
    expect(findings.get('table public.legacy replica identity')).toEqual({
      name: 'table public.legacy replica identity',
      ok: false,
      detail:
        "REPLICA IDENTITY DEFAULT, no primary key: publication dba_pub publishes it, so Postgres already refuses every UPDATE and DELETE on it, the application's own included, and the stream has no key for its changes",
      fix: 'ALTER TABLE "public"."legacy" REPLICA IDENTITY FULL; -- or add a primary key',
    });
    const error = await given.open(undefined, context()).then(() => undefined, (e: unknown) => e);
    await given.close();
    expect(error).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringContaining('public.legacy has REPLICA IDENTITY DEFAULT, no primary key: publication dba_pub publishes it') });
    expect(await slotExists(`${DB}_dba_pub`)).toBe(false);

    // Inserts only: Postgres refuses nothing and no change needs a key.
    const inserts = source('dba_inserts', ['public.inserts_only']);
    expect((await inserts.check()).find((r) => r.name === 'table public.inserts_only replica identity')).toMatchObject({ ok: true, detail: expect.stringContaining('publishes inserts only') });
    await inserts.open(undefined, context());
    await inserts.close();

    // REPLICA IDENTITY NOTHING logs no key even with a primary key.
    const nothing = source('ferry_nothing', ['public.nothing']);
    expect((await nothing.check()).find((r) => r.name === 'table public.nothing replica identity')).toMatchObject({ ok: false, detail: expect.stringMatching(/^REPLICA IDENTITY NOTHING: in publication ferry_nothing, which Ferry would create/) });
    await expect(nothing.open(undefined, context())).rejects.toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED' });
    await nothing.close();
    expect(await publicationExists('ferry_nothing')).toBe(false);
  });
});

describe('postgres-cdc on a table that does not exist', () => {
  it('stops ferry run with a config error (exit 2) naming the table and the pipeline, before creating the publication', async () => {
    const config = workspace('ferry_missing', ['orders', 'nope']);
    const run = await runFerry(['run', '--config', config]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('ferry: FERRY_CONFIG_INVALID');
    // Located at the list item in the config file, with the source's own fix.
    expect(run.stderr).toMatch(/ferry\.yaml:\d+:\d+ \(pipelines\[0\]\.source\.tables\[1\]\): pipeline shop: table public\.nope of source\.tables does not exist/);
    expect(run.stderr).toContain('Create the table, or correct `tables`');
    expect(run.stderr).not.toContain("tables' owner");
    expect(await publicationExists('ferry_missing')).toBe(false);
    expect(await slotExists(`${DB}_ferry_missing`)).toBe(false);
  }, 60_000);
});
