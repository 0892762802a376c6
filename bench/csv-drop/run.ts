/**
 * bench/csv-drop: a 1M-row legacy CSV (semicolon, Windows-1252) through
 * file-drop → mapping + contract → BullMQ on Redis → file sink, side by side
 * with bare csv-parse (iconv-lite decode + csv-parse, the same options) of
 * the same file, in one run. Prints rows/s of both, the ratio, and the
 * agent's peak RSS (VmHWM), as a Markdown table row for docs/benchmarks.md.
 *
 *   npm run build && node dist/bench/csv-drop/run.js [--rows 1000000] [--redis redis://127.0.0.1:6379]
 *     [--node-args "--trace-gc" --agent-stdout FILE]
 */
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import { lineCounter } from '../support/growing-file.js';
import { cpuSeconds, peakRssMiB } from '../support/process-stats.js';
import { writeBenchConfig } from '../support/bench-config.js';
import { spawnInstalledAgent, stopAndForget } from '../support/installed-agent.js';

const REPO = resolve(import.meta.dirname, '../../..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const ROWS = Number(args.get('rows') ?? 1_000_000);
const REDIS = args.get('redis') ?? 'redis://127.0.0.1:6379';
/** Extra node flags for the agent, e.g. `--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"` to see where its time goes. */
const NODE_ARGS = (args.get('node-args') ?? '').split(' ').filter(Boolean);
/** Where the agent's stdout goes (e.g. with `--node-args --trace-gc`); discarded otherwise. */
const AGENT_STDOUT = args.get('agent-stdout');

async function writeCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  const write = async (s: string) => {
    if (!out.write(iconv.encode(s, 'win1252'))) await once(out, 'drain');
  };
  await write('KUNDE_NR;VORNAME;NACHNAME;EMAIL;SALDO;KUNDE_SEIT;STATUS\r\n');
  let chunk = '';
  for (let i = 1; i <= ROWS; i++) {
    chunk += `K${i % 50_000};Jürgen;Straßer ${i};k${i}@example.de;${i},50;${String((i % 28) + 1).padStart(2, '0')}.01.2024;${i % 2 ? 'A' : 'I'}\r\n`;
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  out.end();
  await once(out, 'finish');
}

async function bareCsvParse(file: string): Promise<number> {
  const started = performance.now();
  let rows = 0;
  const parser = createReadStream(file).pipe(iconv.decodeStream('win1252')).pipe(parse({ delimiter: ';', columns: true, bom: true, skip_empty_lines: true }));
  for await (const _ of parser) rows++;
  if (rows !== ROWS) throw new Error(`csv-parse read ${rows} rows, expected ${ROWS}`);
  return performance.now() - started;
}




async function ferryPipeline(dir: string, file: string): Promise<{ ms: number; rssMiB: number; cpuS: number }> {
  const prefix = `bench${Date.now().toString(36)}`;
  const inbox = join(dir, 'inbox');
  mkdirSync(inbox);
  const config = writeBenchConfig(dir, {
    redis: REDIS,
    prefix,
    pipeline: 'customers',
    source: `      type: file-drop
      path: ./inbox
      format: { type: csv, delimiter: ";", header: true, encoding: windows-1252 }
      complete: { minAgeMs: 100 }
      archive: ./archive
`,
    mappings: join(REPO, 'mappings/customers.yaml'),
    sinkFile: 'customers.jsonl',
  });
  const agent = spawnInstalledAgent(config, { nodeArgs: NODE_ARGS, stdout: AGENT_STDOUT ? openSync(AGENT_STDOUT, 'w') : 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  const count = lineCounter(join(dir, 'out/customers.jsonl'));
  const started = performance.now();
  const cpuBefore = cpuSeconds(agent.pid!);
  renameSync(file, join(inbox, 'kunden_bench.csv'));
  let rssMiB = 0;
  while (count() < ROWS) {
    if (agent.exitCode !== null) throw new Error(`the agent exited with ${agent.exitCode}`);
    rssMiB = Math.max(rssMiB, peakRssMiB(agent.pid!));
    await new Promise((r) => setTimeout(r, 50));
  }
  const ms = performance.now() - started;
  rssMiB = Math.max(rssMiB, peakRssMiB(agent.pid!));
  const cpuS = cpuSeconds(agent.pid!) - cpuBefore;
  await stopAndForget([agent], REDIS, prefix);
  return { ms, rssMiB, cpuS };
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-csv-'));
try {
  const file = join(dir, 'kunden_bench.csv');
  await writeCsv(file);
  const mb = statSync(file).size / 1e6;
  await bareCsvParse(file); // warm the page cache and the JIT
  const bareMs = await bareCsvParse(file);
  const ferry = await ferryPipeline(dir, file);
  const bareRate = ROWS / (bareMs / 1000);
  const ferryRate = ROWS / (ferry.ms / 1000);
  const ratio = ferryRate / bareRate;
  console.log(`rows: ${ROWS} (${mb.toFixed(1)} MB), cores: ${cpus().length}`);
  console.log(`bare csv-parse:            ${(bareMs / 1000).toFixed(2)} s  ${Math.round(bareRate)} rows/s`);
  console.log(`ferry drop → file sink:    ${(ferry.ms / 1000).toFixed(2)} s  ${Math.round(ferryRate)} rows/s  peak RSS ${ferry.rssMiB.toFixed(0)} MiB, agent CPU ${ferry.cpuS.toFixed(1)} s`);
  console.log(`ratio: ${ratio.toFixed(2)}× (target ≥ 0.5×), RSS target ≤ 256 MiB`);
  console.log(`| csv-drop ${ROWS} rows | ${Math.round(bareRate)} rows/s | ${Math.round(ferryRate)} rows/s | ${ratio.toFixed(2)}× | ${ferry.rssMiB.toFixed(0)} MiB |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
