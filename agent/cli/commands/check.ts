import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { formatProblem, loadConfig } from '../../config/load-config.js';
import type { FerryConfig, PipelineConfig } from '../../config/schema.js';
import { ConfigError, FerryError, type ConfigProblem } from '../../errors/index.js';
import { loadMappings } from '../../mapping/load-mappings.js';
import type { CheckResult } from '../../plugin/source.js';
import { evictionPolicy } from '../../queue/redis-connection.js';
import { findSink, findSource } from '../../registry.js';
import { redactUrl } from '../../telemetry/logger.js';

export interface CheckOptions {
  config: string;
  /** Only validate files; contact no server. */
  offline?: boolean;
  /** Print one JSON document instead of text. */
  json?: boolean;
}

/** One preflight finding, with the component it is about. */
export interface CheckLine extends CheckResult {
  component: string;
}

const PREFLIGHT_TIMEOUT_MS = 15_000;

/**
 * `ferry check --config FILE [--offline] [--json]`.
 *
 * 1. Validates the configuration (the loader also runs what each plugin
 *    checks in its own settings without I/O, so `--offline` finds an
 *    unknown encoding as `ferry run` does), every pipeline's mappings and
 *    their contracts, printing every problem at once: exit 2 if there is any.
 * 2. Unless `--offline`, preflights the queue's Redis and every source and
 *    sink through its plugin's `check()`: exit 1 if an error-severity check
 *    fails, else 0. Nothing is changed anywhere.
 */
export async function run(opts: CheckOptions): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const problems: ConfigProblem[] = [];
  let config: FerryConfig | undefined;
  try {
    config = await loadConfig(opts.config);
    problems.push(...(await mappingProblems(config.dir, config.agent.id, config.pipelines)));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    // The mappings are checked too, so that one run lists every problem.
    if (err.code !== 'FERRY_CONFIG_NOT_FOUND' && err.code !== 'FERRY_CONFIG_YAML') problems.push(...(await mappingProblems(dirname(resolve(opts.config)), 'check', await rawPipelines(opts.config))));
  }

  if (problems.length) {
    if (opts.json) out(JSON.stringify({ ok: false, problems }, null, 2));
    else {
      for (const p of problems) out(formatProblem(p));
      out(`\n${problems.length} problem${problems.length === 1 ? '' : 's'}: fix ${problems.length === 1 ? 'it' : 'them'} and run \`ferry check\` again (docs/configuration.md, docs/errors.md).`);
    }
    return 2;
  }
  const valid = config!;
  if (opts.offline) {
    if (opts.json) out(JSON.stringify({ ok: true, problems: [], checks: [] }, null, 2));
    else out(`${opts.config}: configuration, mappings and contracts are valid (${valid.pipelines.length} pipeline${valid.pipelines.length === 1 ? '' : 's'}); --offline: no source, sink or Redis was contacted.`);
    return 0;
  }

  const checks = [...(await queueChecks(valid)), ...(await componentChecks(valid))];
  const failed = checks.filter((c) => !c.ok && (c.severity ?? 'error') === 'error');
  if (opts.json) out(JSON.stringify({ ok: failed.length === 0, problems: [], checks }, null, 2));
  else {
    out(renderChecks(checks));
    out(failed.length ? `\n${failed.length} check${failed.length === 1 ? '' : 's'} failed: apply the fix shown beside each.` : '\nAll checks passed.');
  }
  return failed.length ? 1 : 0;
}

async function mappingProblems(dir: string, agentId: string, pipelines: readonly Pick<PipelineConfig, 'name' | 'mappings'>[]): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  for (const pipeline of pipelines) {
    try {
      await loadMappings(pipeline.mappings, { pipeline: pipeline.name, agentId, baseDir: dir });
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems.map((p) => ({ ...p, file: displayPath(dir, p.file) })));
      else if (err instanceof FerryError) problems.push({ file: displayPath(dir, pipeline.mappings.join(', ')), field: '', message: `${err.message}${err.fix ? ` — ${err.fix}` : ''}` });
      else throw err;
    }
  }
  return problems;
}

/** The pipelines of a configuration that did not validate, as far as their names and mapping lists can be read. */
async function rawPipelines(file: string): Promise<Pick<PipelineConfig, 'name' | 'mappings'>[]> {
  const raw = (await readFile(file, 'utf8').then(parse, () => null).catch(() => null)) as { pipelines?: unknown } | null;
  if (!Array.isArray(raw?.pipelines)) return [];
  return raw.pipelines.flatMap((p: { name?: unknown; mappings?: unknown }) =>
    Array.isArray(p?.mappings) && p.mappings.every((m) => typeof m === 'string') && p.mappings.length ? [{ name: typeof p.name === 'string' ? p.name : 'pipeline', mappings: p.mappings as string[] }] : [],
  );
}

/** A mapping or contract path as the user can open it from where they ran `ferry check`. */
function displayPath(baseDir: string, file: string): string {
  const abs = isAbsolute(file) ? file : resolve(baseDir, file);
  const rel = relative(process.cwd(), abs);
  return rel.startsWith('..') ? abs : rel;
}

/** Redis reachable and safe for BullMQ; with no `queue.redis`, a note on the embedded server. */
export async function queueChecks(config: FerryConfig): Promise<CheckLine[]> {
  const component = 'queue';
  const url = config.queue.redis;
  if (!url) return [embeddedRedisCheck(resolve(config.agent.dataDir, 'redis'))];
  const shown = redactUrl(url);
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => {}); // reported through connect() below
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    return [{ component, name: 'redis reachable', ok: false, detail: `cannot connect to ${shown}: ${(err as Error).message}`, fix: 'start Redis there (`systemctl start redis-server`), correct queue.redis, or remove queue.redis to use the embedded Redis' }];
  }
  try {
    const results: CheckLine[] = [{ component, name: 'redis reachable', ok: true, detail: shown }];
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
    const [major = 0, minor = 0] = version.split('.').map(Number);
    const recent = major > 6 || (major === 6 && minor >= 2);
    results.push({ component, name: 'redis version', ok: recent, severity: 'warning', detail: version, ...(recent ? {} : { fix: 'BullMQ recommends Redis 6.2 or newer' }) });
    const policy = await evictionPolicy(redis);
    if (policy === 'unknown') results.push({ component, name: 'maxmemory-policy', ok: false, severity: 'warning', detail: 'could not be read (CONFIG GET is not allowed)', fix: 'make sure the server runs with `maxmemory-policy noeviction`' });
    else results.push({ component, name: 'maxmemory-policy', ok: policy === 'noeviction', detail: policy, ...(policy === 'noeviction' ? {} : { fix: 'set `maxmemory-policy noeviction` (redis.conf, or `redis-cli CONFIG SET maxmemory-policy noeviction`): BullMQ loses jobs when keys are evicted' }) });
    return results;
  } finally {
    redis.disconnect();
  }
}

/** With no `queue.redis`, `ferry run` starts its own redis-server: is there one to start? */
function embeddedRedisCheck(dir: string): CheckLine {
  const name = 'embedded redis-server';
  for (const binary of ['redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      const version = /v=(\S+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }))?.[1] ?? 'unknown version';
      return { component: 'queue', name, ok: true, detail: `no queue.redis: \`ferry run\` starts ${binary} ${version} with its data in ${dir}` };
    } catch {
      // try the next place
    }
  }
  return { component: 'queue', name, ok: false, detail: 'no queue.redis is configured and redis-server is not installed', fix: 'apt-get install redis-server (only the binary is used), or set queue.redis to a Redis URL' };
}

/** Creates every source and sink through its plugin and runs its `check()`. */
async function componentChecks(config: FerryConfig): Promise<CheckLine[]> {
  const env = { configDir: config.dir };
  const results: CheckLine[] = [];
  for (const pipeline of config.pipelines) {
    const source = findSource(pipeline.source.type)!;
    results.push(...(await preflight(`${pipeline.name}/source (${source.type})`, () => source.create(pipeline.source as never, env))));
    for (const entry of pipeline.sinks) {
      const sink = findSink(entry.type)!;
      results.push(...(await preflight(`${pipeline.name}/${entry.name} (${sink.type})`, () => sink.create(entry as never, env))));
    }
  }
  return results;
}

async function preflight(component: string, create: () => { check?(): Promise<CheckResult[]>; close(): Promise<void> }): Promise<CheckLine[]> {
  let instance: ReturnType<typeof create> | undefined;
  try {
    instance = create();
    if (!instance.check) return [{ component, name: 'preflight', ok: false, severity: 'warning', detail: 'this component has no preflight checks' }];
    const results = await withTimeout(instance.check(), PREFLIGHT_TIMEOUT_MS);
    return results.map((r) => ({ component, ...r }));
  } catch (err) {
    const e = err instanceof FerryError ? err : undefined;
    return [{ component, name: 'preflight', ok: false, detail: err instanceof Error ? err.message : String(err), ...(e?.fix ? { fix: e.fix } : {}) }];
  } finally {
    await instance?.close().catch(() => {});
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FerryError('FERRY_PREFLIGHT_FAILED', `no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A table for people: ✓ passed, ✗ failed, ! warning; the fix under each failure. */
export function renderChecks(checks: readonly CheckLine[]): string {
  const width = (f: (c: CheckLine) => string) => Math.max(0, ...checks.map((c) => f(c).length));
  const wc = width((c) => c.component);
  const wn = width((c) => c.name);
  const lines: string[] = [];
  for (const c of checks) {
    const mark = c.ok ? '✓' : (c.severity ?? 'error') === 'error' ? '✗' : '!';
    lines.push(`${mark} ${c.component.padEnd(wc)}  ${c.name.padEnd(wn)}  ${c.detail}`);
    if (!c.ok && c.fix) lines.push(`  ${' '.repeat(wc + wn + 4)}fix: ${c.fix}`);
  }
  return lines.join('\n');
}
