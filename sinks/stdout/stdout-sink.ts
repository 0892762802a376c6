import type { Writable } from 'node:stream';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import type { Sink } from '../../agent/plugin/sink.js';

export interface StdoutSinkOptions {
  pretty: boolean;
  /** process.stdout in production; any writable stream (a file, a pipe) in tests. */
  out: Writable;
}

/**
 * Writes each batch as one chunk to a stream and resolves only once the stream
 * has taken it (its write callback ran), so a slow reader slows the delivery
 * worker down instead of growing the agent's memory.
 */
export class StdoutSink implements Sink {
  /** The stream's error, once it has failed (EPIPE when the reader went away). */
  private broken: Error | undefined;
  /** One listener for the sink's life: a stream error must not crash the agent, and per-write listeners would pile up. */
  private readonly onStreamError = (err: Error): void => {
    this.broken = err;
  };

  constructor(private readonly options: StdoutSinkOptions) {}

  async open(): Promise<void> {
    this.options.out.on('error', this.onStreamError);
  }

  async write(events: FerryEvent[], signal: AbortSignal): Promise<void> {
    if (events.length === 0) return;
    if (signal.aborted) throw aborted(signal);
    const { out, pretty } = this.options;
    if (this.broken || out.destroyed || out.writableEnded) throw failed(this.broken ?? new Error('the stream is closed'));
    let text = '';
    for (const event of events) text += `${pretty ? JSON.stringify(event, null, 2) : JSON.stringify(event)}\n`;
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: unknown): void => {
        signal.removeEventListener('abort', onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      // The chunk may still reach the reader after an abort; that is a
      // duplicate with the same ids, which at-least-once delivery allows.
      const onAbort = (): void => settle(aborted(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      out.write(text, (err) => settle(err ? failed(err) : undefined));
    });
  }

  async close(): Promise<void> {
    this.options.out.off('error', this.onStreamError);
  }
}

function aborted(signal: AbortSignal): RetryableError {
  return new RetryableError('write to standard output aborted', { where: 'stdout', cause: signal.reason });
}

function failed(err: Error): RetryableError {
  return new RetryableError(`cannot write to standard output: ${err.message}`, { where: 'stdout', cause: err });
}
