/**
 * bench/mysql-cdc: 1M row changes in the MariaDB binlog through the whole
 * path (`ferry run`: mysql-cdc → mapping + contract → BullMQ on Redis → file
 * sink), side by side in one run with
 *  (a) the bare binlog reader: @vlasky/zongji alone, counting rows, and
 *  (b) `mariadb-binlog --read-from-remote-server --base64-output=decode-rows -v`,
 * all three reading the same binlog range, written before any of them starts.
 * Prints rows/s of each, the ratios, and the agent's peak RSS (VmHWM), with
 * a Markdown table row for docs/benchmarks.md.
 *
 *   npm run build && node dist/bench/mysql-cdc/run.js [--changes 1000000] [--redis redis://127.0.0.1:6379] [--mysql mysql://root@127.0.0.1:3306] [--source "maxBatchSize: 2000"] [--roles split] [--one-commit yes] [--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import ZongJi, { type AnyBinlogEvent } from '@vlasky/zongji';
import { Redis } from 'ioredis';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { lineCounter } from '../support/growing-file.js';
import { cpuSeconds, peakRssMiB } from '../support/process-stats.js';
import { writeBenchConfig } from '../support/bench-config.js';
import { spawnInstalledAgent, stopAndForget } from '../support/installed-agent.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const CHANGES = Number(args.get('changes') ?? 1_000_000);
const REDIS = args.get('redis') ?? 'redis://127.0.0.1:6379';
const SERVER = new URL(args.get('mysql') ?? 'mysql://root@127.0.0.1:3306');
/** Extra node flags for the agent, e.g. `--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"` to see where its time goes. */
const NODE_ARGS = (args.get('node-args') ?? '').split(' ').filter(Boolean);
/** Extra `source:` settings, e.g. `--source "maxBatchSize: 2000, maxBufferedEvents: 4000"`. */
const SOURCE_EXTRA = (args.get('source') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
/** The pipeline's `delivery:` entry. */
const DELIVERY = args.get('delivery') ?? '{ partitions: 4, batch: { maxEvents: 1000, maxWaitMs: 20 } }';
/** `all`: one agent reads and delivers (the default deployment); `split`: a `--role read` and a `--role deliver` agent side by side (scale-out). */
const ROLES = args.get('roles') === 'split' ? ['read', 'deliver'] : ['all'];
const TX_ROWS = 10_000;
/** `--one-commit yes`: all CHANGES in a single transaction (written to the binlog whole at commit), to show memory stays bounded. */
const ONE_COMMIT = args.get('one-commit') === 'yes';
const STATEMENT_ROWS = 1_000;
const DB = `ferry_bench_${randomBytes(3).toString('hex')}`;
const TABLE = 'changes';

interface Range {
  start: { file: string; pos: number };
  end: { file: string; pos: number };
}

const connection = { host: SERVER.hostname, port: Number(SERVER.port || 3306), user: decodeURIComponent(SERVER.username || 'root'), password: decodeURIComponent(SERVER.password) };

async function masterStatus(c: Connection): Promise<{ file: string; pos: number }> {
  const [[row]] = await c.query<RowDataPacket[]>('SHOW MASTER STATUS');
  return { file: String(row?.File), pos: Number(row?.Position) };
}

/**
 * Writes CHANGES row changes into a fresh table in transactions of 10,000
 * rows (ten 1,000-row statements each): 40% inserts, then 40% updates of
 * those rows, then 20% deletes. Returns the binlog range they occupy.
 */
async function generate(): Promise<Range> {
  const c = await mysql.createConnection(connection);
  await c.query(`CREATE DATABASE ${DB}`);
  await c.query(`CREATE TABLE ${DB}.${TABLE} (id INT PRIMARY KEY, v INT NOT NULL, note VARCHAR(32) NOT NULL, amount DECIMAL(12,2) NOT NULL, updated DATETIME NOT NULL)`);
  const start = await masterStatus(c);
  const inserts = Math.round(CHANGES * 0.4);
  const updates = inserts;
  const deletes = CHANGES - inserts - updates;
  const tx = async (rows: number, statement: (from: number, to: number) => string): Promise<void> => {
    for (let done = 0; done < rows; done += TX_ROWS) {
      if (!ONE_COMMIT) await c.query('START TRANSACTION');
      for (let s = done; s < Math.min(rows, done + TX_ROWS); s += STATEMENT_ROWS) {
        await c.query(statement(s + 1, Math.min(rows, s + STATEMENT_ROWS)));
      }
      if (!ONE_COMMIT) await c.query('COMMIT');
    }
  };
  if (ONE_COMMIT) await c.query('START TRANSACTION');
  await tx(inserts, (a, b) => `INSERT INTO ${DB}.${TABLE} SELECT seq, seq % 1000, CONCAT('note ', seq), seq / 100, '2024-01-02 03:04:05' FROM ${DB}.seq_${a}_to_${b}`);
  await tx(updates, (a, b) => `UPDATE ${DB}.${TABLE} SET v = v + 1, note = CONCAT('updated ', id), updated = '2024-06-07 08:09:10' WHERE id BETWEEN ${a} AND ${b}`);
  await tx(deletes, (a, b) => `DELETE FROM ${DB}.${TABLE} WHERE id BETWEEN ${a} AND ${b}`);
  if (ONE_COMMIT) await c.query('COMMIT');
  const end = await masterStatus(c);
  await c.end();
  return { start, end };
}

/** (a) zongji alone from the range's start, counting rows of row events until all CHANGES arrived. */
async function bareZongji(range: Range): Promise<number> {
  const zongji = new ZongJi(connection);
  const started = performance.now();
  let rows = 0;
  await new Promise<void>((done, fail) => {
    zongji.on('error', fail);
    zongji.on('binlog', (ev: AnyBinlogEvent) => {
      const name = ev.getEventName();
      if (name === 'writerows' || name === 'updaterows' || name === 'deleterows') {
        rows += (ev as { rows: unknown[] }).rows.length;
        if (rows >= CHANGES) done();
      }
    });
    zongji.start({
      serverId: 900_000_000 + Math.floor(Math.random() * 1e6),
      filename: range.start.file,
      position: range.start.pos,
      includeEvents: ['rotate', 'tablemap', 'writerows', 'updaterows', 'deleterows'],
      includeSchema: { [DB]: [TABLE] },
    });
  });
  const ms = performance.now() - started;
  zongji.stop();
  if (rows !== CHANGES) throw new Error(`zongji read ${rows} rows, expected ${CHANGES}`);
  return ms;
}

/** (b) mariadb-binlog decoding the same range from the server, its row lines counted. */
async function mariadbBinlog(range: Range): Promise<number> {
  const files = [range.start.file, ...(range.end.file !== range.start.file ? [range.end.file] : [])];
  const started = performance.now();
  const child = spawn(
    'mariadb-binlog',
    [
      '--read-from-remote-server',
      `--host=${connection.host}`,
      `--port=${connection.port}`,
      `--user=${connection.user}`,
      ...(connection.password ? [`--password=${connection.password}`] : []),
      '--base64-output=decode-rows',
      '--verbose',
      `--start-position=${range.start.pos}`,
      `--stop-position=${range.end.pos}`,
      ...files,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Row lines are "### INSERT INTO", "### UPDATE", "### DELETE FROM"; scan bytes, not strings.
  const marker = Buffer.from('\n### ');
  let rows = 0;
  let tail: Buffer = Buffer.alloc(0);
  child.stdout.on('data', (chunk: Buffer) => {
    const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
    let i = buf.indexOf(marker);
    while (i !== -1 && i + 6 < buf.length) {
      const c = buf[i + 5];
      if (c === 0x49 /* I */ || c === 0x55 /* U */ || c === 0x44 /* D */) rows++;
      i = buf.indexOf(marker, i + 5);
    }
    tail = i === -1 ? buf.subarray(Math.max(0, buf.length - 6)) : buf.subarray(i);
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`mariadb-binlog exited with ${code}`);
  if (rows !== CHANGES) throw new Error(`mariadb-binlog printed ${rows} rows, expected ${CHANGES}`);
  return ms;
}




/** CPU seconds the Redis server has used so far (INFO cpu): the queue's share of the work. */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** The agent (`ferry run`) from the range's start (`startAt`, snapshot never) until the file sink holds every change; timed from its spawn. */
async function ferryPipeline(dir: string, range: Range): Promise<{ ms: number; steadyMs: number; rssMiB: number; cpuS: number; redisCpuS: number }> {
  const prefix = `benchmy${Date.now().toString(36)}`;
  mkdirSync(join(dir, 'mappings/contracts'), { recursive: true });
  writeFileSync(
    join(dir, 'mappings/contracts/change.v1.schema.json'),
    JSON.stringify({
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: { id: { type: 'integer' }, v: { type: 'integer' }, note: { type: 'string' }, amount: { type: 'string' }, updated: { type: 'string' } },
    }),
  );
  writeFileSync(
    join(dir, 'mappings/changes.yaml'),
    `entity: change
contract: contracts/change.v1.schema.json
match: { table: ${DB}.${TABLE} }
key: [id]
fields:
  id:      { from: id, type: integer, required: true }
  v:       { from: v, type: integer }
  note:    { from: note }
  amount:  { from: amount }
  updated: { from: updated }
`,
  );
  const password = connection.password ? `:${encodeURIComponent(connection.password)}` : '';
  const config = writeBenchConfig(dir, {
    redis: REDIS,
    prefix,
    pipeline: 'bench',
    source: `      type: mysql-cdc
      connection: "mysql://${encodeURIComponent(connection.user)}${password}@${connection.host}:${connection.port}/${DB}"
      serverId: ${800_000_000 + Math.floor(Math.random() * 1e6)}
      tables: [${DB}.${TABLE}]
      snapshot: never
      startAt: "${range.start.file}:${range.start.pos}"
${SOURCE_EXTRA.map((s) => `      ${s}\n`).join('')}`,
    mappings: 'mappings/changes.yaml',
    sinkFile: 'changes.jsonl',
    delivery: DELIVERY,
  });
  const count = lineCounter(join(dir, 'out/changes.jsonl'));
  const redis = new Redis(REDIS);
  const redisCpuBefore = await redisCpuSeconds(redis);
  const started = performance.now();
  let firstAt: number | undefined;
  const agents = ROLES.map((role) => spawnInstalledAgent(config, { nodeArgs: NODE_ARGS, args: ['--role', role] }));
  // the largest of the agents: each is a process of its own
  const peak = (): number => Math.max(...agents.map((a) => peakRssMiB(a.pid!)));
  let rssMiB = 0;
  try {
    for (let n = count(); n < CHANGES; n = count()) {
      if (n > 0) firstAt ??= performance.now();
      const exited = agents.find((a) => a.exitCode !== null);
      if (exited) throw new Error(`an agent exited with ${exited.exitCode}`);
      rssMiB = Math.max(rssMiB, peak());
      await new Promise((r) => setTimeout(r, 50));
    }
    const end = performance.now();
    rssMiB = Math.max(rssMiB, peak());
    const redisCpuS = (await redisCpuSeconds(redis)) - redisCpuBefore;
    return { ms: end - started, steadyMs: end - (firstAt ?? started), rssMiB, cpuS: agents.reduce((sum, a) => sum + cpuSeconds(a.pid!), 0), redisCpuS };
  } finally {
    redis.disconnect();
    await stopAndForget(agents, REDIS, prefix);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-mysql-'));
try {
  const range = await generate();
  console.log(`binlog range: ${range.start.file}:${range.start.pos} → ${range.end.file}:${range.end.pos}, ${CHANGES} row changes in ${ONE_COMMIT ? 'one transaction' : `${TX_ROWS}-row transactions`}`);
  const bareMs = await bareZongji(range);
  const cliMs = await mariadbBinlog(range);
  const ferry = await ferryPipeline(dir, range);
  const rate = (ms: number) => CHANGES / (ms / 1000);
  const [bareRate, cliRate, ferryRate, steadyRate] = [rate(bareMs), rate(cliMs), rate(ferry.ms), rate(ferry.steadyMs)];
  const x = (r: number) => `${r.toFixed(2)}×`;
  console.log(`changes: ${CHANGES}, cores: ${cpus().length}, agent node flags: bin shebang + ${NODE_ARGS.join(' ') || 'nothing'}, delivery: ${DELIVERY}, source: ${SOURCE_EXTRA.join(', ') || 'defaults'}, agents: ${ROLES.join(' + ')}`);
  console.log(`bare zongji:                 ${(bareMs / 1000).toFixed(2)} s  ${Math.round(bareRate)} rows/s`);
  console.log(`mariadb-binlog decode-rows:  ${(cliMs / 1000).toFixed(2)} s  ${Math.round(cliRate)} rows/s`);
  console.log(`ferry cdc → file sink:       ${(ferry.ms / 1000).toFixed(2)} s from spawn (${Math.round(ferryRate)} rows/s), ${(ferry.steadyMs / 1000).toFixed(2)} s from the first event at the sink (${Math.round(steadyRate)} rows/s); peak RSS ${ferry.rssMiB.toFixed(0)} MiB, agent CPU ${ferry.cpuS.toFixed(1)} s, redis-server CPU ${ferry.redisCpuS.toFixed(1)} s`);
  console.log(`ratio vs bare zongji: ${x(ferryRate / bareRate)} from spawn, ${x(steadyRate / bareRate)} after start-up (target ≥ 0.3×); vs mariadb-binlog: ${x(ferryRate / cliRate)} / ${x(steadyRate / cliRate)}; RSS target ≤ 256 MiB`);
  console.log(
    `| ${CHANGES} changes | ${Math.round(bareRate)} | ${Math.round(cliRate)} | ${Math.round(ferryRate)} (${Math.round(steadyRate)} after start-up) | ${x(ferryRate / bareRate)} (${x(steadyRate / bareRate)}) | ${x(ferryRate / cliRate)} (${x(steadyRate / cliRate)}) | ${ferry.rssMiB.toFixed(0)} MiB | ${ferry.cpuS.toFixed(1)} s |`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  const c = await mysql.createConnection(connection);
  await c.query(`DROP DATABASE IF EXISTS ${DB}`);
  await c.end();
}
