import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** One line of a generation file: a row's key values (as the driver gave them) and its row hash. */
export type StoredRow = [key: unknown[], hash: string];

/**
 * The per-key row hashes of one diff view, on local disk: one NDJSON file per
 * poll ("generation"), in the database's key order, so a poll merges the view
 * against the previous generation streaming both sides in bounded memory.
 *
 * Crash safety: generation N+1 is written to `gen-N+1.ndjson.tmp`, fsynced and
 * renamed before the poll's last batch (whose checkpoint names N+1) is
 * yielded. The checkpoint, stored by the runtime only once the events are
 * durable, says which generation is current. A checkpoint taken mid-poll also
 * names how many bytes of the `.tmp` file its events cover, so a restart
 * resumes the poll there (`resume`); without that file (a crash of the
 * machine, not just the agent, may lose its unsynced tail) the poll is redone
 * from generation N, re-emitting the same change ids. Older files are removed
 * in `prune` (from `commit`), other leftovers when the source opens.
 */
export class GenerationStore {
  constructor(private readonly dir: string) {}

  private file(gen: number): string {
    return join(this.dir, `gen-${gen}.ndjson`);
  }

  /** Whether generation `gen` is on disk (generation 0 is the empty one before the first poll). */
  async has(gen: number): Promise<boolean> {
    return gen === 0 || exists(this.file(gen));
  }

  /** Streams a generation in stored (key) order; an absent generation reads as empty. */
  async *rows(gen: number): AsyncGenerator<StoredRow> {
    if (gen === 0 || !(await this.has(gen))) return;
    const lines = createInterface({ input: createReadStream(this.file(gen), { encoding: 'utf8' }), crlfDelay: Infinity });
    try {
      for await (const line of lines) if (line) yield JSON.parse(line) as StoredRow;
    } finally {
      lines.close();
    }
  }

  async writer(gen: number): Promise<GenerationWriter> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file(gen)}.tmp`;
    const fh = await open(tmp, 'w');
    return new GenerationWriter(fh, tmp, this.file(gen), this.dir, 0);
  }

  /** Reopens an unfinished generation cut back to its first `bytes` bytes; undefined when they are not all there. */
  async resume(gen: number, bytes: number): Promise<GenerationWriter | undefined> {
    const tmp = `${this.file(gen)}.tmp`;
    const fh = await open(tmp, 'r+').catch(() => undefined);
    if (!fh) return undefined;
    if ((await fh.stat()).size < bytes) {
      await fh.close();
      return undefined;
    }
    await fh.truncate(bytes);
    return new GenerationWriter(fh, tmp, this.file(gen), this.dir, bytes);
  }

  /** After a commit of generation `gen`: older generations are no longer needed. Newer ones may be in use. */
  async pruneBelow(gen: number): Promise<void> {
    await this.remove((g, tmp) => !tmp && g < gen);
  }

  /**
   * At open, from generation `gen` (and the unfinished `gen + 1` when the
   * checkpoint was taken mid-poll): everything else is a leftover of a poll
   * whose events never became durable.
   */
  async resetTo(gen: number, midPoll: boolean): Promise<void> {
    const next = this.file(gen + 1);
    // The unfinished generation may have been finished after the checkpoint was taken: its start is the same.
    if (midPoll && !(await exists(`${next}.tmp`)) && (await exists(next))) await rename(next, `${next}.tmp`);
    await this.remove((g, tmp) => (tmp ? !(midPoll && g === gen + 1) : g !== gen));
  }

  private async remove(doomed: (gen: number, tmp: boolean) => boolean): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const m = /^gen-(\d+)\.ndjson(\.tmp)?$/.exec(name);
      if (m && doomed(Number(m[1]), m[2] !== undefined)) await rm(join(this.dir, name), { force: true });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  const fh = await open(path, 'r').catch(() => undefined);
  await fh?.close();
  return fh !== undefined;
}

/** Appends rows to a new generation; `finish` makes it durable under its final name. */
export class GenerationWriter {
  constructor(
    private readonly fh: FileHandle,
    private readonly tmp: string,
    private readonly final: string,
    private readonly dir: string,
    /** Bytes written so far: what a mid-poll checkpoint records. */
    public bytes: number,
  ) {}

  async append(rows: readonly StoredRow[]): Promise<void> {
    if (rows.length === 0) return;
    const text = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await this.fh.write(text, 0, text.length, this.bytes);
    this.bytes += text.length;
  }

  async finish(): Promise<void> {
    await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.final);
    const dir = await open(this.dir, 'r');
    await dir.sync().finally(() => dir.close());
  }

  /** A poll that stopped: the file stays for a resume from a mid-poll checkpoint (`open` clears it otherwise). */
  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }

  /** A poll that found no change: the new generation equals the current one and is not kept. */
  async abandon(): Promise<void> {
    await this.close();
    await rm(this.tmp, { force: true });
  }
}
