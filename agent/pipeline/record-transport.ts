import type { Operation, RecordOrigin, SourceRecord } from '../plugin/source.js';

/**
 * A source batch in the form it crosses to the mapping thread: the records'
 * field names once per shape and their values in one flat array, instead of
 * a thousand objects that each repeat every key.
 *
 * Why: structured clone writes, and on the other side re-creates, every key
 * of every object; for a batch of table rows or CSV records that cost more
 * than the mapping itself on the receiving thread (≈ 1.5 µs a record against
 * ≈ 0.25 µs for this form, `docs/benchmarks.md`). Values are still cloned as
 * they are (strings, numbers, bigints, Dates, nested objects); a Buffer
 * field arrives as a Uint8Array and is made a Buffer again on unpacking.
 *
 * `values` holds, per record: origin index, op, changeId, time, location,
 * position, txid (or undefined), invalid (or undefined), data shape, before shape (-1 when there
 * is no before-image), the data values in shape order, then the before values.
 */
export interface PackedRecords {
  count: number;
  origins: RecordOrigin[];
  shapes: string[][];
  values: unknown[];
}

const FIXED_SLOTS = 10;

export function packRecords(records: readonly SourceRecord[]): PackedRecords {
  const origins: RecordOrigin[] = [];
  const shapes = new ShapeTable();
  const values: unknown[] = [];
  let origin: RecordOrigin | undefined;
  for (const r of records) {
    // Sources make one origin per file or table run, or a fresh equal one per record: compare by value, once.
    if (origin === undefined || (r.origin !== origin && (r.origin.kind !== origin.kind || r.origin.name !== origin.name))) {
      origin = r.origin;
      origins.push(origin);
    }
    const dataShape = shapes.of(r.data);
    const beforeShape = r.before === undefined ? -1 : shapes.of(r.before);
    values.push(origins.length - 1, r.op, r.changeId, r.time, r.location, r.position, r.txid, r.invalid, dataShape, beforeShape);
    for (const k of shapes.keys[dataShape]!) values.push(r.data[k]);
    if (r.before !== undefined) for (const k of shapes.keys[beforeShape]!) values.push(r.before[k]);
  }
  return { count: records.length, origins, shapes: shapes.keys, values };
}

export function unpackRecords(packed: PackedRecords): SourceRecord[] {
  const { origins, shapes, values: v } = packed;
  const out: SourceRecord[] = new Array(packed.count);
  let i = 0;
  for (let n = 0; n < packed.count; n++) {
    const record: SourceRecord = {
      origin: origins[v[i] as number]!,
      op: v[i + 1] as Operation,
      data: {},
      changeId: v[i + 2] as string,
      time: v[i + 3] as string,
      location: v[i + 4] as string,
      position: v[i + 5] as string,
    };
    const txid = v[i + 6] as string | undefined;
    const invalid = v[i + 7] as string | undefined;
    const dataShape = shapes[v[i + 8] as number]!;
    const beforeShape = v[i + 9] as number;
    i += FIXED_SLOTS;
    i = fill(record.data, dataShape, v, i);
    if (beforeShape >= 0) {
      record.before = {};
      i = fill(record.before, shapes[beforeShape]!, v, i);
    }
    if (txid !== undefined) record.txid = txid;
    if (invalid !== undefined) record.invalid = invalid;
    out[n] = record;
  }
  return out;
}

function fill(target: Record<string, unknown>, keys: readonly string[], values: readonly unknown[], at: number): number {
  for (const k of keys) {
    let value = values[at++];
    // Structured clone turns a Buffer into a plain Uint8Array; casts and JSON treat the two differently.
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) value = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    // A column may be called __proto__; assignment would set the prototype instead.
    if (k === '__proto__') Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true });
    else target[k] = value;
  }
  return at;
}

/**
 * The distinct key lists of a batch's objects. Consecutive records nearly
 * always share one, so an object is first compared with the last shape,
 * key by key, without allocating.
 */
class ShapeTable {
  readonly keys: string[][] = [];
  private last = -1;

  of(object: Record<string, unknown>): number {
    if (this.last >= 0 && sameKeys(object, this.keys[this.last]!)) return this.last;
    const keys = Object.keys(object);
    const joined = keys.join('\0');
    let found = this.keys.findIndex((k) => k.length === keys.length && k.join('\0') === joined);
    if (found < 0) found = this.keys.push(keys) - 1;
    this.last = found;
    return found;
  }
}

/** Own enumerable keys, in order, equal to `keys` (an inherited key makes it unequal, and Object.keys decides). */
function sameKeys(object: Record<string, unknown>, keys: readonly string[]): boolean {
  let j = 0;
  for (const k in object) if (keys[j++] !== k) return false;
  return j === keys.length;
}
