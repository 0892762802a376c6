import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';

/**
 * Statuses that say "this body is bad": the same events will be refused
 * again, so the batch is bisected until the rejected event is alone in the
 * dead-letter queue. Every other non-2xx answer is retried: a wrong token, a
 * moved endpoint or a proxy answering for a receiver being deployed rejects
 * good events too, and they must wait for the fix rather than be
 * dead-lettered one by one.
 */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 413, 415, 422]);

/** What the sink may say about itself in a message: names only, never values. */
export interface ClassifyContext {
  /** `sinks[].name` in ferry.yaml. */
  sink?: string;
  /** The credentials the request carried, as config paths: `secret`, `headers.Authorization`, `url (user:password)`. */
  credentials?: readonly string[];
}

const PERMANENT_HINTS: Record<number, string> = {
  413: 'the batch is too large for the receiver: lower delivery.batch.maxEvents',
  415: 'the receiver does not take application/json here: check its content types or sinks[].url',
};

/**
 * What a delivery's HTTP answer means: nothing (2xx, delivered), a
 * `PermanentError` for 400, 413, 415 and 422, or a `RetryableError` for every
 * other status (with `retryAfterMs` when the answer carries `Retry-After`).
 * Both name the status and the start of the response body.
 */
export function classifyResponse(
  status: number,
  retryAfter: string | string[] | undefined,
  bodySnippet: string,
  target: string,
  context: ClassifyContext = {},
): RetryableError | PermanentError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const said = bodySnippet.trim() ? `: ${bodySnippet.trim()}` : '';
  if (PERMANENT_STATUSES.has(status)) {
    const hint = PERMANENT_HINTS[status];
    return new PermanentError(`webhook ${target} rejected the batch with ${status}${hint ? ` (${hint})` : ''}${said}`, { where: target });
  }
  const retryAfterMs = parseRetryAfter(retryAfter);
  const wait = retryAfterMs === undefined ? '' : ` (Retry-After ${retryAfterMs} ms)`;
  const fix = retryableFix(status, context);
  const message = `webhook ${target} answered ${status}${wait}${said}${fix ? `. ${fix}` : ''}`;
  return new RetryableError(message, { where: target, retryAfterMs, ...(fix ? { fix } : {}) });
}

/** What to change in ferry.yaml when the answer points at the sink's config rather than the receiver being down. */
function retryableFix(status: number, { sink, credentials = [] }: ClassifyContext): string | undefined {
  const where = sink ? `sink "${sink}" in ferry.yaml` : 'the sink in ferry.yaml';
  const waiting = 'the events wait in the queue and are retried until it accepts them';
  if (status === 401 || status === 403) {
    const sent = credentials.length ? credentials.join(', ') : 'no credentials (set headers.Authorization or secret)';
    return `The receiver refused the credentials: they are likely wrong or expired. Check ${sent} of ${where}; ${waiting}`;
  }
  if (status === 404 || status === 410) return `No receiver at that address: check url of ${where}, or the proxy in front of the receiver; ${waiting}`;
  if (status === 405) return `The receiver does not take this method: check method and url of ${where}; ${waiting}`;
  if (status >= 300 && status < 400) return `Ferry does not follow redirects: set url of ${where} to the address the receiver now answers on; ${waiting}`;
  return undefined;
}

/**
 * `Retry-After` in milliseconds from now: either delay-seconds or an HTTP-date
 * (RFC 9110 §10.2.3). Undefined when absent or unreadable; never negative.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw) * 1000;
  // An HTTP-date names its weekday and month; Date.parse alone would read "-5" as a year.
  const at = /[a-z]{3}/i.test(raw) ? Date.parse(raw) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
