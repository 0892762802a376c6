import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import { classifyResponse, parseRetryAfter, PERMANENT_STATUSES } from './classify.js';

describe('classifyResponse', () => {
  it.each([200, 201, 202, 204, 299])('%i is delivered', (status) => {
    expect(classifyResponse(status, undefined, '', 'http://x/')).toBeUndefined();
  });

  // A refusal that says nothing about the events themselves: the target is down
  // or misconfigured, and the events must wait for it, not go to the DLQ.
  it.each([
    ['3xx', [300, 301, 302, 303, 307, 308]],
    ['auth', [401, 403]],
    ['address', [404, 405, 410]],
    ['state', [408, 409, 425, 429]],
    ['other 4xx', [402, 406, 411, 412, 414, 418, 421, 423, 424, 428, 431, 451]],
    ['5xx', [500, 501, 502, 503, 504, 507, 511, 599]],
  ])('%s are retryable and say the status and body', (_, statuses) => {
    for (const status of statuses as number[]) {
      const err = classifyResponse(status, undefined, '  proxy:\n upstream gone ', 'http://x/');
      expect(err, String(status)).toBeInstanceOf(RetryableError);
      expect(err!.code).toBe('FERRY_SINK_RETRYABLE');
      expect(err!.message).toContain(`answered ${status}`);
      expect(err!.message).toContain('proxy:\n upstream gone');
    }
  });

  // Only a body the receiver can never take is permanent: bisection isolates the bad event.
  it.each([400, 413, 415, 422])('%i is permanent and says the status and body', (status) => {
    const err = classifyResponse(status, undefined, '  field "email"\n is invalid ', 'http://x/');
    expect(err).toBeInstanceOf(PermanentError);
    expect(err!.code).toBe('FERRY_SINK_PERMANENT');
    expect(err!.message).toContain(String(status));
    expect(err!.message).toContain('field "email"\n is invalid');
  });

  it('holds the permanent set to the statuses that blame the body', () => {
    const permanent = Array.from({ length: 500 }, (_, i) => i + 100).filter((s) => classifyResponse(s, undefined, '', 'http://x/') instanceof PermanentError);
    expect(permanent).toEqual([400, 413, 415, 422]);
    expect([...PERMANENT_STATUSES].sort((a, b) => a - b)).toEqual([400, 413, 415, 422]);
  });

  it.each([401, 403])('%i says the credentials are likely wrong and which fields of which sink to fix, without values', (status) => {
    const err = classifyResponse(status, undefined, 'bad signature', 'http://x/', { sink: 'hub', credentials: ['secret', 'headers.Authorization'] })!;
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.message).toMatch(/credentials.*likely wrong or expired/);
    expect(err.message).toContain('secret, headers.Authorization of sink "hub" in ferry.yaml');
    expect(err.message).toContain('bad signature');
    expect(err.fix).toContain('sink "hub" in ferry.yaml');
  });

  it('says so when a 401 comes to a sink that sends no credentials', () => {
    expect(classifyResponse(401, undefined, '', 'http://x/', { sink: 'hub' })!.message).toContain('no credentials (set headers.Authorization or secret)');
  });

  it.each([
    [404, 'check url of sink "hub"'],
    [405, 'check method and url of sink "hub"'],
    [302, 'Ferry does not follow redirects: set url of sink "hub"'],
  ])('%i points at the config it likely comes from', (status, hint) => {
    expect(classifyResponse(status, undefined, '', 'http://x/', { sink: 'hub' })!.message).toContain(hint);
  });

  it('tells a 413 to lower delivery.batch.maxEvents', () => {
    expect(classifyResponse(413, undefined, '', 'http://x/')!.message).toContain('lower delivery.batch.maxEvents');
  });

  it('carries Retry-After on 429 and 503', () => {
    expect(classifyResponse(429, '1', '', 'http://x/')).toBeInstanceOf(RetryableError);
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
