import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';

/** Statuses that may pass if the same request is sent again later. */
const RETRYABLE_STATUSES = new Set([408, 425, 429]);

/** Hints for permanent rejections a user can act on. */
const PERMANENT_HINTS: Record<number, string> = {
  401: 'check the credentials in sinks[].headers or the URL',
  403: 'check the credentials in sinks[].headers or the URL',
  404: 'check sinks[].url',
  413: 'the batch is too large for the receiver: lower delivery.batch.maxEvents',
};

/**
 * What a delivery's HTTP answer means: nothing (2xx, delivered), a
 * `RetryableError` (408, 425, 429, 5xx; with `retryAfterMs` when the answer
 * carries `Retry-After`), or a `PermanentError` (every other status) that names
 * the status and the start of the response body.
 */
export function classifyResponse(
  status: number,
  retryAfter: string | string[] | undefined,
  bodySnippet: string,
  target: string,
): RetryableError | PermanentError | undefined {
  if (status >= 200 && status < 300) return undefined;
  const said = bodySnippet.trim() ? `: ${bodySnippet.trim()}` : '';
  if (status >= 500 || RETRYABLE_STATUSES.has(status)) {
    const retryAfterMs = parseRetryAfter(retryAfter);
    const wait = retryAfterMs === undefined ? '' : ` (Retry-After ${retryAfterMs} ms)`;
    return new RetryableError(`webhook ${target} answered ${status}${wait}${said}`, { where: target, retryAfterMs });
  }
  const hint = PERMANENT_HINTS[status];
  return new PermanentError(`webhook ${target} rejected the batch with ${status}${hint ? ` (${hint})` : ''}${said}`, { where: target });
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
