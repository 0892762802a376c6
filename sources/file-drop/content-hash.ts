import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * The sha256 of a file's whole content, hex, in one streaming pass (bounded
 * memory whatever the size). Computed before any record is emitted, so a
 * half-read file still has a stable identity, and a renamed copy of a file
 * is recognised as the same content. Rejects when `signal` aborts.
 */
export async function contentHash(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(file, { highWaterMark: 1 << 20, ...(signal ? { signal } : {}) });
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
