import { hash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';

/**
 * The event Ferry delivers: a CloudEvents 1.0 JSON object in structured mode.
 * Declared once here; `docs/schemas/event.schema.json` is generated from it.
 */
export const FerryEventSchema = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ minLength: 1, description: 'Deterministic: the same change always gets the same id, across restarts and re-reads.' }),
    source: Type.String({ minLength: 1, format: 'uri-reference', description: 'ferry://AGENT/PIPELINE, the agent id percent-encoded where it is not a plain host name.' }),
    type: Type.String({ minLength: 1, description: 'ENTITY.OPERATION, e.g. customer.updated' }),
    subject: Type.String({ description: 'The canonical key; several key fields are joined with "|".' }),
    time: Type.String({ format: 'date-time', description: "The source's commit or file time." }),
    dataschema: Type.String({
      format: 'uri',
      pattern: '^[^#]*$',
      description: "The contract the data matches, as an absolute URI: the contract's own $id when it is one, else urn:ferry:contract:NAME:VERSION from its file name, e.g. urn:ferry:contract:customer:v1.",
    }),
    datacontenttype: Type.Literal('application/json'),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'The canonical record; for a delete, the key and whatever before-image exists.' }),
    ferryop: Type.Union([Type.Literal('c'), Type.Literal('u'), Type.Literal('d'), Type.Literal('r'), Type.Literal('t')], {
      description: 'Operation: create, update, delete, read (snapshot), truncate.',
    }),
    ferryposition: Type.String({ description: 'The source position of the change (file and line, LSN, binlog position...).' }),
    ferrypipeline: Type.String({ description: 'The pipeline that produced the event.' }),
    ferrytxid: Type.Optional(Type.String({ description: 'The source transaction of the change, where the source has one: the Postgres xid, the MySQL/MariaDB GTID.' })),
    ferryunchanged: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$',
        description:
          'The canonical fields left out of data because the source did not send their unchanged value (a Postgres TOASTed column under REPLICA IDENTITY DEFAULT), comma-separated, e.g. payload,notes. The target keeps the value it has for them. Absent when every field is in data.',
      }),
    ),
  },
  { $id: 'https://ferry.dev/schemas/event.schema.json', title: 'Ferry event (CloudEvents 1.0)', additionalProperties: true },
);

export type FerryEvent = Static<typeof FerryEventSchema>;

const OP_NAMES = { c: 'created', u: 'updated', d: 'deleted', r: 'snapshot', t: 'truncated' } as const;

export function eventType(entity: string, op: FerryEvent['ferryop']): string {
  return `${entity}.${OP_NAMES[op]}`;
}

// The two hex digit char codes of every byte value, for formatting ids without a hex string.
const HEX_HI = new Uint8Array(256);
const HEX_LO = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  HEX_HI[i] = '0123456789abcdef'.charCodeAt(i >> 4);
  HEX_LO[i] = '0123456789abcdef'.charCodeAt(i & 15);
}
const DASH = 0x2d;

/**
 * The event id: a hash of what identifies the change (pipeline, entity and the
 * source's change id), never of timing, so a re-read after a crash yields the
 * same id and targets can drop the duplicate. Formatted as a UUID (v8 layout)
 * because many targets store ids in UUID columns.
 */
export function eventId(pipeline: string, entity: string, changeId: string): string {
  // Runs once per event: the one-shot digest as a 32-char latin1 ('binary') string (no Buffer, no
  // 64-char hex) and the UUID built in one flat string, instead of hex slices and joins.
  const h = hash('sha256', `${pipeline}\0${entity}\0${changeId}`, 'binary');
  const b0 = h.charCodeAt(0), b1 = h.charCodeAt(1), b2 = h.charCodeAt(2), b3 = h.charCodeAt(3);
  const b4 = h.charCodeAt(4), b5 = h.charCodeAt(5);
  const b6 = (h.charCodeAt(6) & 0x0f) | 0x80, b7 = h.charCodeAt(7); // version 8
  const b8 = (h.charCodeAt(8) & 0x3f) | 0x80, b9 = h.charCodeAt(9); // variant 10xx
  const b10 = h.charCodeAt(10), b11 = h.charCodeAt(11), b12 = h.charCodeAt(12), b13 = h.charCodeAt(13), b14 = h.charCodeAt(14), b15 = h.charCodeAt(15);
  return String.fromCharCode(
    HEX_HI[b0]!, HEX_LO[b0]!, HEX_HI[b1]!, HEX_LO[b1]!, HEX_HI[b2]!, HEX_LO[b2]!, HEX_HI[b3]!, HEX_LO[b3]!, DASH,
    HEX_HI[b4]!, HEX_LO[b4]!, HEX_HI[b5]!, HEX_LO[b5]!, DASH,
    HEX_HI[b6]!, HEX_LO[b6]!, HEX_HI[b7]!, HEX_LO[b7]!, DASH,
    HEX_HI[b8]!, HEX_LO[b8]!, HEX_HI[b9]!, HEX_LO[b9]!, DASH,
    HEX_HI[b10]!, HEX_LO[b10]!, HEX_HI[b11]!, HEX_LO[b11]!, HEX_HI[b12]!, HEX_LO[b12]!, HEX_HI[b13]!, HEX_LO[b13]!, HEX_HI[b14]!, HEX_LO[b14]!, HEX_HI[b15]!, HEX_LO[b15]!,
  );
}

/** The subject: the canonical key, fields joined by "|" in key order. */
export function subjectOf(key: readonly unknown[]): string {
  return key.map(subjectOfKey).join('|');
}

/** The subject of a one-field key (most keys), without building an array: what `subjectOf([value])` gives. */
export function subjectOfKey(value: unknown): string {
  return value === null || value === undefined ? '' : String(value);
}
