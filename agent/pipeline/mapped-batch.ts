import type { DeadLetterEntry } from '../queue/dead-letter-queue.js';

/**
 * A source batch mapped and serialized, ready for the enqueuer, as bytes:
 * every event's JSON line in UTF-8 followed by `\n` (`lines`, piece `i`
 * ending at `lineEnds[i]`), its id followed by a NUL (`ids`, `idEnds`) and
 * its key partition, in source order; then the dead-letter entries and how
 * many records each mapping's filter dropped.
 *
 * Why bytes: this is the form the queue stores (a batch payload is these
 * lines back to back), so serializing straight into it is the only encoding
 * an event ever gets. From the mapping thread the byte blocks are handed over
 * (transferred, not copied), where a million JSON strings would have been
 * cloned into the reading thread's heap only to be encoded there, and the
 * delivery side never transcodes what it reads.
 */
export interface MappedBatch {
  count: number;
  lines: Uint8Array;
  lineEnds: Uint32Array;
  ids: Uint8Array;
  idEnds: Uint32Array;
  partitions: Uint16Array;
  dead: DeadLetterEntry[];
  filtered: Record<string, number>;
}

/** Where piece `i` of `bytes` (see MappedBatch) starts. */
export function pieceStart(ends: Uint32Array, i: number): number {
  return i === 0 ? 0 : ends[i - 1]!;
}

/** The batch's JSON lines as strings (tests, diagnostics). */
export function mappedLines(batch: MappedBatch): string[] {
  return pieces(batch.lines, batch.lineEnds);
}

/** The batch's event ids as strings. */
export function mappedIds(batch: MappedBatch): string[] {
  return pieces(batch.ids, batch.idEnds);
}

function pieces(bytes: Uint8Array, ends: Uint32Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from(ends, (end, i) => buf.toString('utf8', pieceStart(ends, i), end - 1));
}

/** The ArrayBuffers a MappedBatch can hand to another thread without a copy. */
export function transferables(batch: MappedBatch): ArrayBuffer[] {
  return [batch.lines, batch.lineEnds, batch.ids, batch.idEnds, batch.partitions].map((a) => a.buffer as ArrayBuffer);
}

/** Builds a MappedBatch event by event. */
export class MappedBatchBuilder {
  private readonly lines = new PieceWriter(0x0a, 64 * 1024);
  private readonly ids = new PieceWriter(0, 8 * 1024);
  private readonly partitions: number[] = [];

  add(line: string, id: string, partition: number): void {
    this.lines.write(line);
    this.ids.write(id);
    this.partitions.push(partition);
  }

  finish(dead: DeadLetterEntry[], filtered: Record<string, number>): MappedBatch {
    const lines = this.lines.finish();
    const ids = this.ids.finish();
    return { count: this.partitions.length, lines: lines.bytes, lineEnds: lines.ends, ids: ids.bytes, idEnds: ids.ends, partitions: Uint16Array.from(this.partitions), dead, filtered };
  }
}

/**
 * Strings written one after another as UTF-8 into one growing block, each
 * followed by a separator byte. The block has an ArrayBuffer of its own
 * (not Node's shared pool), so it can be transferred.
 */
class PieceWriter {
  private bytes: Buffer;
  private used = 0;
  private readonly ends: number[] = [];

  constructor(
    private readonly separator: number,
    initialBytes: number,
  ) {
    this.bytes = Buffer.allocUnsafeSlow(initialBytes);
  }

  write(text: string): void {
    // At most 3 UTF-8 bytes per UTF-16 unit (a surrogate pair is 2 units, 4 bytes), plus the separator.
    const need = this.used + text.length * 3 + 1;
    if (need > this.bytes.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, this.bytes.length * 2));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    this.used += this.bytes.write(text, this.used);
    this.bytes[this.used++] = this.separator;
    this.ends.push(this.used);
  }

  finish(): { bytes: Uint8Array; ends: Uint32Array } {
    return { bytes: this.bytes.subarray(0, this.used), ends: Uint32Array.from(this.ends) };
  }
}
