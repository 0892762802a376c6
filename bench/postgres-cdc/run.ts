/**
 * bench/postgres-cdc: 1M row changes in the WAL through the whole path
 * (`ferry run`: postgres-cdc → mapping + contract → BullMQ on Redis → file
 * sink), side by side in one run with
 *  (a) the bare drain: pg-logical-replication with its stock pgoutput plugin,
 *      counting insert/update/delete messages and acknowledging each commit, and
 *  (b) `pg_recvlogical --plugin=pgoutput` writing the stream to /dev/null,
 * each on its own slot, all three slots created at the same point before the
 * changes are written. Then the same agent, caught up, gets a steady 2,000
 * changes/s (10-row transactions every 5 ms) for `--steady-s` seconds and the
 * commit → file sink latency (line seen in the sink file − the commit time
 * carried in the event's `time`) is measured. Prints rows/s, the ratios, the
 * agent's peak RSS (VmHWM) and p50/p99 latency, with a Markdown table row for
 * docs/benchmarks.md.
 *
 *   npm run build && node dist/bench/postgres-cdc/run.js [--changes 1000000] [--steady-s 30] [--redis redis://127.0.0.1:6379] [--postgres postgres://postgres@127.0.0.1:5432] [--source "batchSize: 2000"] [--one-commit yes] [--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { lineReader } from '../support/growing-file.js';
import { peakRssMiB } from '../support/process-stats.js';
import { writeBenchConfig } from '../support/bench-config.js';
import { spawnInstalledAgent, stopAndForget } from '../support/installed-agent.js';
import { withClient } from '../../test/support/postgres.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const CHANGES = Number(args.get('changes') ?? 1_000_000);
const STEADY_S = Number(args.get('steady-s') ?? 30);
const REDIS = args.get('redis') ?? 'redis://127.0.0.1:6379';
const SERVER = (args.get('postgres') ?? 'postgres://postgres@127.0.0.1:5432').replace(/\/$/, '');
/** Extra node flags for the agent, e.g. `--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"` to see where its time goes. */
const NODE_ARGS = (args.get('node-args') ?? '').split(' ').filter(Boolean);
/** Extra `source:` settings, e.g. `--source "batchSize: 2000"`. */
const SOURCE_EXTRA = (args.get('source') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
/** `--one-commit yes`: all CHANGES in a single transaction (Postgres sends it whole at commit), to show memory stays bounded. */
const ONE_COMMIT = args.get('one-commit') === 'yes';
const TX_ROWS = 10_000;
const STEADY_RATE = 2_000;
const STEADY_TX_ROWS = 10;
/** Ids of the steady-rate rows start here, above every bulk row. */
const STEADY_ID = 100_000_000;
const DB = `ferry_bench_${randomBytes(3).toString('hex')}`;
const URL = `${SERVER}/${DB}`;
const PUBLICATION = 'ferry_bench';
const SLOTS = { ferry: `${DB}_ferry`, bare: `${DB}_bare`, recv: `${DB}_recv` };


/**
 * Creates the table, the publication and three slots at the same point, then
 * writes CHANGES row changes in 10,000-row transactions: 40% inserts, 40%
 * updates of those rows, 20% deletes. Returns the WAL end after them.
 */
async function generate(): Promise<string> {
  await withClient(`${SERVER}/postgres`, (c) => c.query(`CREATE DATABASE ${DB}`));
  return withClient(URL, async (c) => {
    await c.query(`CREATE TABLE public.changes (id integer PRIMARY KEY, v integer NOT NULL, note text NOT NULL, amount numeric(12,2) NOT NULL, updated timestamptz NOT NULL)`);
    await c.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE public.changes`);
    for (const slot of Object.values(SLOTS)) await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const inserts = Math.round((CHANGES * 0.4) / TX_ROWS) * TX_ROWS;
    const deletes = CHANGES - 2 * inserts;
    const range = async (rows: number, statement: (from: number, to: number) => string): Promise<void> => {
      for (let done = 0; done < rows; done += TX_ROWS) await c.query(statement(done + 1, Math.min(rows, done + TX_ROWS)));
    };
    if (ONE_COMMIT) await c.query('BEGIN');
    await range(inserts, (a, b) => `INSERT INTO public.changes SELECT g, g % 1000, 'note ' || g, g / 100.0, '2024-01-02 03:04:05+00' FROM generate_series(${a}, ${b}) g`);
    await range(inserts, (a, b) => `UPDATE public.changes SET v = v + 1, note = 'updated ' || id, updated = '2024-06-07 08:09:10+00' WHERE id BETWEEN ${a} AND ${b}`);
    await range(deletes, (a, b) => `DELETE FROM public.changes WHERE id BETWEEN ${a} AND ${b}`);
    if (ONE_COMMIT) await c.query('COMMIT');
    return (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  });
}

/** (a) pg-logical-replication alone on its slot: counts row messages, acknowledges every commit, until all CHANGES arrived. */
async function bareDrain(): Promise<number> {
  const service = new LogicalReplicationService({ connectionString: URL }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION] });
  const started = performance.now();
  let rows = 0;
  await new Promise<void>((done, fail) => {
    service.on('error', fail);
    service.on('data', (lsn: string, msg: Pgoutput.Message) => {
      if (msg.tag === 'insert' || msg.tag === 'update' || msg.tag === 'delete') rows++;
      else if (msg.tag === 'commit') {
        void service.acknowledge(lsn);
        if (rows >= CHANGES) done();
      }
    });
    service.subscribe(plugin, SLOTS.bare).catch((err: unknown) => {
      if (rows < CHANGES) fail(err);
    });
  });
  const ms = performance.now() - started;
  await service.stop();
  if (rows !== CHANGES) throw new Error(`the bare drain read ${rows} rows, expected ${CHANGES}`);
  return ms;
}

/** (b) pg_recvlogical on its slot, pgoutput to /dev/null, until the WAL end after the changes. */
async function pgRecvlogical(endLsn: string): Promise<number> {
  const started = performance.now();
  const child = spawn(
    'pg_recvlogical',
    ['-d', URL, `--slot=${SLOTS.recv}`, '--start', '--plugin=pgoutput', '-o', 'proto_version=1', '-o', `publication_names=${PUBLICATION}`, `--endpos=${endLsn}`, '--no-loop', '-f', '/dev/null'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const [code] = (await once(child, 'exit')) as [number | null];
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}`);
  return ms;
}



/** Milliseconds since the epoch of an ISO time with microseconds (`…:05.123456Z`). */
function isoMs(time: string): number {
  return Date.parse(time.replace(/(\.\d{3})\d+/, '$1'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeWorkspace(dir: string, prefix: string): string {
  mkdirSync(join(dir, 'mappings/contracts'), { recursive: true });
  writeFileSync(
    join(dir, 'mappings/contracts/change.v1.schema.json'),
    JSON.stringify({
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { id: { type: 'integer' }, v: { type: ['integer', 'null'] }, note: { type: ['string', 'null'] }, amount: { type: ['string', 'null'] }, updated: { type: ['string', 'null'] } },
    }),
  );
  writeFileSync(
    join(dir, 'mappings/changes.yaml'),
    `entity: change
contract: contracts/change.v1.schema.json
match: { table: public.changes }
key: [id]
fields:
  id:      { from: id, type: integer, required: true }
  v:       { from: v, type: integer }
  note:    { from: note }
  amount:  { from: amount }
  updated: { from: updated }
`,
  );
  const config = writeBenchConfig(dir, {
    redis: REDIS,
    prefix,
    pipeline: 'bench',
    source: `      type: postgres-cdc
      connection: "${URL}"
      publication: ${PUBLICATION}
      slot: ${SLOTS.ferry}
      tables: [public.changes]
      snapshot: never
      heartbeatMs: 1000
${SOURCE_EXTRA.map((s) => `      ${s}\n`).join('')}`,
    mappings: 'mappings/changes.yaml',
    sinkFile: 'changes.jsonl',
  });
  return config;
}

/**
 * Commits STEADY_RATE changes/s (a 10-row insert every 5 ms, on a schedule,
 * not back to back) for STEADY_S seconds; returns how many it wrote.
 */
async function steadyWriter(): Promise<{ rows: number; seconds: number }> {
  return withClient(URL, async (c) => {
    const every = (1000 * STEADY_TX_ROWS) / STEADY_RATE;
    const started = performance.now();
    let id = STEADY_ID;
    for (let tx = 0; performance.now() - started < STEADY_S * 1000; tx++) {
      const due = started + tx * every;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      await c.query(`INSERT INTO public.changes SELECT g, 0, 'tick', 0, now() FROM generate_series(${id}, ${id + STEADY_TX_ROWS - 1}) g`);
      id += STEADY_TX_ROWS;
    }
    return { rows: id - STEADY_ID, seconds: (performance.now() - started) / 1000 };
  });
}

interface FerryResult {
  ms: number;
  /** From the spawn to the first event in the sink: start-up, included in `ms`. */
  firstMs: number;
  /** Peak RSS when the first event reached the sink: the agent's start-up footprint. */
  startRssMiB: number;
  rssMiB: number;
  latency: { p50: number; p99: number; max: number; n: number; rate: number };
}

/**
 * The agent from its slot (snapshot never) until the file sink holds every
 * change, timed from its spawn; then, caught up, the steady-rate latency.
 */
async function ferryPipeline(dir: string): Promise<FerryResult> {
  const prefix = `benchpg${Date.now().toString(36)}`;
  const config = writeWorkspace(dir, prefix);
  const read = lineReader(join(dir, 'out/changes.jsonl'));
  const started = performance.now();
  const agent = spawnInstalledAgent(config, { nodeArgs: NODE_ARGS });
  let rssMiB = 0;
  const sample = () => {
    if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode}`);
    rssMiB = Math.max(rssMiB, peakRssMiB(agent.pid!));
  };
  try {
    let lines = 0;
    let firstMs = 0;
    let startRssMiB = 0;
    while (lines < CHANGES) {
      sample();
      lines += read().length;
      if (lines > 0 && !firstMs) {
        firstMs = performance.now() - started;
        startRssMiB = rssMiB;
      }
      await sleep(50);
    }
    const ms = performance.now() - started;

    // Latency: tail the sink every 2 ms while the writer commits at the steady rate.
    const latencies: number[] = [];
    let writing = true;
    const writer = steadyWriter().finally(() => (writing = false));
    let lastSample = 0;
    let idleSince = 0;
    for (;;) {
      const now = Date.now();
      for (const line of read()) {
        const event = JSON.parse(line) as { time: string; data: { id: number } };
        if (event.data.id >= STEADY_ID) latencies.push(now - isoMs(event.time));
      }
      if (now - lastSample > 100) {
        sample();
        lastSample = now;
      }
      if (!writing) {
        idleSince ||= now;
        if (now - idleSince > 3000) break;
      }
      await sleep(2);
    }
    const written = await writer;
    if (latencies.length !== written.rows) throw new Error(`${written.rows} steady changes committed, ${latencies.length} reached the sink`);
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    sample();
    return { ms, firstMs, startRssMiB, rssMiB, latency: { p50: at(0.5), p99: at(0.99), max: latencies.at(-1)!, n: latencies.length, rate: written.rows / written.seconds } };
  } finally {
    await stopAndForget([agent], REDIS, prefix);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-pg-'));
try {
  const endLsn = await generate();
  console.log(`${CHANGES} row changes in ${ONE_COMMIT ? 'one transaction' : `${TX_ROWS}-row transactions`}, WAL end ${endLsn}; slots ${Object.values(SLOTS).join(', ')}`);
  const bareMs = await bareDrain();
  const recvMs = await pgRecvlogical(endLsn);
  const ferry = await ferryPipeline(dir);
  const rate = (ms: number) => CHANGES / (ms / 1000);
  const [bareRate, recvRate, ferryRate] = [rate(bareMs), rate(recvMs), rate(ferry.ms)];
  const { p50, p99, max, n, rate: steady } = ferry.latency;
  console.log(`changes: ${CHANGES}, cores: ${cpus().length}`);
  console.log(`bare pg-logical-replication:  ${(bareMs / 1000).toFixed(2)} s  ${Math.round(bareRate)} rows/s`);
  console.log(`pg_recvlogical → /dev/null:   ${(recvMs / 1000).toFixed(2)} s  ${Math.round(recvRate)} rows/s`);
  console.log(`ferry cdc → file sink:        ${(ferry.ms / 1000).toFixed(2)} s  ${Math.round(ferryRate)} rows/s  peak RSS ${ferry.rssMiB.toFixed(0)} MiB (${ferry.startRssMiB.toFixed(0)} MiB at the first event, ${(ferry.firstMs / 1000).toFixed(2)} s after the start)`);
  console.log(`ratio vs bare drain: ${(ferryRate / bareRate).toFixed(2)}× (target ≥ 0.5×), vs pg_recvlogical: ${(ferryRate / recvRate).toFixed(2)}×, RSS target ≤ 256 MiB`);
  console.log(`commit → sink latency at ${Math.round(steady)} changes/s for ${STEADY_S} s (${n} changes): p50 ${p50} ms, p99 ${p99} ms, max ${max} ms (target p99 ≤ 100 ms)`);
  console.log(
    `| postgres-cdc ${CHANGES} changes | ${Math.round(bareRate)} rows/s | ${Math.round(recvRate)} rows/s | ${Math.round(ferryRate)} rows/s | ${(ferryRate / bareRate).toFixed(2)}× | ${(ferryRate / recvRate).toFixed(2)}× | ${ferry.rssMiB.toFixed(0)} MiB | ${p50} ms | ${p99} ms |`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await withClient(`${SERVER}/postgres`, async (c) => {
    await c.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`, [DB]);
    await sleep(300);
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [DB]);
    await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  });
}
