import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import { classifyResponse, parseRetryAfter } from './classify.js';

describe('classifyResponse', () => {
  it.each([200, 201, 202, 204, 299])('%i is delivered', (status) => {
    expect(classifyResponse(status, undefined, '', 'http://x/')).toBeUndefined();
  });

  it.each([408, 425, 429, 500, 502, 503, 504])('%i is retryable', (status) => {
    expect(classifyResponse(status, undefined, '', 'http://x/')).toBeInstanceOf(RetryableError);
  });

  it.each([301, 400, 401, 403, 404, 405, 409, 413, 422])('%i is permanent and says the status and body', (status) => {
    const err = classifyResponse(status, undefined, '  field "email"\n is invalid ', 'http://x/');
    expect(err).toBeInstanceOf(PermanentError);
    expect(err!.message).toContain(String(status));
    expect(err!.message).toContain('field "email"\n is invalid');
  });

  it('tells a 413 to lower delivery.batch.maxEvents', () => {
    expect(classifyResponse(413, undefined, '', 'http://x/')!.message).toContain('lower delivery.batch.maxEvents');
  });

  it('carries Retry-After on 429 and 503', () => {
    expect((classifyResponse(429, '1', '', 'http://x/') as RetryableError).retryAfterMs).toBe(1000);
    expect((classifyResponse(503, ['7'], '', 'http://x/') as RetryableError).retryAfterMs).toBe(7000);
    expect((classifyResponse(500, undefined, '', 'http://x/') as RetryableError).retryAfterMs).toBeUndefined();
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds', () => expect(parseRetryAfter('120', now)).toBe(120_000));
  it('reads an HTTP-date', () => expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000));
  it('never goes negative', () => expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0));
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
  });
});
