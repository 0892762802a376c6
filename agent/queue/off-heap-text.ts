/**
 * UTF-8 pieces appended into one reused `Buffer` (outside the V8 heap), each
 * ended by a separator byte. What a partition buffers until its batch is
 * flushed outlives a young-generation cycle; as JS strings those pieces
 * would be copied by every scavenge and then promoted, and collecting them
 * was the agent's largest cost. Pieces come as strings (`append`) or as
 * bytes already encoded, separator included (`appendEncoded`, from a
 * MappedBatch).
 */
const KEEP_BYTES = 1 << 20;

export class OffHeapText {
  private bytes: Buffer;
  private used = 0;
  private pieces = 0;

  constructor(
    private readonly separator: number,
    private readonly options: { initialBytes?: number } = {},
  ) {
    this.bytes = Buffer.allocUnsafe(options.initialBytes ?? 4096);
  }

  /** Pieces appended since the last `take`. */
  get count(): number {
    return this.pieces;
  }

  append(text: string): void {
    // At most 3 UTF-8 bytes per UTF-16 unit (a surrogate pair is 2 units, 4 bytes), plus the separator.
    this.reserve(this.used + text.length * 3 + 1);
    this.used += this.bytes.write(text, this.used);
    this.bytes[this.used++] = this.separator;
    this.pieces++;
  }

  /** Appends `bytes[start, end)`: one piece in UTF-8 that already ends with this text's separator. */
  appendEncoded(bytes: Uint8Array, start: number, end: number): void {
    this.reserve(this.used + end - start);
    this.bytes.set(bytes.subarray(start, end), this.used);
    this.used += end - start;
    this.pieces++;
  }

  private reserve(need: number): void {
    if (need <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.bytes.length * 2));
    this.bytes.copy(grown, 0, 0, this.used);
    this.bytes = grown;
  }

  /** Every piece so far, each followed by the separator, as bytes (valid until the next `append` or `clear`). */
  view(): Buffer {
    return this.bytes.subarray(0, this.used);
  }

  /** A copy of every piece so far, each followed by the separator. */
  copy(): Buffer {
    return Buffer.from(this.bytes.subarray(0, this.used));
  }

  clear(): void {
    this.used = 0;
    this.pieces = 0;
    // Many partitions each keeping the room of an unusually large batch would add up: give that back.
    if (this.bytes.length > KEEP_BYTES) this.bytes = Buffer.allocUnsafe(this.options.initialBytes ?? 4096);
  }
}
