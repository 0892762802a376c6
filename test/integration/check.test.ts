import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../support/agent-process.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..');
const ferry = join(repo, 'bin', 'ferry.js');

/** The reference configuration of issue #2, with the Redis URL (none: embedded) and the webhook URL swapped in. */
const reference = (redis: string, hub: string) =>
  readFileSync(join(repo, 'test', 'fixtures', 'reference', 'ferry.yaml'), 'utf8')
    .replace('  redis: "redis://127.0.0.1:6379"     # omit this line for the embedded default', redis ? `  redis: "${redis}"` : '  # no redis: embedded')
    .replace('http://127.0.0.1:8080/events', hub);

function project(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-check-'));
  cpSync(join(repo, 'mappings'), join(dir, 'mappings'), { recursive: true });
  writeFileSync(join(dir, 'ferry.yaml'), config);
  return dir;
}

function check(dir: string, args: string[] = [], env: NodeJS.ProcessEnv = { HUB_SECRET: 'hub-secret-value-1234' }): Promise<{ code: number; stdout: string; stderr: string }> {
  return ferryIn(dir, ['check', '--config', 'ferry.yaml', ...args], env);
}

function ferryIn(dir: string, args: string[], env: NodeJS.ProcessEnv = { HUB_SECRET: 'hub-secret-value-1234' }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ferry, ...args], { cwd: dir, env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('ferry check', () => {
  let hub: Server;
  let hubUrl = '';
  beforeAll(async () => {
    hub = createServer((req, res) => {
      req.resume();
      res.writeHead(200).end('[]');
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}/events`;
  });
  afterAll(() => new Promise((r) => hub.close(r)));

  it('exits 2 and lists every problem of a broken config at once', async () => {
    const broken = reference('redis://127.0.0.1:6379', 'http://h/e')
      .replace('  dataDir: ./.ferry', '  dataDri: ./.ferry')
      .replace('name: customers', 'name: Customers')
      .replace('type: file, path', 'type: fiel, path')
      .replace('partitions: 4', 'partitions: four');
    const dir = project(broken);
    writeFileSync(join(dir, 'mappings', 'customers.yaml'), readFileSync(join(dir, 'mappings', 'customers.yaml'), 'utf8').replace(/^key:/m, 'kye:'));
    const { code, stdout } = await check(dir, [], {});
    expect(code).toBe(2);
    // The mapping is checked too, although the configuration is invalid.
    expect(stdout).toMatch(/^mappings\/customers\.yaml:\d+:\d+  kye: unknown key.*key/m);
    const lines = stdout.split('\n').filter((l) => l.startsWith('ferry.yaml:'));
    expect(lines).toEqual([
      expect.stringMatching(/^ferry\.yaml:3:3  agent\.dataDri: unknown key `dataDri` \(did you mean `dataDir`\?\)/),
      expect.stringMatching(/^ferry\.yaml:8:11  pipelines\[0\]\.name: "Customers" does not match/),
      expect.stringMatching(/^ferry\.yaml:18:64  pipelines\[0\]\.sinks\[0\]\.secret: \$\{env:HUB_SECRET\} cannot be resolved: the environment variable HUB_SECRET is not set/),
      expect.stringMatching(/^ferry\.yaml:19:30  pipelines\[0\]\.sinks\[1\]\.type: unknown sink type `fiel` \(did you mean `file`\?\) — known sink types: .*file/),
      expect.stringMatching(/^ferry\.yaml:21:19  pipelines\[0\]\.delivery\.partitions: expected integer, found string "four"/),
    ]);
    expect(stdout).toMatch(/^\d+ problems: fix them/m);
    expect(Number(/^(\d+) problems/m.exec(stdout)![1])).toBeGreaterThanOrEqual(7);
  });

  it('reports a value only the plugin can judge (an unknown encoding) the same way offline, online and in `ferry run`: exit 2 at its line', async () => {
    const dir = project(reference('redis://127.0.0.1:6379', hubUrl).replace('encoding: windows-1252', 'encoding: klingon'));
    const located = /^ferry\.yaml:12:68  pipelines\[0\]\.source\.format\.encoding: unknown encoding "klingon" — use a name iconv-lite knows, e\.g\. utf-8, windows-1252, .*\(every one: https:\/\/github\.com\/ashtuchkin\/iconv-lite\/wiki\/Supported-Encodings\)$/m;
    const offline = await check(dir, ['--offline']);
    expect(offline.stdout).toMatch(located);
    expect(offline.stdout).toMatch(/^1 problem: fix it/m);
    expect(offline.code).toBe(2);
    const online = await check(dir);
    expect(online.stdout).toMatch(located);
    expect(online.stdout).not.toMatch(/^[✓✗!] /m); // nothing was preflighted
    expect(online.code).toBe(2);
    const run = await ferryIn(dir, ['run', '--config', 'ferry.yaml']);
    expect(run.stderr).toMatch(/^ferry: FERRY_CONFIG_INVALID: /m);
    expect(run.stderr).toMatch(/^ {2}ferry\.yaml:12:68 \(pipelines\[0\]\.source\.format\.encoding\): unknown encoding "klingon" — use a name iconv-lite knows/m);
    expect(run.code).toBe(2);
  });

  it('suggests the encoding meant by a typo', async () => {
    const dir = project(reference('redis://127.0.0.1:6379', hubUrl).replace('encoding: windows-1252', 'encoding: windows-1252x'));
    const { code, stdout } = await check(dir, ['--offline']);
    expect(stdout).toMatch(/^ferry\.yaml:12:68  pipelines\[0\]\.source\.format\.encoding: unknown encoding "windows-1252x" \(did you mean `windows1252`\?\)/m);
    expect(code).toBe(2);
  });

  it('exits 2 on a broken mapping of a valid config, naming the mapping file and line', async () => {
    const dir = project(reference('redis://127.0.0.1:6379', hubUrl));
    writeFileSync(join(dir, 'mappings', 'customers.yaml'), 'entity: customer\ncontract: contracts/customer.v1.schema.json\nmatch: { file: "*.csv" }\nkey: [id]\nfields:\n  id: { from: KUNDE_NR, tpye: string }\n');
    const { code, stdout } = await check(dir, ['--offline']);
    expect(code).toBe(2);
    expect(stdout).toMatch(/^mappings\/customers\.yaml:6:\d+  .*tpye/m);
  });

  it('exits 0 --offline on the reference configuration without contacting anything', async () => {
    const { code, stdout, stderr } = await check(project(reference(`redis://127.0.0.1:${await freePort()}`, 'http://127.0.0.1:1/events')), ['--offline']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('configuration, mappings and contracts are valid');
  });

  it('preflights Redis and every source and sink: exit 0 when all pass', async () => {
    const { code, stdout } = await check(project(reference('redis://127.0.0.1:6379', hubUrl)));
    expect(stdout).toMatch(/^✓ queue +redis reachable +redis:\/\/127\.0\.0\.1:6379/m);
    expect(stdout).toMatch(/^✓ queue +maxmemory-policy +noeviction/m);
    expect(stdout).toMatch(/^✓ customers\/source \(file-drop\) /m);
    expect(stdout).toMatch(/^✓ customers\/hub \(webhook\) /m);
    expect(stdout).toMatch(/^✓ customers\/audit \(file\) /m);
    expect(stdout).not.toContain('hub-secret-value-1234');
    expect(code).toBe(0);
  });

  it('exits 1 with a fix when Redis is not reachable', async () => {
    const port = await freePort();
    const { code, stdout } = await check(project(reference(`redis://127.0.0.1:${port}`, hubUrl)));
    expect(code).toBe(1);
    expect(stdout).toMatch(new RegExp(`^✗ queue +redis reachable +cannot connect to redis://127\\.0\\.0\\.1:${port}`, 'm'));
    expect(stdout).toMatch(/fix: start Redis there/);
    expect(stdout).toContain('1 check failed');
  });

  it('checks for the embedded redis-server when queue.redis is absent, and prints JSON with --json', async () => {
    const { code, stdout } = await check(project(reference('', hubUrl)), ['--json']);
    const result = JSON.parse(stdout) as { ok: boolean; checks: { component: string; name: string; ok: boolean; severity?: string; detail: string }[] };
    expect(result.ok).toBe(true);
    expect(result.checks).toContainEqual(expect.objectContaining({ component: 'queue', name: 'embedded redis-server', ok: true, detail: expect.stringContaining('.ferry/redis') }));
    expect(result.checks.filter((c) => c.component.startsWith('customers/')).length).toBeGreaterThanOrEqual(3);
    expect(code).toBe(0);
  });
});
