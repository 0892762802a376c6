import { PgoutputPlugin } from 'pg-logical-replication';

/**
 * A decoder for `pgoutput` protocol v1 that keeps column values as the text
 * Postgres sent (decoded later by type-decoding.ts) and keeps "unchanged
 * TOAST" distinct from NULL. The library's own parser runs values through
 * node-postgres' global type parsers (timestamps lose microseconds, bytea
 * becomes a Buffer) and turns unchanged TOAST into `undefined`, which is why
 * Ferry decodes the messages itself and uses the library for the connection,
 * the replication protocol and acknowledgements.
 */

/** A column value that Postgres did not send because it is TOASTed and unchanged. */
export const UNCHANGED_TOAST: unique symbol = Symbol('unchanged-toast');
export type RawValue = string | null | typeof UNCHANGED_TOAST;
/** One tuple, values in column order. */
export type RawTuple = RawValue[];

export interface RelationColumn {
  name: string;
  typeOid: number;
  /** Part of the replica identity (the primary key under REPLICA IDENTITY DEFAULT). */
  isKey: boolean;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  columns: RelationColumn[];
}

export type WalMessage =
  | { tag: 'begin'; finalLsn: string; commitTime: string; xid: number }
  | { tag: 'commit'; commitLsn: string; endLsn: string; commitTime: string }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relation: Relation; newTuple: RawTuple }
  | { tag: 'update'; relation: Relation; keyTuple?: RawTuple; oldTuple?: RawTuple; newTuple: RawTuple }
  | { tag: 'delete'; relation: Relation; keyTuple?: RawTuple; oldTuple?: RawTuple }
  | { tag: 'truncate'; relations: Relation[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'ignored'; what: string }
  /** The message could not be decoded (a protocol error): the stream stops with it. */
  | { tag: 'broken'; reason: string };

const IDENTITY = { d: 'default', n: 'nothing', f: 'full', i: 'index' } as const;
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}
  u8(): number {
    return this.buf.readUInt8(this.offset++);
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }
  lsn(): string {
    const high = this.buf.readUInt32BE(this.offset);
    const low = this.buf.readUInt32BE(this.offset + 4);
    this.offset += 8;
    return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
  }
  /** Postgres timestamps: microseconds since 2000-01-01, as ISO 8601 (millisecond precision is what Date has; the micros are appended). */
  time(): string {
    const micros = this.u64() + POSTGRES_EPOCH_MICROS;
    const iso = new Date(Number(micros / 1000n)).toISOString();
    return `${iso.slice(0, 23)}${(micros % 1000n).toString().padStart(3, '0')}Z`;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.offset);
    const s = this.buf.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return s;
  }
  text(length: number): string {
    const s = this.buf.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return s;
  }
}

export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();

  decode(buf: Buffer): WalMessage {
    const r = new Reader(buf);
    const tag = String.fromCharCode(r.u8());
    switch (tag) {
      case 'B':
        return { tag: 'begin', finalLsn: r.lsn(), commitTime: r.time(), xid: r.i32() >>> 0 };
      case 'C': {
        r.u8(); // flags, unused
        return { tag: 'commit', commitLsn: r.lsn(), endLsn: r.lsn(), commitTime: r.time() };
      }
      case 'R':
        return { tag: 'relation', relation: this.readRelation(r) };
      case 'I': {
        const relation = this.relation(r.i32());
        r.u8(); // 'N'
        return { tag: 'insert', relation, newTuple: readTuple(r) };
      }
      case 'U': {
        const relation = this.relation(r.i32());
        let kind = String.fromCharCode(r.u8());
        let keyTuple: RawTuple | undefined;
        let oldTuple: RawTuple | undefined;
        if (kind === 'K') keyTuple = readTuple(r);
        if (kind === 'O') oldTuple = readTuple(r);
        if (kind !== 'N') kind = String.fromCharCode(r.u8());
        const newTuple = readTuple(r);
        return { tag: 'update', relation, keyTuple, oldTuple, newTuple };
      }
      case 'D': {
        const relation = this.relation(r.i32());
        const kind = String.fromCharCode(r.u8());
        const tuple = readTuple(r);
        return kind === 'K' ? { tag: 'delete', relation, keyTuple: tuple } : { tag: 'delete', relation, oldTuple: tuple };
      }
      case 'T': {
        const count = r.i32();
        const flags = r.u8();
        const relations: Relation[] = [];
        for (let i = 0; i < count; i++) relations.push(this.relation(r.i32()));
        return { tag: 'truncate', relations, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 };
      }
      default:
        // Origin, Type and logical Message carry nothing Ferry emits.
        return { tag: 'ignored', what: tag };
    }
  }

  private relation(oid: number): Relation {
    const relation = this.relations.get(oid);
    // pgoutput always sends a Relation message before the first change of a
    // relation on a connection; a miss is a protocol error, not bad data.
    if (!relation) throw new Error(`pgoutput: change for unknown relation oid ${oid}`);
    return relation;
  }

  private readRelation(r: Reader): Relation {
    const oid = r.i32() >>> 0;
    const schema = r.cstring();
    const name = r.cstring();
    const identity = String.fromCharCode(r.u8()) as keyof typeof IDENTITY;
    const columns: RelationColumn[] = [];
    const count = r.i16();
    for (let i = 0; i < count; i++) {
      const flags = r.u8();
      const colName = r.cstring();
      const typeOid = r.i32() >>> 0;
      r.i32(); // type modifier
      columns.push({ name: colName, typeOid, isKey: (flags & 1) !== 0 });
    }
    // A new Relation message replaces the old one: schema changes are picked up here.
    const relation: Relation = { oid, schema, name, replicaIdentity: IDENTITY[identity] ?? 'default', columns };
    this.relations.set(oid, relation);
    return relation;
  }
}

function readTuple(r: Reader): RawTuple {
  const count = r.i16();
  const values: RawTuple = new Array<RawValue>(count);
  for (let i = 0; i < count; i++) {
    const kind = String.fromCharCode(r.u8());
    if (kind === 'n') values[i] = null;
    else if (kind === 'u') values[i] = UNCHANGED_TOAST;
    else if (kind === 't' || kind === 'b') values[i] = r.text(r.i32());
    else throw new Error(`pgoutput: unknown tuple value kind ${kind}`);
  }
  return values;
}

/**
 * The library's pgoutput plugin (it issues START_REPLICATION) with Ferry's
 * decoder in place of the library's parser.
 */
export class RawPgoutputPlugin extends PgoutputPlugin {
  private readonly decoder = new PgoutputDecoder();

  constructor(publication: string) {
    super({ protoVersion: 1, publicationNames: [publication] });
  }

  /** Returns a WalMessage; typed as the base class's return so the override type-checks. */
  override parse(buffer: Buffer): ReturnType<PgoutputPlugin['parse']> {
    let msg: WalMessage;
    try {
      msg = this.decoder.decode(buffer);
    } catch (error) {
      // Thrown here it would escape the driver's socket handler uncaught.
      msg = { tag: 'broken', reason: (error as Error).message };
    }
    return msg as unknown as ReturnType<PgoutputPlugin['parse']>;
  }
}
