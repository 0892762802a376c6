import type { Operation, SourceRecord } from '../../agent/plugin/source.js';
import { UNCHANGED_TOAST, type RawTuple, type Relation } from './pgoutput-decoder.js';
import { decoderFor, type Decoder } from './type-decoding.js';

/** The transaction a change belongs to, as its Begin message told. */
export interface TransactionContext {
  /** LSN of the commit record: unique per transaction, the same on every re-read. */
  commitLsn: string;
  xid: number;
  commitTime: string;
  /** Changes seen so far in this transaction (including those of tables not captured). */
  index: number;
}

export type ChangeMessage =
  | { tag: 'insert'; relation: Relation; newTuple: RawTuple }
  | { tag: 'update'; relation: Relation; keyTuple?: RawTuple; oldTuple?: RawTuple; newTuple: RawTuple }
  | { tag: 'delete'; relation: Relation; keyTuple?: RawTuple; oldTuple?: RawTuple };

export function tableName(relation: Relation): string {
  return `${relation.schema}.${relation.name}`;
}

/** What every change of one relation (one Relation message) shares: looked up once, not per row. */
interface RelationPlan {
  table: string;
  names: string[];
  decoders: Decoder[];
  isKey: boolean[];
}

/** Keyed by the Relation object: a new Relation message (schema change) gets a new plan. */
const plans = new WeakMap<Relation, RelationPlan>();

function planOf(relation: Relation): RelationPlan {
  let plan = plans.get(relation);
  if (!plan) {
    const { columns } = relation;
    plan = { table: tableName(relation), names: columns.map((c) => c.name), decoders: columns.map((c) => decoderFor(c.typeOid)), isKey: columns.map((c) => c.isKey) };
    plans.set(relation, plan);
  }
  return plan;
}

/** The LSN of the commit of the transaction a streamed record belongs to: its changeId is `<commit LSN>:<n>`. */
export function commitLsnOf(record: SourceRecord): string {
  return record.changeId.slice(0, record.changeId.indexOf(':'));
}

/**
 * One streamed change as a record. changeId is `<commit LSN>:<n>` (n counts
 * the transaction's changes from 0), so re-reading the transaction after a
 * restart yields the same ids. Runs once per change: no per-row lookups.
 */
export function changeRecord(msg: ChangeMessage, txn: TransactionContext, index: number, lsn: string): SourceRecord {
  const plan = planOf(msg.relation);
  const op: Operation = msg.tag === 'insert' ? 'c' : msg.tag === 'update' ? 'u' : 'd';
  let data: Record<string, unknown>;
  let before: Record<string, unknown> | undefined;
  let invalid: string | undefined;
  let unchanged: string[] | undefined;
  try {
    if (msg.tag === 'insert') {
      data = decodeTuple(plan, msg.newTuple);
    } else if (msg.tag === 'update') {
      before = msg.oldTuple ? decodeTuple(plan, msg.oldTuple) : keyOf(plan, msg.keyTuple ?? msg.newTuple);
      // Under REPLICA IDENTITY FULL the old tuple has the TOASTed values the new one omits;
      // under DEFAULT they are not in the WAL at all, so the record names them instead.
      unchanged = [];
      data = decodeTuple(plan, msg.newTuple, msg.oldTuple, unchanged);
    } else {
      before = msg.oldTuple ? decodeTuple(plan, msg.oldTuple) : keyOf(plan, msg.keyTuple ?? []);
      data = before;
    }
  } catch (error) {
    data = { _raw: rawOf(msg) };
    before = undefined;
    unchanged = undefined;
    invalid = `cannot decode change: ${(error as Error).message}`;
  }
  const record: SourceRecord = {
    origin: { kind: 'table', name: plan.table },
    op,
    data,
    changeId: `${txn.commitLsn}:${index}`,
    time: txn.commitTime,
    position: lsn,
    location: `${plan.table} @ ${lsn} xid ${txn.xid}`,
    txid: String(txn.xid),
  };
  if (before) record.before = before;
  if (unchanged !== undefined && unchanged.length > 0) record.unchanged = unchanged;
  if (invalid !== undefined) record.invalid = invalid;
  return record;
}

/** A truncate of one captured table. */
export function truncateRecord(relation: Relation, txn: TransactionContext, index: number, lsn: string): SourceRecord {
  const table = tableName(relation);
  return {
    origin: { kind: 'table', name: table },
    op: 't',
    data: {},
    changeId: `${txn.commitLsn}:${index}`,
    time: txn.commitTime,
    position: lsn,
    location: `${table} @ ${lsn} xid ${txn.xid}`,
    txid: String(txn.xid),
  };
}

/**
 * The tuple as a row. A value Postgres did not send (unchanged TOAST) is
 * taken from `fallback` when that has it; otherwise the column is left out of
 * the row and its name goes to `unchanged`: no placeholder a mapping or a
 * contract could mistake for the value.
 */
function decodeTuple(plan: RelationPlan, tuple: RawTuple, fallback?: RawTuple, unchanged?: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { names, decoders } = plan;
  for (let i = 0; i < names.length; i++) {
    let raw = tuple[i];
    if (raw === UNCHANGED_TOAST && fallback) raw = fallback[i];
    if (raw === undefined) continue; // a column added after this tuple was written
    if (raw === UNCHANGED_TOAST) {
      unchanged?.push(names[i]!);
      continue;
    }
    out[names[i]!] = raw === null ? null : decoders[i]!(raw);
  }
  return out;
}

function keyOf(plan: RelationPlan, tuple: RawTuple): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { names, decoders, isKey } = plan;
  for (let i = 0; i < names.length; i++) {
    const raw = tuple[i];
    if (!isKey[i] || raw === undefined || raw === UNCHANGED_TOAST) continue;
    out[names[i]!] = raw === null ? null : decoders[i]!(raw);
  }
  return out;
}

/** What a dead-letter entry shows for a value Postgres did not send, in the raw tuples of an undecodable change. */
const RAW_UNCHANGED = '(unchanged TOAST value, not sent)';

function rawOf(msg: ChangeMessage): Record<string, unknown> {
  const plain = (t?: RawTuple) => t?.map((v) => (v === UNCHANGED_TOAST ? RAW_UNCHANGED : v));
  if (msg.tag === 'insert') return { new: plain(msg.newTuple) };
  return { new: plain(msg.tag === 'update' ? msg.newTuple : undefined), old: plain(msg.oldTuple), key: plain(msg.keyTuple) };
}
