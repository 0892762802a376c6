import type { Operation, RecordOrigin, SourceRecord } from '../plugin/source.js';

/**
 * A source batch in the form it crosses to the mapping thread: the records'
 * field names once per shape, every string value of the batch joined into
 * one string (`text`) with their lengths in a typed array (`slots`), and
 * only the values that are not strings (numbers, bigints, Dates, nested
 * objects, Buffers) structured-cloned one by one (`others`).
 *
 * Why: structured clone writes, and on the other side re-creates, every
 * value on its own. For a batch of CSV records or table rows, which are
 * mostly strings, re-creating some ten strings a record on the mapping
 * thread cost more than the mapping of the record did. One string and two
 * typed arrays are a few block copies; the receiving thread then takes each
 * value as a slice of the batch's text (docs/benchmarks.md).
 *
 * `heads` holds, per record: origin index, op index, data shape, before
 * shape (-1 when there is no before-image), and the shape whose keys are the
 * record's `unchanged` columns (-1 when it has none). `slots` holds, per record:
 * changeId, time, location, position, txid, invalid, the data values in
 * shape order, then the before values: the length of a string in `text`
 * (≥ 0), or OTHER (the next entry of `others`), ABSENT (undefined) or NULL.
 */
export interface PackedRecords {
  count: number;
  origins: RecordOrigin[];
  shapes: string[][];
  heads: Int32Array;
  text: string;
  slots: Int32Array;
  others: unknown[];
}

const OPS: readonly Operation[] = ['c', 'u', 'd', 'r', 't'];
const OP_INDEX: Record<Operation, number> = { c: 0, u: 1, d: 2, r: 3, t: 4 };
const HEAD = 5;
const FIXED_SLOTS = 6;
const OTHER = -1;
const ABSENT = -2;
const NULL = -3;

export function packRecords(records: readonly SourceRecord[]): PackedRecords {
  const origins: RecordOrigin[] = [];
  const shapes = new ShapeTable();
  const heads = new Int32Array(records.length * HEAD);
  let origin: RecordOrigin | undefined;
  let slotCount = 0;
  for (let n = 0; n < records.length; n++) {
    const r = records[n]!;
    // Sources make one origin per file or table run, or a fresh equal one per record: compare by value, once.
    if (origin === undefined || (r.origin !== origin && (r.origin.kind !== origin.kind || r.origin.name !== origin.name))) {
      origin = r.origin;
      origins.push(origin);
    }
    const dataShape = shapes.of(r.data);
    const beforeShape = r.before === undefined ? -1 : shapes.of(r.before);
    const h = n * HEAD;
    heads[h] = origins.length - 1;
    heads[h + 1] = OP_INDEX[r.op];
    heads[h + 2] = dataShape;
    heads[h + 3] = beforeShape;
    // A list of column names is a shape like any other: a table's updates mostly repeat the same one.
    heads[h + 4] = r.unchanged === undefined ? -1 : shapes.ofList(r.unchanged);
    slotCount += FIXED_SLOTS + shapes.keys[dataShape]!.length + (beforeShape < 0 ? 0 : shapes.keys[beforeShape]!.length);
  }
  const writer = new SlotWriter(slotCount);
  for (let n = 0; n < records.length; n++) {
    const r = records[n]!;
    writer.put(r.changeId);
    writer.put(r.time);
    writer.put(r.location);
    writer.put(r.position);
    writer.put(r.txid);
    writer.put(r.invalid);
    for (const k of shapes.keys[heads[n * HEAD + 2]!]!) writer.put(r.data[k]);
    const beforeShape = heads[n * HEAD + 3]!;
    if (beforeShape >= 0) for (const k of shapes.keys[beforeShape]!) writer.put(r.before![k]);
  }
  return { count: records.length, origins, shapes: shapes.keys, heads, text: writer.parts.join(''), slots: writer.slots, others: writer.others };
}

/** The ArrayBuffers of a PackedRecords that can be handed to another thread without a copy. */
export function packedTransferables(packed: PackedRecords): ArrayBuffer[] {
  return [packed.heads.buffer as ArrayBuffer, packed.slots.buffer as ArrayBuffer];
}

export function unpackRecords(packed: PackedRecords): SourceRecord[] {
  const { origins, shapes, heads } = packed;
  const reader = new SlotReader(packed);
  const out: SourceRecord[] = new Array(packed.count);
  for (let n = 0; n < packed.count; n++) {
    const h = n * HEAD;
    const record: SourceRecord = {
      origin: origins[heads[h]!]!,
      op: OPS[heads[h + 1]!]!,
      data: {},
      changeId: reader.next() as string,
      time: reader.next() as string,
      location: reader.next() as string,
      position: reader.next() as string,
    };
    const txid = reader.next() as string | undefined;
    const invalid = reader.next() as string | undefined;
    fill(record.data, shapes[heads[h + 2]!]!, reader);
    const beforeShape = heads[h + 3]!;
    if (beforeShape >= 0) {
      record.before = {};
      fill(record.before, shapes[beforeShape]!, reader);
    }
    const unchangedShape = heads[h + 4]!;
    if (unchangedShape >= 0) record.unchanged = shapes[unchangedShape]!;
    if (txid !== undefined) record.txid = txid;
    if (invalid !== undefined) record.invalid = invalid;
    out[n] = record;
  }
  return out;
}

class SlotWriter {
  readonly slots: Int32Array;
  readonly parts: string[] = [];
  readonly others: unknown[] = [];
  private at = 0;

  constructor(size: number) {
    this.slots = new Int32Array(size);
  }

  put(value: unknown): void {
    if (typeof value === 'string') {
      this.parts.push(value);
      this.slots[this.at++] = value.length;
    } else if (value === undefined) {
      this.slots[this.at++] = ABSENT;
    } else if (value === null) {
      this.slots[this.at++] = NULL;
    } else {
      this.others.push(value);
      this.slots[this.at++] = OTHER;
    }
  }
}

class SlotReader {
  private slot = 0;
  private offset = 0;
  private other = 0;

  constructor(private readonly packed: PackedRecords) {}

  next(): unknown {
    const len = this.packed.slots[this.slot++]!;
    if (len >= 0) return this.packed.text.slice(this.offset, (this.offset += len));
    if (len === ABSENT) return undefined;
    if (len === NULL) return null;
    return this.packed.others[this.other++];
  }
}

function fill(target: Record<string, unknown>, keys: readonly string[], reader: SlotReader): void {
  for (const k of keys) {
    let value = reader.next();
    // Structured clone turns a Buffer into a plain Uint8Array; casts and JSON treat the two differently.
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) value = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    // A column may be called __proto__; assignment would set the prototype instead.
    if (k === '__proto__') Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true });
    else target[k] = value;
  }
}

/**
 * The distinct key lists of a batch's objects (and its `unchanged` column
 * lists). Consecutive records nearly always share one, so an object is first
 * compared with the last shape, key by key, without allocating.
 */
class ShapeTable {
  readonly keys: string[][] = [];
  private last = -1;
  // The last `unchanged` list apart: interleaved with data shapes, one shared `last` would miss every time.
  private lastList = -1;

  of(object: Record<string, unknown>): number {
    if (this.last >= 0 && sameKeys(object, this.keys[this.last]!)) return this.last;
    return (this.last = this.find(Object.keys(object)));
  }

  ofList(list: readonly string[]): number {
    if (this.lastList >= 0 && sameList(list, this.keys[this.lastList]!)) return this.lastList;
    return (this.lastList = this.find([...list]));
  }

  private find(keys: string[]): number {
    const joined = keys.join('\0');
    const found = this.keys.findIndex((k) => k.length === keys.length && k.join('\0') === joined);
    return found >= 0 ? found : this.keys.push(keys) - 1;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Own enumerable keys, in order, equal to `keys` (an inherited key makes it unequal, and Object.keys decides). */
function sameKeys(object: Record<string, unknown>, keys: readonly string[]): boolean {
  let j = 0;
  for (const k in object) if (keys[j++] !== k) return false;
  return j === keys.length;
}
