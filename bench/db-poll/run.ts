/**
 * bench/db-poll: a Postgres view of 200k customers polled in diff mode by
 * `ferry run` (db-poll → mapping + contract → BullMQ on Redis → file sink):
 * the first poll (every row is new), then random inserts, updates and
 * deletes, then the second poll (the whole view is read again; only the
 * changes are emitted). Side by side, in the same run: a bare keyset read of
 * the same view with `pg` (same page size, same order). Prints rows/s of each
 * poll (rows of the view read per second, from the poll's start to its last
 * event at the sink) and the agent's peak RSS (VmHWM) during each poll (reset
 * in between), and a Markdown table row for docs/benchmarks.md.
 *
 *   npm run build && node dist/bench/db-poll/run.js [--rows 200000] [--changes 4000] [--every 60s] [--page-size 1000]
 *     [--pg postgres://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379] [--node-args "--trace-gc" --agent-stdout FILE]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { lineReader } from '../support/growing-file.js';
import { peakRssMiB, resetPeakRss } from '../support/process-stats.js';
import { writeBenchConfig } from '../support/bench-config.js';
import { spawnInstalledAgent } from '../support/installed-agent.js';
import { pgQuery } from '../../test/support/postgres.js';

const REPO = resolve(import.meta.dirname, '../../..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const ROWS = Number(args.get('rows') ?? 200_000);
/** Changes between the polls: a quarter inserts, half updates, a quarter deletes. */
const CHANGES = Number(args.get('changes') ?? 4_000);
/** The poll interval: long enough for the first poll to finish and the changes to be made before the second. */
const EVERY = args.get('every') ?? '60s';
const PAGE_SIZE = Number(args.get('page-size') ?? 1_000);
const PG = args.get('pg') ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS = args.get('redis') ?? 'redis://127.0.0.1:6379';
/** Extra node flags for the agent, e.g. `--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"`. */
const NODE_ARGS = (args.get('node-args') ?? '').split(' ').filter(Boolean);
/** Where the agent's stdout goes (e.g. with `--node-args --trace-gc`); discarded by default. */
const AGENT_STDOUT = args.get('agent-stdout');
const DB = `ferry_bench_dbpoll_${process.pid}`;
/** A SELECT-only role, as in production (a superuser would only be warned about). */
const READER = `ferry_bench_ro_${process.pid}`;


/** One statement on database `db` of the benchmark's server. */
function sql(db: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  return pgQuery(`${PG}/${db}`, text, values);
}

async function createView(): Promise<void> {
  await sql('postgres', `CREATE DATABASE ${DB}`);
  await sql(
    DB,
    `CREATE SCHEMA erp;
     CREATE TABLE erp.kunden (kunde_nr integer PRIMARY KEY, vorname text NOT NULL, nachname text NOT NULL, email text, saldo numeric(14,2) NOT NULL, kunde_seit date NOT NULL, status char(1) NOT NULL);
     INSERT INTO erp.kunden SELECT g, 'Jürgen', 'Straßer ' || g, 'K' || g || '@Example.de', g * 1.5, date '2024-01-01' + (g % 365), CASE WHEN g % 2 = 0 THEN 'A' ELSE 'I' END
       FROM generate_series(1, ${ROWS}) g;
     CREATE VIEW erp.v_kunden AS SELECT kunde_nr, vorname, nachname, email, saldo, kunde_seit, status FROM erp.kunden;
     ANALYZE erp.kunden;
     CREATE ROLE ${READER} LOGIN;
     GRANT USAGE ON SCHEMA erp TO ${READER};
     GRANT SELECT ON erp.v_kunden TO ${READER};`,
  );
}

/** Deterministic random ids, so runs are comparable. */
function picker(seed: number): (n: number, max: number, taken: Set<number>) => number[] {
  let s = seed >>> 0;
  const next = (): number => ((s = (s * 1664525 + 1013904223) >>> 0), s / 2 ** 32);
  return (n, max, taken) => {
    const out: number[] = [];
    while (out.length < n) {
      const id = 1 + Math.floor(next() * max);
      if (!taken.has(id)) out.push(id), taken.add(id);
    }
    return out;
  };
}

/** Applies the changes in one transaction; returns how many of each the second poll must emit. */
async function applyChanges(): Promise<{ c: number; u: number; d: number }> {
  const pick = picker(42);
  const taken = new Set<number>();
  const updates = pick(Math.floor(CHANGES / 2), ROWS, taken);
  const deletes = pick(Math.floor(CHANGES / 4), ROWS, taken);
  const inserts = Math.floor(CHANGES / 4);
  await sql(
    DB,
    `BEGIN;
     UPDATE erp.kunden SET saldo = saldo + 1, status = 'A' WHERE kunde_nr = ANY('{${updates.join(',')}}'::int[]);
     DELETE FROM erp.kunden WHERE kunde_nr = ANY('{${deletes.join(',')}}'::int[]);
     INSERT INTO erp.kunden SELECT g, 'Neu', 'Kunde ' || g, NULL, 0, date '2024-06-01', 'A' FROM generate_series(${ROWS + 1}, ${ROWS + inserts}) g;
     COMMIT;`,
  );
  return { c: inserts, u: updates.length, d: deletes.length };
}

/** A plain `pg` keyset read of the view, as fast as one client goes: the baseline. */
async function bareKeysetRead(): Promise<{ ms: number; rows: number }> {
  const c = new pg.Client({ connectionString: `${PG}/${DB}` });
  await c.connect();
  try {
    const started = performance.now();
    let rows = 0;
    let after = 0;
    for (;;) {
      const r = await c.query<{ kunde_nr: number }>('SELECT * FROM erp.v_kunden WHERE kunde_nr > $1 ORDER BY kunde_nr LIMIT ' + PAGE_SIZE, [after]);
      rows += r.rows.length;
      if (r.rows.length < PAGE_SIZE) break;
      after = r.rows[r.rows.length - 1]!.kunde_nr;
    }
    return { ms: performance.now() - started, rows };
  } finally {
    await c.end();
  }
}

interface SinkEvent {
  time: string;
  ferryop: string;
}

/** Parses the complete lines a growing JSON-lines file gained since the last call. */
function newEvents(file: string): () => SinkEvent[] {
  const read = lineReader(file);
  return () => read().filter(Boolean).map((l) => JSON.parse(l) as SinkEvent);
}



function writeWorkspace(dir: string, prefix: string): string {
  mkdirSync(join(dir, 'mappings/contracts'), { recursive: true });
  copyFileSync(join(REPO, 'mappings/contracts/customer.v1.schema.json'), join(dir, 'mappings/contracts/customer.v1.schema.json'));
  writeFileSync(
    join(dir, 'mappings/kunden.yaml'),
    `entity: customer
contract: contracts/customer.v1.schema.json
match: { table: erp.v_kunden }
key: [id]
fields:
  id:      { from: kunde_nr, type: string, required: true }
  name:    { from: [vorname, nachname], join: " ", trim: true }
  email:   { from: email, trim: true, case: lower }
  balance: { from: saldo, type: decimal }
  since:   { from: kunde_seit, type: date, format: "yyyy-MM-dd" }
  status:  { from: status, map: { A: active, I: inactive }, default: inactive }
  origin:  { const: legacy-erp }
`,
  );
  const config = writeBenchConfig(dir, {
    redis: REDIS,
    prefix,
    pipeline: 'kunden',
    source: `      type: db-poll
      connection: "${PG.replace('://postgres@', `://${READER}@`)}/${DB}"
      requireReadOnly: true
      every: ${EVERY}
      pageSize: ${PAGE_SIZE}
      views:
        - { name: erp.v_kunden, mode: diff, key: [kunde_nr] }
`,
    mappings: 'mappings/kunden.yaml',
    sinkFile: 'kunden.jsonl',
  });
  return config;
}

interface PollResult {
  ms: number;
  events: SinkEvent[];
  rssMiB: number;
}

/** Waits for `count` events of one poll at the sink; the poll's start is the events' `time`. */
async function awaitPoll(agent: ReturnType<typeof spawn>, take: () => SinkEvent[], count: number, timeoutMs: number): Promise<PollResult> {
  const events: SinkEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  let rssMiB = 0;
  while (events.length < count) {
    if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode}`);
    if (Date.now() > deadline) throw new Error(`only ${events.length} of ${count} events at the sink after ${timeoutMs} ms`);
    rssMiB = Math.max(rssMiB, peakRssMiB(agent.pid!));
    events.push(...take());
    await new Promise((r) => setTimeout(r, 20));
  }
  const ended = Date.now();
  const times = new Set(events.map((e) => e.time));
  if (times.size !== 1) throw new Error(`the events come from ${times.size} polls, expected one: raise --every`);
  return { ms: ended - Date.parse([...times][0]!), events, rssMiB: Math.max(rssMiB, peakRssMiB(agent.pid!)) };
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-dbpoll-'));
const prefix = `benchdbpoll${Date.now().toString(36)}`;
try {
  await createView();
  await bareKeysetRead(); // warm the buffer cache and the JIT
  const bare = await bareKeysetRead();
  if (bare.rows !== ROWS) throw new Error(`the bare read got ${bare.rows} rows, expected ${ROWS}`);

  const config = writeWorkspace(dir, prefix);
  const stdout = AGENT_STDOUT ? openSync(AGENT_STDOUT, 'w') : 'ignore';
  const agent = spawnInstalledAgent(config, { nodeArgs: NODE_ARGS, stdout });
  try {
    const take = newEvents(join(dir, 'out/kunden.jsonl'));
    const first = await awaitPoll(agent, take, ROWS, 600_000);
    resetPeakRss(agent.pid!);
    const expected = await applyChanges();
    const changedAt = Date.now();
    const want = expected.c + expected.u + expected.d;
    const second = await awaitPoll(agent, take, want, 600_000);
    const secondStart = Date.parse(second.events[0]!.time);
    if (secondStart < changedAt) throw new Error('the second poll started before the changes were made: raise --every');
    const ops = { c: 0, u: 0, d: 0 } as Record<string, number>;
    for (const e of second.events) ops[e.ferryop] = (ops[e.ferryop] ?? 0) + 1;
    if (ops.c !== expected.c || ops.u !== expected.u || ops.d !== expected.d) {
      throw new Error(`the second poll emitted ${JSON.stringify(ops)}, expected ${JSON.stringify(expected)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const extra = take().length;
    if (extra > 0) throw new Error(`${extra} more events than the changes arrived`);

    const rate = (rows: number, ms: number): number => Math.round(rows / (ms / 1000));
    const viewRows = ROWS + expected.c - expected.d;
    const bareRate = rate(bare.rows, bare.ms);
    console.log(`view: ${ROWS} rows, page size ${PAGE_SIZE}, cores: ${cpus().length}`);
    console.log(`bare pg keyset read:             ${(bare.ms / 1000).toFixed(2)} s  ${bareRate} rows/s`);
    console.log(`ferry first poll (${ROWS} c):     ${(first.ms / 1000).toFixed(2)} s  ${rate(ROWS, first.ms)} rows/s  peak RSS ${first.rssMiB.toFixed(0)} MiB`);
    console.log(`ferry second poll (${want} changes): ${(second.ms / 1000).toFixed(2)} s  ${rate(viewRows, second.ms)} rows/s  peak RSS ${second.rssMiB.toFixed(0)} MiB`);
    console.log(`second poll emitted exactly the changes: ${JSON.stringify(ops)}; RSS target ≤ 256 MiB`);
    console.log(
      `| db-poll diff ${ROWS} rows | ${bareRate} rows/s | ${rate(ROWS, first.ms)} rows/s (${(rate(ROWS, first.ms) / bareRate).toFixed(2)}×) | ${rate(viewRows, second.ms)} rows/s (${(rate(viewRows, second.ms) / bareRate).toFixed(2)}×), ${want} changes | ${first.rssMiB.toFixed(0)} / ${second.rssMiB.toFixed(0)} MiB |`,
    );
  } finally {
    agent.kill('SIGTERM');
    if (agent.exitCode === null) await once(agent, 'exit');
  }
} finally {
  const redis = new Redis(REDIS);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await sql('postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`).catch(() => undefined);
  await sql('postgres', `DROP ROLE IF EXISTS ${READER}`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
