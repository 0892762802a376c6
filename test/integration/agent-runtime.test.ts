import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, readJsonLines, startAgent, tempWorkspace, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { customersPipelineConfig, dropCsv, kundenRows, type CustomersPipelineOptions } from '../support/legacy-csv.js';

/**
 * The agent as a process: the embedded Redis default, the admin server,
 * a Redis that dies under it, and the quickstart itself.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function track(p: FerryProcess): FerryProcess {
  cleanups.push(async () => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  });
  return p;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  return port;
}

/** The customers pipeline every test here runs, with its queues on `queue`. */
function fileDropConfig(dir: string, queue: CustomersPipelineOptions['queue'], admin?: CustomersPipelineOptions['admin']): string {
  return customersPipelineConfig(dir, { id: 'runtime-test', logLevel: 'info', admin, queue, minAgeMs: 200 });
}

function pingPort(port: number): Promise<boolean> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => {});
  return r
    .connect()
    .then(() => r.ping())
    .then((p) => p === 'PONG')
    .catch(() => false)
    .finally(() => r.disconnect());
}

describe('the agent process', () => {
  it('starts its own redis-server with append-only persistence when no queue.redis is set, reuses it after SIGKILL, stops it on SIGTERM', async () => {
    const dir = tempWorkspace('embedded');
    const config = fileDropConfig(dir, 'embedded');
    dropCsv(join(dir, 'inbox/kunden_1.csv'), kundenRows(1000, 100));
    let agent = track(startAgent(config));
    const out = join(dir, 'out/customers.jsonl');
    await waitFor('1,000 events', () => readJsonLines(out).length >= 1000, 60_000);
    const port = Number(readFileSync(join(dir, 'data/redis/port'), 'utf8'));
    expect(port).toBeGreaterThan(0);
    const r = new Redis(port, '127.0.0.1');
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    r.disconnect();
    expect(existsSync(join(dir, 'data/redis'))).toBe(true);

    await agent.kill();
    expect(await pingPort(port)).toBe(true); // left running for the next agent
    dropCsv(join(dir, 'inbox/kunden_2.csv'), kundenRows(500, 100).map((l) => l.replace(/^K/, 'N')));
    agent = track(startAgent(config));
    await waitFor('the second file', () => readJsonLines(out).length >= 1500, 60_000);
    expect(agent.stderr()).toContain('reusing the embedded redis-server');
    expect(await agent.stop()).toBe(0);
    await waitFor('the embedded redis-server to stop', async () => !(await pingPort(port)), 10_000);
  }, 120_000);

  it('serves /healthz, /readyz and /metrics behind the bearer token and drains on SIGTERM with exit 0', async () => {
    const dir = tempWorkspace('admin');
    const port = await freePort();
    const prefix = `tadmin${Date.now().toString(36)}`;
    const config = fileDropConfig(dir, { prefix }, { listen: `127.0.0.1:${port}`, token: '${env:ADMIN_TOKEN}' });
    dropCsv(join(dir, 'inbox/kunden_1.csv'), kundenRows(2000, 100));
    const agent = track(startAgent(config, { env: { ADMIN_TOKEN: 'tok-123' } }));
    const out = join(dir, 'out/customers.jsonl');
    await waitFor('2,000 events', () => readJsonLines(out).length >= 2000, 60_000);
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: 'Bearer tok-123' };
    expect((await fetch(`${base}/healthz`)).status).toBe(401);
    expect((await fetch(`${base}/healthz`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${base}/healthz`, { headers: auth })).status).toBe(200);
    const ready = await fetch(`${base}/readyz`, { headers: auth });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { redis: true, 'customers.source': true } });
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    expect(metrics).toMatch(/component_received_events_total\{pipeline="customers",component_kind="source",component_id="file-drop"\} 2000/);
    expect(metrics).toMatch(/component_sent_events_total\{pipeline="customers",component_kind="sink",component_id="audit"\} 2000/);
    expect(metrics).toMatch(/ferry_sink_write_duration_seconds_bucket/);
    expect(metrics).toMatch(/ferry_circuit_state\{pipeline="customers",sink="audit"\} 0/);
    expect(agent.stderr()).not.toContain('tok-123');
    expect(await agent.stop()).toBe(0);
    expect(agent.stderr()).toContain('ferry agent stopped');
    const r = new Redis(6379, '127.0.0.1');
    expect(JSON.parse((await r.get(`${prefix}:pipeline:customers:checkpoint`))!)).toMatchObject({ done: true, records: 2000 });
    // A clean stop takes the agent out of `ferry status` at once, not after the status TTL.
    expect(await r.keys(`${prefix}:agent:*:status`)).toEqual([]);
    const keys = await r.keys(`${prefix}:*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  }, 120_000);

  it('loses nothing when its Redis is killed and restarted mid-stream', async () => {
    const dir = tempWorkspace('redis-restart');
    const port = await freePort();
    const redisDir = join(dir, 'redis');
    mkdirSync(redisDir);
    const startRedis = (): ChildProcess =>
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', ''], { stdio: 'ignore' });
    let redis = startRedis();
    cleanups.push(() => {
      redis.kill('SIGKILL');
    });
    await waitFor('the test redis-server', () => pingPort(port), 10_000);
    const config = fileDropConfig(dir, { redis: `redis://127.0.0.1:${port}`, prefix: 'rr' });
    dropCsv(join(dir, 'inbox/kunden_rr.csv'), kundenRows(60_000, 1000));
    const agent = track(startAgent(config));
    const out = join(dir, 'out/customers.jsonl');
    await waitFor('a first part delivered', () => readJsonLines(out).length >= 5000, 60_000, 20);
    redis.kill('SIGKILL');
    await once(redis, 'exit');
    await new Promise((r) => setTimeout(r, 2000));
    redis = startRedis();
    await waitFor('every row delivered after the restart', () => new Set(readJsonLines<{ id: string }>(out).map((e) => e.id)).size >= 60_000 || agent.proc.exitCode !== null, 120_000, 250);
    expect(await agent.stop()).toBe(0);
    expect(new Set(readJsonLines<{ id: string }>(out).map((e) => e.id)).size).toBe(60_000);
  }, 180_000);

  it('runs the quickstart: the demo pipeline on the embedded Redis, and a dropped file shows up', async () => {
    const demoDir = tempWorkspace('demo');
    const demo = spawn('bash', [join(REPO, 'agent/setup/quickstart.sh')], {
      cwd: REPO,
      env: { ...process.env, FERRY_DEMO_DIR: demoDir, FERRY_DEMO_ADMIN: `127.0.0.1:${await freePort()}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    demo.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    demo.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    cleanups.push(() => {
      if (demo.exitCode === null) demo.kill('SIGKILL');
    });
    const out = join(demoDir, 'out/customers.jsonl');
    await waitFor('the sample file’s four good customers', () => readJsonLines(out).length >= 4, 120_000);
    expect(stdout).toContain('"name":"Jürgen Straßer"');
    const names = readJsonLines<{ data: { name: string } }>(out).map((e) => e.data.name);
    expect(names).toContain('Bäckerei "€-Shop" GmbH');
    writeFile(join(demoDir, 'inbox/kunden_2024-02-01.csv'), readFileSync(join(REPO, 'agent/demo/kunden_2024-02-01.csv')));
    await waitFor('the dropped file’s events', () => readJsonLines(out).length >= 6, 30_000);
    expect(readJsonLines<{ data: { name: string } }>(out).map((e) => e.data.name)).toContain('François Öztürk');
    demo.kill('SIGTERM');
    const [code] = (await once(demo, 'exit')) as [number | null];
    expect(code, stderr).toBe(0);
  }, 240_000);
});
