import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatProblem, loadConfig, secretValues } from '../../agent/config/load-config.js';
import { ConfigError } from '../../agent/errors/index.js';
import { defineSink, defineSource, type SinkPlugin, type SourcePlugin } from '../../agent/plugin/define.js';
import { SINKS, SOURCES } from '../../agent/registry.js';
import { createLogger, secretRedactor } from '../../agent/telemetry/logger.js';

// A sink type that exists only in this test, to exercise plugin-schema validation
// independently of which real plugins are registered.
const probe = defineSink({
  type: 'config-probe',
  summary: 'test only',
  config: Type.Object(
    {
      name: Type.String(),
      type: Type.Literal('config-probe'),
      url: Type.String({ description: 'Where to send events.' }),
      timeoutMs: Type.Integer({ minimum: 1, default: 3000, description: 'Request timeout.' }),
    },
    { additionalProperties: false },
  ),
  create: () => {
    throw new Error('not used');
  },
});

const probeSource = defineSource({
  type: 'config-probe-source',
  summary: 'test only',
  config: Type.Object(
    { type: Type.Literal('config-probe-source'), path: Type.String({ default: './inbox', description: 'Folder to read.' }) },
    { additionalProperties: false },
  ),
  create: () => {
    throw new Error('not used');
  },
});

const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function problems(file: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: string; lines: string[]; text: string }> {
  const err = await loadConfig(file, { env }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  const lines = e.problems.map(formatProblem);
  return { code: e.code, lines, text: [e.message, e.describe(), ...lines].join('\n') };
}

const GOOD = `agent:
  id: test-host
queue:
  redis: "redis://127.0.0.1:6379"
pipelines:
  - name: orders
    source: { type: no-such-source-yet }
    mappings: [m.yaml]
    sinks:
      - { name: out, type: config-probe, url: "http://x" }
`;

describe('loadConfig', () => {
  beforeAll(() => {
    (SINKS as SinkPlugin[]).push(probe as unknown as SinkPlugin);
    (SOURCES as SourcePlugin[]).push(probeSource as unknown as SourcePlugin);
  });
  afterAll(() => {
    (SINKS as SinkPlugin[]).splice(SINKS.indexOf(probe as unknown as SinkPlugin), 1);
    (SOURCES as SourcePlugin[]).splice(SOURCES.indexOf(probeSource as unknown as SourcePlugin), 1);
  });

  it('reports a typo in a key at its line and column, with a suggestion', async () => {
    const file = write('typo.yaml', GOOD.replace('queue:', 'agent2: {}\nqueue:').replace('  id: test-host', '  id: test-host\n  dataDri: ./data'));
    const { lines, code } = await problems(file);
    expect(code).toBe('FERRY_CONFIG_INVALID');
    expect(lines).toContain(`${file}:3:3  agent.dataDri: unknown key \`dataDri\` (did you mean \`dataDir\`?) — remove it; allowed keys: id, dataDir, logLevel, admin`);
    expect(lines.some((l) => l.startsWith(`${file}:4:1  agent2: unknown key \`agent2\``))).toBe(true);
  });

  it('reports a wrong type and a bad pipeline name with what is expected', async () => {
    const file = write('types.yaml', GOOD.replace('name: orders', 'name: Orders!').concat('    delivery: { partitions: many }\n'));
    const { lines } = await problems(file);
    expect(lines.find((l) => l.includes('pipelines[0].name'))).toMatch(new RegExp(`^${file}:6:11  pipelines\\[0\\]\\.name: "Orders!" does not match .* lowercase letters`));
    expect(lines.find((l) => l.includes('partitions'))).toMatch(new RegExp(`^${file}:11:29  pipelines\\[0\\]\\.delivery\\.partitions: expected integer, found string "many"`));
  });

  it('names the allowed values of an enumerated field, with a suggestion', async () => {
    const file = write('enum.yaml', GOOD.replace('  id: test-host', '  id: test-host\n  logLevel: debgu'));
    const { lines } = await problems(file);
    expect(lines).toContain(`${file}:3:13  agent.logLevel: "debgu" is not allowed (did you mean \`debug\`?) — use one of: "trace", "debug", "info", "warn", "error"`);
  });

  it('names the known types and suggests the closest for an unknown sink type', async () => {
    const file = write('unknown-sink.yaml', GOOD.replace('type: config-probe', 'type: config-prob'));
    const { lines } = await problems(file);
    const line = lines.find((l) => l.includes('sinks[0].type'));
    expect(line).toContain(`${file}:10:28  `);
    expect(line).toContain('unknown sink type `config-prob` (did you mean `config-probe`?)');
    expect(line).toContain('known sink types: ');
    expect(line).toContain('config-probe');
  });

  it('validates plugin fields against the plugin schema', async () => {
    const file = write('plugin-fields.yaml', GOOD.replace('url: "http://x"', 'url: 42, timeotMs: 5'));
    const { lines } = await problems(file);
    expect(lines.some((l) => l.startsWith(`${file}:10:47  pipelines[0].sinks[0].url: expected string, found number 42 — Where to send events.`))).toBe(true);
    expect(lines.some((l) => l.includes('pipelines[0].sinks[0].timeotMs: unknown key `timeotMs` (did you mean `timeoutMs`?)'))).toBe(true);
  });

  it('reports problems inside a union variant against the variant chosen (file-drop formats)', async () => {
    const fileDrop = (source: string) => write('variant.yaml', `pipelines:
  - name: files
    source: ${source}
    mappings: [m.yaml]
    sinks: [{ name: out, type: stdout }]
`);
    let r = await problems(fileDrop('{ type: file-drop, path: ./in, format: { type: csv, delimter: ";" } }'));
    expect(r.lines).toEqual([expect.stringMatching(/variant\.yaml:3:65  pipelines\[0\]\.source\.format\.delimter: unknown key `delimter` \(did you mean `delimiter`\?\)/)]);
    r = await problems(fileDrop('{ type: file-drop, path: ./in, format: { type: cvs } }'));
    expect(r.lines).toEqual([expect.stringMatching(/variant\.yaml:3:60  pipelines\[0\]\.source\.format\.type: "cvs" is not allowed \(did you mean `csv`\?\) — use one of: "csv", "jsonl", "fixed-width"$/)]);
    r = await problems(fileDrop('{ type: file-drop, path: ./in, format: { type: csv }, complete: { minAgeMs: "500" } }'));
    expect(r.lines).toEqual([expect.stringMatching(/pipelines\[0\]\.source\.complete\.minAgeMs: expected integer, found string "500"/)]);
    r = await problems(fileDrop('{ type: file-drop, path: ./in, format: csv }'));
    expect(r.lines).toEqual([expect.stringMatching(/pipelines\[0\]\.source\.format: expected object, found string "csv" — How the files are parsed/)]);
  });

  it('lists every problem at once, in file order', async () => {
    const file = write('many.yaml', `agent: { colour: blue }
queue: { prefix: "bad prefix" }
pipelines:
  - name: a
    source: { type: nope }
    mappings: []
    sinks: [{ name: x, type: config-probe }]
  - name: a
    source: { type: nope }
    mappings: [m.yaml]
    sinks: [{ name: x, type: config-probe, url: u }, { name: x, type: config-probe, url: u }]
`);
    const { lines, code } = await problems(file);
    expect(code).toBe('FERRY_CONFIG_INVALID');
    const fields = lines.map((l) => l.split('  ')[1]!.split(':')[0]);
    expect(fields).toEqual([
      'agent.colour',
      'queue.prefix',
      'pipelines[0].source.type',
      'pipelines[0].mappings',
      'pipelines[0].sinks[0].url',
      'pipelines[1].name',
      'pipelines[1].source.type',
      'pipelines[1].sinks[1].name',
    ]);
    expect(lines.find((l) => l.includes('pipelines[1].name'))).toContain('already used by pipelines[0]');
    expect(lines.find((l) => l.includes('pipelines[0].sinks[0].url'))).toContain(`${file}:7:13  pipelines[0].sinks[0].url: missing required field — add \`url:\` (Where to send events.)`);
  });

  it('applies defaults, defaults agent.id to the host name and makes dataDir absolute', async () => {
    const file = write('defaults.yaml', `pipelines:
  - name: orders
    source: { type: config-probe-source }
    mappings: [m.yaml]
    sinks: [{ name: out, type: config-probe, url: "http://x" }]
`);
    const config = await loadConfig(file, { env: {} });
    expect(config.file).toBe(file);
    expect(config.dir).toBe(dir);
    expect(config.agent).toEqual({ id: hostname(), dataDir: join(dir, '.ferry'), logLevel: 'info' });
    expect(config.queue).toEqual({ prefix: 'ferry' });
    const [pipeline] = config.pipelines;
    expect(pipeline!.delivery).toEqual({ partitions: 4, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 8, initialMs: 100, maxMs: 5000 } });
    // Plugin defaults are applied; plugin paths stay as written.
    expect(pipeline!.source).toEqual({ type: 'config-probe-source', path: './inbox' });
    expect(pipeline!.sinks[0]).toEqual({ name: 'out', type: 'config-probe', url: 'http://x', timeoutMs: 3000 });
    expect(secretValues(config)).toEqual([]);
  });

  it('resolves ${env:} and ${file:} secrets, also inside a URL, and registers them for redaction', async () => {
    write('token.txt', 'file-secret-123\n');
    const good = GOOD.replace('no-such-source-yet', 'config-probe-source');
    const file = write('secrets.yaml', good.replace('url: "http://x"', 'url: "http://user:${env:PW}@host/${file:token.txt}"'));
    const config = await loadConfig(file, { env: { PW: 'env-secret-456' } });
    expect((config.pipelines[0]!.sinks[0] as { url?: string }).url).toBe('http://user:env-secret-456@host/file-secret-123');
    expect([...secretValues(config)].sort()).toEqual(['env-secret-456', 'file-secret-123']);

    // When loading fails for another reason, the resolved values still never show.
    const broken = write('secrets-broken.yaml', GOOD.replace('url: "http://x"', 'url: "${env:PW}", timeoutMs: "${file:token.txt}"').replace('no-such-source-yet', '"${env:SRC}"'));
    const err = await problems(broken, { PW: 'env-secret-456', SRC: 'still-unknown' });
    expect(err.text).toContain('unknown source type `still-unknown`');
    expect(err.text).toContain('timeoutMs: expected integer, found string');
    expect(err.text).not.toContain('env-secret-456');
    expect(err.text).not.toContain('file-secret-123');
  });

  it('names a missing secret, its field and line, never a value', async () => {
    const file = write('missing-secret.yaml', GOOD.replace('url: "http://x"', 'url: "http://${env:NOT_SET}@h/${file:/nonexistent/ferry-token}"'));
    const { lines, code } = await problems(file, { OTHER: 'irrelevant-value' });
    const mine = lines.filter((l) => l.includes('sinks[0].url'));
    expect(mine).toHaveLength(2);
    expect(mine[0]).toMatch(new RegExp(`^${file}:10:47  pipelines\\[0\\]\\.sinks\\[0\\]\\.url: \\$\\{env:NOT_SET\\} cannot be resolved: the environment variable NOT_SET is not set`));
    expect(mine[1]).toContain('${file:/nonexistent/ferry-token} cannot be resolved: /nonexistent/ferry-token does not exist');
    expect(code).toBe('FERRY_CONFIG_INVALID'); // the unknown source type is there too
  });

  it('never quotes a resolved secret in a validation message', async () => {
    const file = write('secret-pattern.yaml', GOOD.replace('prefix', 'x').replace('redis: "redis://127.0.0.1:6379"', 'redis: "redis://127.0.0.1:6379"\n  prefix: "${env:PREFIX}"'));
    const { text, lines } = await problems(file, { PREFIX: 'has spaces so invalid' });
    expect(lines.some((l) => l.includes('queue.prefix: the value does not match'))).toBe(true);
    expect(text).not.toContain('has spaces so invalid');
  });

  it('redacts resolved secrets from log lines', async () => {
    const chunks: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    const redact = secretRedactor(['s3cr3t"value', 'plain-secret-789'])!;
    const log = pino({ hooks: { streamWrite: redact } }, sink);
    log.info({ anywhere: 'prefix plain-secret-789 suffix', q: 's3cr3t"value' }, 'connecting with plain-secret-789');
    const out = chunks.join('');
    expect(out).not.toContain('plain-secret-789');
    expect(out).not.toContain('s3cr3t');
    expect(JSON.parse(out).anywhere).toBe('prefix [redacted] suffix');
  });

  it('keeps the secrets of a loaded config out of the log file, whatever field they are logged under', async () => {
    write('hub.key', 'logged-secret-4711');
    const file = write('log-secrets.yaml', GOOD.replace('no-such-source-yet', 'config-probe-source').replace('url: "http://x"', 'url: "http://h/${file:hub.key}"'));
    const config = await loadConfig(file, { env: {} });
    const logFile = join(dir, 'agent.log');
    const fd = openSync(logFile, 'w');
    const logger = createLogger('info', fd, secretValues(config));
    logger.info({ sink: config.pipelines[0]!.sinks[0], detail: 'posting to http://h/logged-secret-4711' }, 'delivering with logged-secret-4711');
    logger.flush();
    closeSync(fd);
    const text = readFileSync(logFile, 'utf8');
    expect(text).toContain('delivering with [redacted]');
    expect(text).not.toContain('logged-secret-4711');
  });

  it('loads the reference configuration of the issue with the registered plugins', async () => {
    // The reference configuration, exactly as written there.
    const file = write('reference.yaml', readFileSync(join(import.meta.dirname, '..', 'fixtures', 'reference', 'ferry.yaml'), 'utf8'));
    const config = await loadConfig(file, { env: { HUB_SECRET: 'hub-secret' } });
    expect(config.agent).toEqual({ id: 'demo-host', dataDir: join(dir, '.ferry'), logLevel: 'info' });
    const [p] = config.pipelines;
    expect(p!.source).toMatchObject({ type: 'file-drop', path: './inbox', format: { type: 'csv', delimiter: ';', header: true, encoding: 'windows-1252' }, archive: './archive' });
    expect(p!.sinks).toEqual([
      expect.objectContaining({ name: 'hub', type: 'webhook', url: 'http://127.0.0.1:8080/events', secret: 'hub-secret' }),
      expect.objectContaining({ name: 'audit', type: 'file', path: './out/customers.jsonl' }),
    ]);
    expect(p!.delivery).toEqual({ partitions: 4, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 8, initialMs: 100, maxMs: 5000 } });
    expect(secretValues(config)).toEqual(['hub-secret']);
    // Without the secret it fails, naming the reference only.
    const { lines } = await problems(file, {});
    expect(lines).toEqual([expect.stringMatching(/reference\.yaml:18:82  pipelines\[0\]\.sinks\[0\]\.secret: \$\{env:HUB_SECRET\} cannot be resolved/)]);
  });

  it('loads every complete example of docs/configuration.md', async () => {
    const guide = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');
    const examples = [...guide.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((y) => /^(agent|pipelines):/m.test(y) && /^pipelines:/m.test(y) && !y.includes('...'));
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const [i, yaml] of examples.entries()) {
      const file = write(`guide-${i}.yaml`, yaml);
      await expect(loadConfig(file, { env: { HUB_SECRET: 'h', REDIS_PASSWORD: 'r', FERRY_ADMIN_TOKEN: 't', PG_PASSWORD: 'p' } }), yaml).resolves.toBeTruthy();
    }
  });

  it('reports a missing file and YAML syntax errors with their codes', async () => {
    const missing = await problems(join(dir, 'absent.yaml'));
    expect(missing.code).toBe('FERRY_CONFIG_NOT_FOUND');
    expect(missing.lines[0]).toContain('absent.yaml  no such file');
    const broken = await problems(write('broken.yaml', 'agent:\n  id: [unclosed\nqueue: {}\n'));
    expect(broken.code).toBe('FERRY_CONFIG_YAML');
    expect(broken.lines[0]).toMatch(new RegExp(`^${dir}/broken\\.yaml:\\d+:\\d+  `));
  });

  it('reports duplicate YAML keys as syntax errors', async () => {
    const { code, lines } = await problems(write('dup.yaml', 'agent: {}\nagent: {}\n'));
    expect(code).toBe('FERRY_CONFIG_YAML');
    expect(lines[0]).toContain(':2:1');
  });

});
