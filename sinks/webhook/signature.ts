import { createHash, createHmac } from 'node:crypto';

/** `sha256=HEX`: the HMAC-SHA256 of the exact body bytes, keyed with `sinks[].secret`. */
export const SIGNATURE_HEADER = 'x-ferry-signature';
/** The same for the same batch: a receiver that has seen it may drop the request. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
/** How many events the body holds. */
export const EVENT_COUNT_HEADER = 'x-ferry-event-count';

/** The `X-Ferry-Signature` value for a body. Receivers compute the same and compare in constant time. */
export function signBody(body: Uint8Array | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * The batch's `Idempotency-Key`: the SHA-256 of its event ids joined by "\n".
 * Deterministic, so a retried or re-enqueued batch carries the same key; a
 * batch split differently (bisection) gets a new key, which is why every event
 * also keeps its own `id` for per-event de-duplication.
 */
export function idempotencyKey(events: readonly { id: string }[]): string {
  const h = createHash('sha256');
  events.forEach((e, i) => h.update(i === 0 ? e.id : `\n${e.id}`));
  return h.digest('hex');
}
