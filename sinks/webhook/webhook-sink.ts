import { Agent, request, type Dispatcher } from 'undici';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import type { CheckResult } from '../../agent/plugin/source.js';
import type { Sink } from '../../agent/plugin/sink.js';
import { redactUrl } from '../../agent/telemetry/logger.js';
import { classifyResponse, type ClassifyContext } from './classify.js';
import { EVENT_COUNT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, idempotencyKey, signBody } from './signature.js';

export interface WebhookSinkOptions {
  /** `sinks[].name`, so an error can say which entry of ferry.yaml to fix. */
  name?: string;
  url: string;
  secret: string | undefined;
  headers: Record<string, string>;
  timeoutMs: number;
  method: 'POST' | 'PUT';
}

/** Headers only Ferry sets: a configured one of the same name is dropped. */
const RESERVED_HEADERS = ['content-type', 'content-length', SIGNATURE_HEADER, IDEMPOTENCY_HEADER, EVENT_COUNT_HEADER];

/** How much of an error response body goes into the error message. */
const SNIPPET_BYTES = 300;

/**
 * Delivers each batch as one request over a pooled keep-alive connection
 * (undici Agent) and turns the answer into success, a RetryableError or a
 * PermanentError (see classify.ts). It never retries itself: the delivery
 * worker owns retries, backoff and bisection.
 */
export class WebhookSink implements Sink {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
  /** The URL without credentials (they travel as an Authorization header). */
  private readonly endpoint: string;
  private readonly baseHeaders: Record<string, string>;
  /** Names (never values) of what may authenticate a request, for a 401/403 message. */
  private readonly context: ClassifyContext;
  /** What messages and logs may say about the target: no credentials, no query. */
  readonly target: string;

  constructor(private readonly options: WebhookSinkOptions) {
    const url = new URL(options.url);
    this.baseHeaders = { 'user-agent': 'ferry', ...lowerCaseKeys(options.headers) };
    for (const reserved of RESERVED_HEADERS) delete this.baseHeaders[reserved];
    if ((url.username || url.password) && !this.baseHeaders.authorization) {
      const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      this.baseHeaders.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
    }
    url.username = '';
    url.password = '';
    this.endpoint = url.toString();
    this.target = describeTarget(options.url);
    this.context = { sink: options.name, credentials: credentialNames(options) };
  }

  async open(): Promise<void> {}

  async write(events: FerryEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    if (signal.aborted) throw this.aborted(signal);
    const body = Buffer.from(JSON.stringify(events));
    const headers: Record<string, string> = {
      ...this.baseHeaders,
      'content-type': 'application/json',
      [IDEMPOTENCY_HEADER]: idempotencyKey(events),
      [EVENT_COUNT_HEADER]: String(events.length),
    };
    if (this.options.secret) headers[SIGNATURE_HEADER] = signBody(body, this.options.secret);

    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    let failure: Error | undefined;
    try {
      const res = await request(this.endpoint, { dispatcher: this.agent, method: this.options.method, headers, body, signal: both });
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      const snippet = ok ? (await res.body.dump(), '') : await readSnippet(res.body);
      failure = classifyResponse(res.statusCode, res.headers['retry-after'], snippet, this.target, this.context);
    } catch (err) {
      if (signal.aborted) throw this.aborted(signal);
      if (timeout.aborted) throw new RetryableError(`webhook ${this.target} did not answer within ${this.options.timeoutMs} ms`, { where: this.target });
      throw new RetryableError(`cannot reach webhook ${this.target}: ${networkReason(err)}`, { where: this.target, cause: err });
    }
    if (failure) throw failure;
  }

  /** A real request (HEAD): any HTTP answer proves the endpoint is reachable. */
  async check(): Promise<CheckResult[]> {
    const agent = new Agent({ pipelining: 0 });
    try {
      const res = await request(this.endpoint, { dispatcher: agent, method: 'HEAD', headers: this.baseHeaders, signal: AbortSignal.timeout(this.options.timeoutMs) });
      await res.body.dump();
      const auth = res.statusCode === 401 || res.statusCode === 403;
      return [
        {
          name: 'webhook reachable',
          ok: !auth,
          severity: auth ? 'warning' : 'error',
          detail: `${this.target} answered HEAD with ${res.statusCode}`,
          ...(auth ? { fix: 'The endpoint refused the credentials; check sinks[].headers.' } : {}),
        },
      ];
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.options.timeoutMs} ms` : networkReason(err);
      return [{ name: 'webhook reachable', ok: false, detail: `cannot reach ${this.target}: ${reason}`, fix: 'Start the receiver or correct sinks[].url (host, port, scheme); check firewalls and proxies between the agent and the endpoint.' }];
    } finally {
      await agent.close();
    }
  }

  async close(): Promise<void> {
    if (this.agent.closed || this.agent.destroyed) return;
    await this.agent.close();
  }

  private aborted(signal: AbortSignal): RetryableError {
    return new RetryableError(`write to webhook ${this.target} aborted`, { where: this.target, cause: signal.reason });
  }
}

/** The start of an error response body, for the error message; the rest is discarded. */
async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size >= SNIPPET_BYTES) break;
  }
  return Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8').replace(/\s+/g, ' ');
}

function networkReason(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string } };
  return [e.code ?? e.cause?.code, e.message].filter(Boolean).join(' ');
}

function describeTarget(url: string): string {
  try {
    const u = new URL(redactUrl(url));
    if (u.username) u.username = '***';
    const query = u.search ? '?[redacted]' : '';
    u.search = '';
    return `${u.toString()}${query}`;
  } catch {
    return redactUrl(url);
  }
}

/** The config paths that may carry credentials, by name: what a 401/403 message tells the user to check. */
function credentialNames(options: WebhookSinkOptions): string[] {
  const url = new URL(options.url);
  const names: string[] = [];
  if (options.secret) names.push('secret');
  for (const name of Object.keys(options.headers)) {
    if (![...RESERVED_HEADERS, 'user-agent'].includes(name.toLowerCase())) names.push(`headers.${name}`);
  }
  if (url.username || url.password) names.push('the user:password in url');
  if (url.search) names.push('the query string of url');
  return names;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
