import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { deleteRedisPrefix, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';

/**
 * `ferry check` on a postgres-cdc pipeline whose role Postgres would refuse
 * at start: the run fails (exit 1) on that finding alone, prints the
 * statement that fixes it, and that statement, run as an administrator,
 * does fix it (the next check passes).
 */

const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const suffix = randomBytes(4).toString('hex');
const DB = `ferry_pgcheck_${suffix}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
// Roles are server-wide: unique names, so parallel files and reruns never meet.
const NO_REPLICATION = `ferry_norepl_${suffix}`;
const NOT_OWNER = `ferry_notowner_${suffix}`;
const OWNER_WITHOUT_CREATE = `ferry_owner_${suffix}`;
const prefixes: string[] = [];
const running: FerryProcess[] = [];

beforeAll(async () => {
  await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
  await pgQuery(ADMIN, `CREATE ROLE ${NO_REPLICATION} WITH LOGIN; CREATE ROLE ${NOT_OWNER} WITH LOGIN REPLICATION; CREATE ROLE ${OWNER_WITHOUT_CREATE} WITH LOGIN REPLICATION`);
  // Both roles read the tables as docs/sources/postgres-cdc.md grants it; neither owns them.
  await pgQuery(
    URL,
    `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text);
     CREATE TABLE public.customers (id integer PRIMARY KEY, version integer NOT NULL, note text);
     CREATE PUBLICATION ferry_check_given FOR TABLE public.orders, public.customers;
     GRANT USAGE ON SCHEMA public TO ${NO_REPLICATION}, ${NOT_OWNER};
     GRANT SELECT ON public.orders, public.customers TO ${NO_REPLICATION}, ${NOT_OWNER};
     GRANT CREATE ON DATABASE ${DB} TO ${NOT_OWNER};
     CREATE TABLE public.returns (id integer PRIMARY KEY, version integer NOT NULL, note text);
     ALTER TABLE public.returns OWNER TO ${OWNER_WITHOUT_CREATE};`,
  );
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropDatabaseAndSlots(ADMIN, DB);
  for (const p of prefixes) await deleteRedisPrefix(p);
  await pgQuery(ADMIN, `DROP ROLE IF EXISTS ${NO_REPLICATION}; DROP ROLE IF EXISTS ${NOT_OWNER}; DROP ROLE IF EXISTS ${OWNER_WITHOUT_CREATE}`);
});

function workspace(role: string, publication: string, tables = ['orders', 'customers'], slot = `${DB}_slot`): string {
  const prefix = uniquePrefix('pgcheck');
  prefixes.push(prefix);
  return rowPipelineWorkspace({
    name: 'pg-check',
    prefix,
    tables: tables.map((t) => ({ mapping: t, entity: t.replace(/s$/, ''), table: `public.${t}` })),
    source: `      type: postgres-cdc
      connection: "postgres://${role}@127.0.0.1:5432/${DB}"
      publication: ${publication}
      slot: ${slot}
      tables: [${tables.map((t) => `public.${t}`).join(', ')}]`,
  }).config;
}

/** The source's failed findings as printed: each `✗` line with the `fix:` line under it. */
function failures(stdout: string): Array<{ line: string; fix: string | undefined }> {
  const lines = stdout.split('\n');
  return lines.flatMap((line, i) => (line.startsWith('✗ shop/source (postgres-cdc)') ? [{ line, fix: /^\s+fix: (.*)$/.exec(lines[i + 1] ?? '')?.[1] }] : []));
}

describe('ferry check on postgres-cdc', () => {
  it('fails on a role without the REPLICATION attribute and prints the ALTER ROLE that fixes it', async () => {
    const config = workspace(NO_REPLICATION, 'ferry_check_given');
    const first = await runFerry(['check', '--config', config]);
    expect(first.code, first.stdout + first.stderr).toBe(1);
    expect(failures(first.stdout)).toEqual([
      { line: expect.stringMatching(new RegExp(`replication privilege +role ${NO_REPLICATION} lacks the REPLICATION attribute$`)), fix: `ALTER ROLE "${NO_REPLICATION}" WITH REPLICATION; -- as a superuser` },
    ]);
    expect(first.stdout).toContain('1 check failed');

    await pgQuery(ADMIN, failures(first.stdout)[0]!.fix!);
    const fixed = await runFerry(['check', '--config', config]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(new RegExp(`^✓ shop/source \\(postgres-cdc\\) +replication privilege +role ${NO_REPLICATION} may replicate`, 'm'));
  });

  it('fails on a missing publication the role may not create and prints the CREATE PUBLICATION that fixes it', async () => {
    const config = workspace(NOT_OWNER, 'ferry_check_missing');
    const first = await runFerry(['check', '--config', config]);
    // `ferry run` would stop at start with FERRY_PREFLIGHT_FAILED: the check must not pass.
    expect(first.code, first.stdout + first.stderr).toBe(1);
    const [finding, ...others] = failures(first.stdout);
    expect(others).toEqual([]);
    expect(finding!.line).toMatch(new RegExp(`publication ferry_check_missing +missing, and role ${NOT_OWNER} may not create it: it does not own public\\.orders, public\\.customers$`));
    expect(finding!.fix).toMatch(/^CREATE PUBLICATION ferry_check_missing FOR TABLE "public"\."orders", "public"\."customers"; -- as the owner of the tables or a superuser$/);

    // The owner of the tables here is the administrator.
    await pgQuery(URL, finding!.fix!);
    const fixed = await runFerry(['check', '--config', config]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(/^✓ shop\/source \(postgres-cdc\) +publication ferry_check_missing +publishes every table/m);
  });

  it('fails on a missing publication when the owner of the tables lacks CREATE on the database, and prints the GRANT that fixes it', async () => {
    // Owning the tables is not enough: Postgres also wants CREATE on the database.
    const config = workspace(OWNER_WITHOUT_CREATE, 'ferry_check_owned', ['returns']);
    const first = await runFerry(['check', '--config', config]);
    expect(first.code, first.stdout + first.stderr).toBe(1);
    const [finding, ...others] = failures(first.stdout);
    expect(others).toEqual([]);
    expect(finding!.line).toMatch(new RegExp(`publication ferry_check_owned +missing, and role ${OWNER_WITHOUT_CREATE} may not create it: it has no CREATE privilege on database ${DB}$`));
    expect(finding!.fix).toBe(`GRANT CREATE ON DATABASE "${DB}" TO "${OWNER_WITHOUT_CREATE}"; -- or, as a superuser: CREATE PUBLICATION ferry_check_owned FOR TABLE "public"."returns";`);

    await pgQuery(URL, finding!.fix!.split(' -- ')[0]!);
    const fixed = await runFerry(['check', '--config', config]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(/^✓ shop\/source \(postgres-cdc\) +publication ferry_check_owned +missing; Ferry creates it at start/m);
  });

  it("takes the slot held by the pipeline's own running agent for a note, and one held by another reader for a failure", async () => {
    const slot = `${DB}_running`;
    const config = workspace('postgres', 'ferry_check_given', ['orders'], slot);
    const agent = startAgent(config);
    running.push(agent);
    const activePid = () => pgQuery(ADMIN, `SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [slot]).then((r) => r[0]?.active_pid as number | null | undefined);
    const pid = await waitFor('the agent streaming from its slot', activePid, 60_000, 200);

    const whileRunning = await runFerry(['check', '--config', config]);
    expect(whileRunning.code, whileRunning.stdout).toBe(0);
    expect(whileRunning.stdout).toMatch(new RegExp(`^✓ shop/source \\(postgres-cdc\\) +slot ${slot} +read by a Ferry agent now \\(pid ${pid}, application_name ferry-cdc\\); confirmed up to [0-9A-F]+/[0-9A-F]+`, 'm'));
    expect(await agent.stop()).toBe(0);

    // Another consumer on the same slot is a real conflict: `ferry run` would stand by behind it.
    const recv = spawn('pg_recvlogical', ['-d', URL, '--slot', slot, '--start', '-o', 'proto_version=1', '-o', 'publication_names=ferry_check_given', '-f', '/dev/null'], { stdio: 'ignore' });
    try {
      const other = await waitFor('pg_recvlogical on the slot', activePid, 30_000, 200);
      const conflict = await runFerry(['check', '--config', config]);
      expect(conflict.code, conflict.stdout).toBe(1);
      expect(failures(conflict.stdout)).toEqual([
        { line: expect.stringMatching(new RegExp(`slot ${slot} +in use by pid ${other} \\(pg_recvlogical\\)$`)), fix: `Stop the other reader (SELECT * FROM pg_stat_replication WHERE pid = ${other}) or use another slot.` },
      ]);
    } finally {
      recv.kill();
    }
  }, 120_000);
});
