import { mkdir, open, statfs, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FerryEvent } from '../../agent/event/cloud-event.js';
import { EventBatch, type JsonLinesSink } from '../../agent/event/event-batch.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import type { CheckResult } from '../../agent/plugin/source.js';
import type { Sink } from '../../agent/plugin/sink.js';

export interface FileSinkOptions {
  /** Absolute path of the file to append to. */
  path: string;
  /** fsync after every append before the batch counts as delivered. */
  fsync: boolean;
}

interface PendingAppend {
  chunk: Buffer;
  settle(err?: unknown): void;
}

/** Below this much free space `check()` warns: a full disk stops delivery. */
const LOW_DISK_BYTES = 100 * 1024 * 1024;

/**
 * Appends JSON lines to one file, keeping the handle open between batches.
 *
 * Writes from concurrent partitions are queued and flushed together (one
 * append and one fsync for all batches waiting), so lines never interleave
 * and the fsync cost is shared. A failed append is truncated back, so a retry
 * never leaves half a line in the file.
 */
export class FileSink implements Sink, JsonLinesSink {
  private handle: FileHandle | undefined;
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly options: FileSinkOptions) {}

  async open(): Promise<void> {
    if (this.handle) return;
    try {
      await mkdir(dirname(this.options.path), { recursive: true });
      await trimPartialLine(this.options.path);
      this.handle = await open(this.options.path, 'a');
    } catch (err) {
      throw this.failure('open', err);
    }
  }

  async write(events: FerryEvent[], signal: AbortSignal): Promise<void> {
    await this.writeJsonLines(EventBatch.of(events).jsonLines, events.length, signal);
  }

  /** The batch as the JSON-lines bytes it was queued as: appended as they are, not parsed and serialized again. */
  async writeJsonLines(chunk: Buffer, count: number, signal: AbortSignal): Promise<void> {
    if (count === 0) return;
    if (signal.aborted) throw aborted(this.options.path, signal);
    await new Promise<void>((resolve, reject) => {
      const entry: PendingAppend = {
        chunk,
        settle: (err) => {
          signal.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err);
        },
      };
      // Only a batch still waiting in the queue can be withdrawn; one being
      // appended finishes (it takes milliseconds) and reports its outcome.
      const onAbort = (): void => {
        const i = this.queue.indexOf(entry);
        if (i < 0) return;
        this.queue.splice(i, 1);
        entry.settle(aborted(this.options.path, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(entry);
      this.flushing ??= this.flush();
    });
  }

  async check(): Promise<CheckResult[]> {
    const { path } = this.options;
    try {
      await mkdir(dirname(path), { recursive: true });
      await (await open(path, 'a')).close();
    } catch (err) {
      return [{ name: 'file writable', ok: false, detail: `cannot open ${path} for appending: ${describe(err)}`, fix: `Create ${dirname(path)} and give the agent's user write permission on it, or change sinks[].path.` }];
    }
    const results: CheckResult[] = [{ name: 'file writable', ok: true, detail: `${path} can be appended to` }];
    const fs = await statfs(dirname(path));
    const free = fs.bavail * fs.bsize;
    if (free < LOW_DISK_BYTES) {
      results.push({ name: 'disk space', ok: false, severity: 'warning', detail: `only ${Math.round(free / 1024 / 1024)} MiB free under ${dirname(path)}`, fix: 'Free disk space or rotate the output file; a full disk stops delivery until space is freed.' });
    }
    return results;
  }

  async close(): Promise<void> {
    await this.flushing;
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0);
      const err = await this.append(Buffer.concat(group.map((g) => g.chunk))).then(() => undefined, (e: unknown) => e);
      for (const g of group) g.settle(err);
    }
    this.flushing = undefined;
  }

  private async append(chunk: Buffer): Promise<void> {
    const handle = this.handle;
    if (!handle) throw new RetryableError(`file sink ${this.options.path} is not open`, { where: this.options.path });
    // Measured before every append, not tracked: logrotate's copytruncate may
    // have shrunk the file since the last one.
    let before: number | undefined;
    try {
      before = (await handle.stat()).size;
      await handle.appendFile(chunk);
      if (this.options.fsync) await handle.sync();
    } catch (err) {
      if (before !== undefined) await handle.truncate(before).catch(() => undefined);
      throw this.failure('append to', err);
    }
  }

  private failure(verb: string, err: unknown): RetryableError {
    const { path } = this.options;
    return new RetryableError(`cannot ${verb} ${path}: ${describe(err)}`, { where: path, cause: err });
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message})` : String(e.message ?? err);
}

function aborted(path: string, signal: AbortSignal): RetryableError {
  return new RetryableError(`write to ${path} aborted`, { where: path, cause: signal.reason });
}

/**
 * An agent killed in the middle of an append (SIGKILL, power loss) leaves
 * half a line at the end of the file. That batch was never acknowledged and
 * will be delivered again, so the fragment is cut off before appending:
 * otherwise the next line would be glued to it and both would be unreadable.
 */
async function trimPartialLine(path: string): Promise<void> {
  const handle = await open(path, 'r+').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!handle) return;
  try {
    const size = (await handle.stat()).size;
    const buf = Buffer.alloc(64 * 1024);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await handle.read(buf, 0, end - start, start);
      const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
      if (nl >= 0) {
        if (start + nl + 1 < size) await handle.truncate(start + nl + 1);
        return;
      }
      end = start;
    }
    if (size > 0) await handle.truncate(0);
  } finally {
    await handle.close();
  }
}
