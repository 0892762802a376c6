import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';

/**
 * The event Ferry delivers: a CloudEvents 1.0 JSON object in structured mode.
 * Declared once here; `docs/schemas/event.schema.json` is generated from it.
 */
export const FerryEventSchema = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ description: 'Deterministic: the same change always gets the same id, across restarts and re-reads.' }),
    source: Type.String({ description: 'ferry://AGENT/PIPELINE' }),
    type: Type.String({ description: 'ENTITY.OPERATION, e.g. customer.updated' }),
    subject: Type.String({ description: 'The canonical key; several key fields are joined with "|".' }),
    time: Type.String({ format: 'date-time', description: "The source's commit or file time." }),
    dataschema: Type.String({ description: 'The contract and version the data matches, e.g. contracts/customer.v1.schema.json' }),
    datacontenttype: Type.Literal('application/json'),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'The canonical record; for a delete, the key and whatever before-image exists.' }),
    ferryop: Type.Union([Type.Literal('c'), Type.Literal('u'), Type.Literal('d'), Type.Literal('r'), Type.Literal('t')], {
      description: 'Operation: create, update, delete, read (snapshot), truncate.',
    }),
    ferryposition: Type.String({ description: 'The source position of the change (file and line, LSN, binlog position...).' }),
    ferrypipeline: Type.String({ description: 'The pipeline that produced the event.' }),
  },
  { $id: 'https://ferry.dev/schemas/event.schema.json', title: 'Ferry event (CloudEvents 1.0)', additionalProperties: true },
);

export type FerryEvent = Static<typeof FerryEventSchema>;

const OP_NAMES = { c: 'created', u: 'updated', d: 'deleted', r: 'snapshot', t: 'truncated' } as const;

export function eventType(entity: string, op: FerryEvent['ferryop']): string {
  return `${entity}.${OP_NAMES[op]}`;
}

/**
 * The event id: a hash of what identifies the change (pipeline, entity and the
 * source's change id), never of timing, so a re-read after a crash yields the
 * same id and targets can drop the duplicate. Formatted as a UUID (v8 layout)
 * because many targets store ids in UUID columns.
 */
export function eventId(pipeline: string, entity: string, changeId: string): string {
  const h = createHash('sha256').update(pipeline).update('\0').update(entity).update('\0').update(changeId).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The subject: the canonical key, fields joined by "|" in key order. */
export function subjectOf(key: readonly unknown[]): string {
  return key.map((v) => (v === null || v === undefined ? '' : String(v))).join('|');
}
