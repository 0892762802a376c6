import type { Readable } from 'node:stream';

/**
 * An object-mode stream as arrays of whatever it has buffered, one await per
 * array instead of one per object: per-record promise hops are what makes a
 * naive async pipeline several times slower than the parser itself.
 * Destroys the stream when the consumer stops early.
 */
export async function* drain<T>(stream: Readable): AsyncGenerator<T[]> {
  let failure: Error | undefined;
  let ended = false;
  let closed = false;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onEnd = (): void => {
    ended = true;
    poke();
  };
  const onClose = (): void => {
    closed = true;
    poke();
  };
  const onError = (err: Error): void => {
    failure = err;
    poke();
  };
  stream.on('readable', poke).on('end', onEnd).on('close', onClose).on('error', onError);
  try {
    for (;;) {
      const out: T[] = [];
      for (let item = stream.read() as T | null; item !== null; item = stream.read() as T | null) out.push(item);
      if (out.length > 0) {
        yield out;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      if (closed) throw new Error('the stream closed before its end');
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off('readable', poke).off('end', onEnd).off('close', onClose).off('error', onError);
    if (!ended) stream.destroy();
  }
}
