import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import type { Sink } from '../../agent/plugin/sink.js';
import { DeadLetterQueue } from '../../agent/queue/dead-letter-queue.js';
import { idempotencyKey, signBody, webhookSink, type WebhookSinkConfig } from '../../sinks/webhook/index.js';
import { describeSink, sampleEvents, type SinkTarget } from '../conformance/describe-sink.js';
import { deleteRedisPrefix, freePort, startAgent, waitFor, type FerryProcess } from '../support/agent-process.js';
import { signatureValid, start, type ChaosOptions, type ChaosWebhookServer } from '../support/chaos-webhook-server.js';
import { customersWorkspace, dropCsv } from '../support/legacy-csv.js';

const SECRET = 'not-a-real-secret-7f3a';
const ctx = { pipeline: 'p', sink: 'hub', agentId: 'test', dataDir: '/tmp', logger: pino({ level: 'silent' }) };
const live = (): AbortSignal => new AbortController().signal;

async function chaosTarget(options: ChaosOptions = {}, extra: Partial<WebhookSinkConfig> = {}): Promise<SinkTarget<WebhookSinkConfig> & { server: ChaosWebhookServer }> {
  const server = await start({ secret: SECRET, ...options });
  return {
    server,
    config: { name: 'hub', type: 'webhook', url: server.url, secret: SECRET, timeoutMs: 2000, ...extra },
    env: { configDir: '/tmp' },
    readBack: async () => [...server.received.values()],
    // The test receiver drops a repeated Idempotency-Key, as docs/sinks/webhook.md asks receivers to.
    dropsDuplicates: true,
    dedupeKeys: async () => [...server.keys],
    cleanup: () => server.close(),
  };
}

async function refusedTarget(): Promise<SinkTarget<WebhookSinkConfig>> {
  return {
    config: { name: 'hub', type: 'webhook', url: `http://127.0.0.1:${await freePort()}/events`, timeoutMs: 2000 },
    env: { configDir: '/tmp' },
    readBack: async () => [],
  };
}

describeSink('webhook', {
  plugin: webhookSink,
  target: () => chaosTarget(),
  badConfigs: {
    'has no url': { name: 'hub', type: 'webhook' },
    'has an ftp url': { name: 'hub', type: 'webhook', url: 'ftp://example.com/x' },
    'has a zero timeout': { name: 'hub', type: 'webhook', url: 'http://x/', timeoutMs: 0 },
    'has a fractional timeout': { name: 'hub', type: 'webhook', url: 'http://x/', timeoutMs: 1.5 },
    'has an unknown key': { name: 'hub', type: 'webhook', url: 'http://x/', retries: 3 },
    'has a header that is not a string': { name: 'hub', type: 'webhook', url: 'http://x/', headers: { 'X-N': 1 } },
    'has a header name with a space': { name: 'hub', type: 'webhook', url: 'http://x/', headers: { 'X N': 'v' } },
    'uses GET': { name: 'hub', type: 'webhook', url: 'http://x/', method: 'GET' },
    'has an empty secret': { name: 'hub', type: 'webhook', url: 'http://x/', secret: '' },
  },
  failures: [
    { name: '500', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 500 }] }) },
    { name: '429 Retry-After: 1', expect: 'retryable', retryAfterMs: 1000, target: () => chaosTarget({ script: [{ status: 429, retryAfter: '1' }] }) },
    { name: '408', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 408 }] }) },
    { name: 'timeout', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 200, delayMs: 3000 }] }, { timeoutMs: 300 }) },
    { name: 'connection refused', expect: 'retryable', target: refusedTarget },
    { name: '400', expect: 'permanent', target: () => chaosTarget({ script: [{ status: 400 }] }) },
    // A refusal that blames the sink's config or the route, not the events: they must wait for the fix.
    { name: '401 (bad signature)', expect: 'retryable', target: () => chaosTarget({}, { secret: 'wrong-secret' }) },
    { name: '403', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 403 }] }) },
    { name: '404', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 404 }] }) },
    { name: '302', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 302 }] }) },
    { name: '409', expect: 'retryable', target: () => chaosTarget({ script: [{ status: 409 }] }) },
    { name: '413', expect: 'permanent', target: () => chaosTarget({ script: [{ status: 413 }] }) },
    { name: '415', expect: 'permanent', target: () => chaosTarget({ script: [{ status: 415 }] }) },
    { name: '422', expect: 'permanent', target: () => chaosTarget({ script: [{ status: 422 }] }) },
  ],
  unreachable: refusedTarget,
  hanging: () => chaosTarget({ script: [{ status: 200, delayMs: 10_000 }] }, { timeoutMs: 60_000 }),
});

describe('webhook sink', () => {
  const opened: Array<{ sink: Sink; server?: ChaosWebhookServer }> = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) {
      await o.sink.close();
      await o.server?.close();
    }
  });

  async function openOn(options: ChaosOptions, extra: Partial<WebhookSinkConfig> = {}): Promise<{ sink: Sink; server: ChaosWebhookServer }> {
    const t = await chaosTarget(options, extra);
    const sink = webhookSink.create(t.config, t.env);
    await sink.open(ctx);
    opened.push({ sink, server: t.server });
    return { sink, server: t.server };
  }

  /** What the lead's delivery worker does, at its simplest: write until it succeeds, waiting Retry-After when told. */
  async function deliver(sink: Sink, batch: FerryEvent[]): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        await sink.write(batch, live());
        return attempt;
      } catch (err) {
        if (!(err instanceof RetryableError)) throw err;
        await new Promise((r) => setTimeout(r, err.retryAfterMs ?? 20));
      }
    }
  }

  it('delivers every event through 30% 500s, 429s with Retry-After and timeouts; signatures verify; duplicates are dropped by Idempotency-Key', async () => {
    const { sink, server } = await openOn({ fail500: 0.3, fail429: 0.1, timeoutRate: 0.1, slowMs: 1200, seed: 42 }, { timeoutMs: 400 });
    const events = sampleEvents(2000, 'chaos');
    const partitions = Array.from({ length: 4 }, (_, p) => events.filter((_, i) => i % 4 === p));
    // Each partition writes its batches in order, partitions side by side, as the worker pool does.
    await Promise.all(
      partitions.map(async (part) => {
        for (let i = 0; i < part.length; i += 100) await deliver(sink, part.slice(i, i + 100));
      }),
    );
    // Answers held back past the sink's timeout still land; wait for them.
    await new Promise((r) => setTimeout(r, 1300));

    expect(server.received.size).toBe(events.length);
    for (const e of events) expect(server.received.get(e.id)).toEqual(e);
    expect(server.badSignatures).toBe(0);
    expect(server.badRequests).toBe(0);
    expect(server.statuses[500]).toBeGreaterThan(0);
    expect(server.statuses[429]).toBeGreaterThan(0);
    // A batch the server took but answered too late was sent again: its key gave it away.
    expect(server.duplicateBatches).toBeGreaterThan(0);
    expect(server.duplicateEvents).toBe(0);
  });

  it('sends the JSON array with a verifiable signature, a deterministic Idempotency-Key, the event count and extra headers', async () => {
    const { sink, server } = await openOn({}, { headers: { Authorization: 'Bearer t0ken', 'X-Tenant': 'acme' } });
    const events = sampleEvents(7, 'headers');
    await sink.write(events, live());
    const first = server.last!;
    expect(first.method).toBe('POST');
    expect(JSON.parse(first.body.toString('utf8'))).toEqual(events);
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['x-ferry-event-count']).toBe('7');
    expect(first.headers['x-ferry-signature']).toBe(signBody(first.body, SECRET));
    expect(signatureValid(first.body, first.headers['x-ferry-signature'] as string, SECRET)).toBe(true);
    expect(first.headers['idempotency-key']).toBe(idempotencyKey(events));
    expect(first.headers.authorization).toBe('Bearer t0ken');
    expect(first.headers['x-tenant']).toBe('acme');

    await sink.write(events, live());
    expect(server.last!.headers['idempotency-key']).toBe(first.headers['idempotency-key']);
    expect(server.duplicateBatches).toBe(1);
    await sink.write(events.slice(0, 3), live());
    expect(server.last!.headers['idempotency-key']).not.toBe(first.headers['idempotency-key']);
  });

  it('sends no signature without a secret (nor a forged one from headers), and PUT when asked', async () => {
    const server = await start();
    const headers = { 'X-Ferry-Signature': 'sha256=forged', 'Idempotency-Key': 'fixed', 'Content-Type': 'text/plain' };
    const sink = webhookSink.create({ name: 'hub', type: 'webhook', url: server.url, method: 'PUT', headers }, { configDir: '/tmp' });
    opened.push({ sink, server });
    await sink.open(ctx);
    await sink.write(sampleEvents(1), live());
    expect(server.last!.method).toBe('PUT');
    expect(server.last!.headers['x-ferry-signature']).toBeUndefined();
    expect(server.last!.headers['idempotency-key']).toBe(idempotencyKey(sampleEvents(1)));
    expect(server.last!.headers['content-type']).toBe('application/json');
  });

  it('answers 400 with a PermanentError naming the status and the response body', async () => {
    const { sink } = await openOn({ script: [{ status: 400, body: 'data.email must be a string' }] });
    const err = await sink.write(sampleEvents(2), live()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/400.*data\.email must be a string/);
  });

  it('answers 413 with advice to lower delivery.batch.maxEvents', async () => {
    const { sink } = await openOn({ script: [{ status: 413, body: 'too big' }] });
    const err = await sink.write(sampleEvents(2), live()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toContain('lower delivery.batch.maxEvents');
  });

  it('answers 429 Retry-After: 1 with retryAfterMs 1000, and 503 with an HTTP-date with about that long', async () => {
    // An HTTP-date has whole seconds; a minute ahead leaves half of it to spare for a slow machine.
    const at = new Date(Date.now() + 60_000).toUTCString();
    const { sink } = await openOn({ script: [{ status: 429, retryAfter: '1' }, { status: 503, retryAfter: at }] });
    const first = await sink.write(sampleEvents(2), live()).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(RetryableError);
    expect((first as RetryableError).retryAfterMs).toBe(1000);
    const second = (await sink.write(sampleEvents(2), live()).catch((e: unknown) => e)) as RetryableError;
    expect(second).toBeInstanceOf(RetryableError);
    expect(second.retryAfterMs).toBeGreaterThan(30_000);
    expect(second.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('gives up on a slow answer after about timeoutMs with a RetryableError', async () => {
    const { sink } = await openOn({ script: [{ status: 200, delayMs: 5000 }] }, { timeoutMs: 300 });
    const started = Date.now();
    const err = await sink.write(sampleEvents(2), live()).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toContain('300 ms');
    expect(took).toBeGreaterThanOrEqual(280);
    // Well short of the 5 s the server would take, with room for a loaded machine.
    expect(took).toBeLessThan(4000);
  });

  it('never puts the secret or URL credentials in an error, and sends URL credentials as Basic auth', async () => {
    const server = await start({ script: [{ status: 500 }] });
    const url = server.url.replace('http://', 'http://robot:hunter2pass@') + '?token=qs-secret';
    const sink = webhookSink.create({ name: 'hub', type: 'webhook', url, secret: SECRET }, { configDir: '/tmp' });
    opened.push({ sink, server });
    await sink.open(ctx);
    const err = (await sink.write(sampleEvents(1), live()).catch((e: unknown) => e)) as RetryableError;
    expect(server.last!.headers.authorization).toBe(`Basic ${Buffer.from('robot:hunter2pass').toString('base64')}`);
    const refused = webhookSink.create({ name: 'hub', type: 'webhook', url: url.replace(/:\d+\//, `:${await freePort()}/`), secret: SECRET }, { configDir: '/tmp' });
    opened.push({ sink: refused });
    const err2 = (await refused.write(sampleEvents(1), live()).catch((e: unknown) => e)) as RetryableError;
    const checks = await refused.check!();
    for (const text of [err.message, err.where, err.describe(), err2.message, err2.describe(), JSON.stringify(checks)]) {
      expect(text).not.toContain('hunter2pass');
      expect(text).not.toContain('robot');
      expect(text).not.toContain('qs-secret');
      expect(text).not.toContain(SECRET);
    }
  });

  it('check() reaches a live endpoint with a real request and explains a refused connection', async () => {
    const { sink, server } = await openOn({});
    const before = server.requests;
    const ok = await sink.check!();
    expect(ok).toEqual([expect.objectContaining({ ok: true })]);
    expect(server.requests).toBe(before + 1);
    expect(server.last!.method).toBe('HEAD');

    const t = await refusedTarget();
    const down = webhookSink.create(t.config, t.env);
    opened.push({ sink: down });
    const [result] = await down.check!();
    expect(result!.ok).toBe(false);
    expect(result!.detail).toContain('ECONNREFUSED');
    expect(result!.fix).toContain('sinks[].url');
  });
});

/**
 * The sink behind the real agent (`ferry run`: a CSV drop, the delivery
 * workers, the sink's dead-letter queue on the shared Redis): which answers
 * make events wait and which isolate one event in the dead-letter queue.
 */
describe('webhook sink in the agent', () => {
  const redis = new Redis(6379, '127.0.0.1', { maxRetriesPerRequest: null });
  afterAll(() => redis.disconnect());

  /** Rows of the legacy customer export, one per key. */
  const rows = (keys: string[]) => keys.map((k, i) => `${k};Jürgen;Straße ${i};${k.toLowerCase()}@example.de;${i + 1},00;15.01.2024;A`);

  async function runAgainst(name: string, url: string, keys: string[], body: (dlq: DeadLetterQueue, agent: FerryProcess) => Promise<void>): Promise<void> {
    const { inbox, config, prefix } = customersWorkspace(name, {
      minAgeMs: 200,
      errors: false,
      sinks: [{ name: 'hub', type: 'webhook', url, headers: { Authorization: 'Bearer ${env:HUB_TOKEN}' }, timeoutMs: 2000 }],
      // Fewer attempts than the target fails in a row: only the circuit breaker's wait keeps the events out of the DLQ.
      delivery: { partitions: 1, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 6, initialMs: 20, maxMs: 100 } },
    });
    const dlq = new DeadLetterQueue(redis, prefix, 'customers', 'hub');
    const agent = startAgent(config, { env: { HUB_TOKEN: 'tok-expired-5b1e' } });
    try {
      dropCsv(join(inbox, 'kunden_a.csv'), rows(keys));
      await body(dlq, agent);
      expect(await agent.stop(), agent.stderr()).toBe(0);
    } finally {
      if (agent.proc.exitCode === null) await agent.kill();
      await dlq.close();
      await deleteRedisPrefix(prefix);
    }
  }

  it('a 401 for the first 8 requests (an expired token), then 200: every event arrives, none goes to the DLQ, and the log says which credentials to fix', async () => {
    const refusals = 8;
    const server = await start({ script: Array.from({ length: refusals }, () => ({ status: 401, body: 'token expired' })) });
    const keys = ['A1', 'A2', 'A3', 'A4', 'A5', 'A6'];
    try {
      await runAgainst('wh401', server.url, keys, async (dlq, agent) => {
        await waitFor('every event at the webhook', () => server.received.size === keys.length || agent.proc.exitCode !== null, 40_000);
        expect(server.statuses[401]).toBe(refusals);
        expect([...server.received.values()].map((e) => e.subject).sort()).toEqual(keys);
        expect(server.duplicateEvents).toBe(0);
        expect(await dlq.depth()).toBe(0);
        const log = agent.stderr();
        expect(log).toContain('answered 401: token expired');
        expect(log).toMatch(/credentials: they are likely wrong or expired\. Check headers\.Authorization of sink \\?"hub\\?" in ferry\.yaml/);
        expect(log).not.toContain('tok-expired-5b1e');
      });
    } finally {
      await server.close();
    }
  }, 60_000);

  it('a 422 for every batch that holds one poisoned event: that event alone lands in the DLQ, the others arrive', async () => {
    const received = new Map<string, FerryEvent>();
    let rejections = 0;
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST') return res.writeHead(204).end();
        const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FerryEvent[];
        if (events.some((e) => e.subject === 'P1')) {
          rejections++;
          return res.writeHead(422, { 'content-type': 'text/plain' }).end('customer P1: email domain not allowed');
        }
        for (const e of events) received.set(e.id, e);
        res.writeHead(204).end();
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
    const keys = ['G1', 'G2', 'G3', 'P1', 'G4', 'G5', 'G6'];
    try {
      await runAgainst('wh422', url, keys, async (dlq, agent) => {
        await waitFor('the poisoned event in the DLQ', async () => (await dlq.depth()) > 0 || agent.proc.exitCode !== null, 30_000);
        await waitFor('the good events at the webhook', () => received.size === keys.length - 1, 10_000);
        const entries = await dlq.list();
        expect(entries).toHaveLength(1);
        expect(entries[0]).toMatchObject({ code: 'FERRY_SINK_PERMANENT', sink: 'hub' });
        expect(entries[0]!.reason).toContain('422');
        expect(entries[0]!.reason).toContain('email domain not allowed');
        expect(entries[0]!.events!.map((e) => e.subject)).toEqual(['P1']);
        expect([...received.values()].map((e) => e.subject).sort()).toEqual(keys.filter((k) => k !== 'P1').sort());
        // Bisection: the whole batch, then the halves holding P1, down to P1 alone.
        expect(rejections).toBeGreaterThan(1);
      });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 60_000);
});
