import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server does with one request, before the random mix applies. */
export interface ChaosFate {
  status: number;
  /** Sent as the `Retry-After` header. */
  retryAfter?: string;
  /** Answer only after this long (longer than the sink's timeoutMs = a timeout). */
  delayMs?: number;
  body?: string;
}

export interface ChaosOptions {
  /** HMAC key; when set, every request must carry a valid `X-Ferry-Signature` or is answered 401. */
  secret?: string;
  /** Fraction (0..1) of requests answered 500. */
  fail500?: number;
  /** Fraction of requests answered 429 with `Retry-After: 1`. */
  fail429?: number;
  /** Fraction of requests that are accepted but answered only after `slowMs`: the sink times out, the events still count (as in real life). */
  timeoutRate?: number;
  /** How long a "timeout" answer is held back; set it above the sink's timeoutMs. Default 2000. */
  slowMs?: number;
  /** Fates for the first requests, in order, before the random mix applies. */
  script?: ChaosFate[];
  /** Seed of the random mix, so a failing run can be replayed. Default 1. */
  seed?: number;
}

export interface ChaosWebhookServer {
  url: string;
  /** Every accepted event, unique by id, in order of first arrival. */
  readonly received: Map<string, Record<string, unknown>>;
  /** Requests seen, whatever their fate. */
  readonly requests: number;
  /** Deliveries: requests other than HEAD and OPTIONS. */
  readonly deliveries: number;
  /** Requests whose signature was missing or wrong (answered 401). */
  readonly badSignatures: number;
  /** Requests whose signature verified (counted only when `secret` is set). */
  readonly goodSignatures: number;
  /** Accepted requests dropped because their Idempotency-Key was seen before. */
  readonly duplicateBatches: number;
  /** The Idempotency-Keys of those dropped requests. */
  readonly duplicateKeys: ReadonlySet<string>;
  /** The Idempotency-Key of every well-formed delivery, repeats included, in arrival order. */
  readonly keys: readonly string[];
  /**
   * Slow answers whose client hung up before the answer was sent: the sink
   * really timed out. Their batches were accepted before the slow answer, so
   * each will come back with the same Idempotency-Key.
   */
  readonly abandoned: number;
  /** The Idempotency-Keys of the abandoned requests. */
  readonly abandonedKeys: ReadonlySet<string>;
  /** Accepted events whose id had arrived before in another batch. */
  readonly duplicateEvents: number;
  /** Requests whose X-Ferry-Event-Count did not match the body or that had no Idempotency-Key. */
  readonly badRequests: number;
  /** How many requests got each status. */
  readonly statuses: Record<number, number>;
  /** Headers and body of the latest request, for tests of what the sink sends. */
  readonly last: { method: string; headers: IncomingHttpHeaders; body: Buffer } | undefined;
  close(): Promise<void>;
}

/**
 * A real HTTP receiver for webhook tests: verifies signatures, de-duplicates
 * by Idempotency-Key and event id the way docs/sinks/webhook.md tells
 * receivers to, and fails a configurable share of requests (500s, 429 with
 * Retry-After: 1, answers too slow for the sink's timeout).
 */
export async function start(options: ChaosOptions = {}): Promise<ChaosWebhookServer> {
  const random = mulberry32(options.seed ?? 1);
  const script = [...(options.script ?? [])];
  const received = new Map<string, Record<string, unknown>>();
  const seenKeys = new Set<string>();
  const duplicateKeys = new Set<string>();
  const keys: string[] = [];
  const abandonedKeys = new Set<string>();
  const statuses: Record<number, number> = {};
  const timers = new Set<NodeJS.Timeout>();
  let last: ChaosWebhookServer['last'];
  const counts = { requests: 0, deliveries: 0, badSignatures: 0, goodSignatures: 0, duplicateBatches: 0, duplicateEvents: 0, badRequests: 0, abandoned: 0 };

  const pickFate = (): ChaosFate => {
    const scripted = script.shift();
    if (scripted) return scripted;
    const r = random();
    const { fail500 = 0, fail429 = 0, timeoutRate = 0 } = options;
    if (r < fail500) return { status: 500, body: 'chaos: internal error' };
    if (r < fail500 + fail429) return { status: 429, retryAfter: '1', body: 'chaos: slow down' };
    if (r < fail500 + fail429 + timeoutRate) return { status: 200, delayMs: options.slowMs ?? 2000 };
    return { status: 200 };
  };

  const accept = (req: IncomingMessage, body: Buffer): number => {
    const key = header(req, 'idempotency-key');
    let events: unknown;
    try {
      events = JSON.parse(body.toString('utf8'));
    } catch {
      return 400;
    }
    if (!Array.isArray(events) || !key || header(req, 'x-ferry-event-count') !== String(events.length)) {
      counts.badRequests++;
      return 400;
    }
    keys.push(key);
    if (seenKeys.has(key)) {
      counts.duplicateBatches++;
      duplicateKeys.add(key);
      return 200;
    }
    seenKeys.add(key);
    for (const event of events as Record<string, unknown>[]) {
      const id = String(event.id);
      if (received.has(id)) counts.duplicateEvents++;
      else received.set(id, event);
    }
    return 200;
  };

  const answer = (res: ServerResponse, fate: ChaosFate): void => {
    statuses[fate.status] = (statuses[fate.status] ?? 0) + 1;
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    if (fate.retryAfter) headers['retry-after'] = fate.retryAfter;
    res.writeHead(fate.status, headers).end(fate.body ?? '');
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      counts.requests++;
      last = { method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      if (req.method === 'HEAD' || req.method === 'OPTIONS') return answer(res, { status: 204 });
      counts.deliveries++;
      const body = Buffer.concat(chunks);
      if (options.secret) {
        if (!signatureValid(body, header(req, 'x-ferry-signature'), options.secret)) {
          counts.badSignatures++;
          return answer(res, { status: 401, body: 'bad signature' });
        }
        counts.goodSignatures++;
      }
      const fate = pickFate();
      if (fate.status >= 200 && fate.status < 300) {
        const status = accept(req, body);
        if (status !== 200) return answer(res, { status, body: 'malformed delivery' });
      }
      if (!fate.delayMs) return answer(res, fate);
      res.once('close', () => {
        if (res.writableEnded) return;
        counts.abandoned++;
        const key = header(req, 'idempotency-key');
        if (key) abandonedKeys.add(key);
      });
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!res.destroyed) answer(res, fate);
      }, fate.delayMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/events`,
    received,
    get requests() { return counts.requests; },
    get deliveries() { return counts.deliveries; },
    get badSignatures() { return counts.badSignatures; },
    get goodSignatures() { return counts.goodSignatures; },
    get duplicateBatches() { return counts.duplicateBatches; },
    duplicateKeys,
    keys,
    get abandoned() { return counts.abandoned; },
    abandonedKeys,
    get duplicateEvents() { return counts.duplicateEvents; },
    get badRequests() { return counts.badRequests; },
    statuses,
    get last() { return last; },
    async close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** How a receiver verifies `X-Ferry-Signature` (the same code as in docs/sinks/webhook.md). */
export function signatureValid(body: Buffer, signature: string | undefined, secret: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
  const given = Buffer.from(signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A small seeded PRNG: the same seed gives the same failure sequence. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
