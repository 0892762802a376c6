import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { loadMappings } from '../mapping/load-mappings.js';
import type { SourceRecord } from '../plugin/source.js';
import { FerryEventSchema, type FerryEvent } from './cloud-event.js';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/**
 * The CloudEvents 1.0 rules for the attributes Ferry sets, written from the
 * spec (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md,
 * "Type System" and "Context Attributes") and not from Ferry's own schema, so
 * the two can disagree and this test catches it. URI is RFC 3986 section 4.3
 * absolute-URI: a scheme and no fragment. Timestamp is RFC 3339.
 */
const CLOUDEVENTS_1_0 = {
  type: 'object',
  required: ['specversion', 'id', 'source', 'type'],
  // Attribute names: lower-case ASCII letters and digits only.
  propertyNames: { pattern: '^[a-z0-9]+$' },
  properties: {
    specversion: { const: '1.0' },
    id: { type: 'string', minLength: 1 },
    source: { type: 'string', minLength: 1, format: 'uri-reference' },
    type: { type: 'string', minLength: 1 },
    subject: { type: 'string', minLength: 1 },
    time: { type: 'string', format: 'date-time' },
    dataschema: { type: 'string', minLength: 1, format: 'uri', pattern: '^[^#]*$' },
    datacontenttype: { type: 'string', pattern: '^[a-z]+/[a-z0-9.+-]+' },
  },
  // The JSON event format: `data` holds the JSON value itself when the content type is JSON.
  not: { required: ['data_base64'] },
} as const;

const ajv = addFormats(new Ajv({ strict: false, allErrors: true }));
const cloudEvents = ajv.compile(CLOUDEVENTS_1_0);
const published = ajv.compile(FerryEventSchema);

function expectConformant(event: FerryEvent): void {
  expect(cloudEvents(event), `${JSON.stringify(event)}\n${JSON.stringify(cloudEvents.errors)}`).toBe(true);
  expect(published(event), `docs/schemas/event.schema.json: ${JSON.stringify(published.errors)}`).toBe(true);
}

const repo = path.resolve(import.meta.dirname, '../..');
const good = { KUNDE_NR: '10001', VORNAME: 'Jürgen', NACHNAME: 'Straßer', EMAIL: 'j@example.de', SALDO: '1234,50', KUNDE_SEIT: '31.01.2024', STATUS: 'A' };

function record(op: SourceRecord['op'], data: Record<string, unknown>, extra: Partial<SourceRecord> = {}): SourceRecord {
  return { origin: { kind: 'file', name: 'kunden_2024-01-31.csv' }, op, data, changeId: `sha256:abc:${op}`, time: '2024-01-31T10:00:00.000Z', location: 'kunden_2024-01-31.csv line 2', position: 'kunden_2024-01-31.csv:2', ...extra };
}

function events(outcomes: ReturnType<Awaited<ReturnType<typeof loadMappings>>['apply']>): FerryEvent[] {
  return outcomes.map((o) => {
    if (o.kind !== 'event') throw new Error(`expected an event, got ${JSON.stringify(o)}`);
    return o.event;
  });
}

describe('produced events are CloudEvents 1.0', () => {
  it('the reference mapping gives conformant events for every operation, dataschema an absolute URI', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], { pipeline: 'customers', agentId: 'demo-host', baseDir: repo });
    const produced = events([
      ...set.apply(record('c', good)),
      ...set.apply(record('u', good)),
      ...set.apply(record('r', good)),
      ...set.apply(record('d', { KUNDE_NR: '10001' })),
      ...set.apply(record('t', {})),
    ]);
    expect(produced.map((e) => e.ferryop)).toEqual(['c', 'u', 'r', 'd', 't']);
    for (const e of produced) {
      expectConformant(e);
      expect(e.dataschema).toBe('urn:ferry:contract:customer:v1');
    }
  });

  it('stays conformant when an update leaves out fields the source did not send (ferryunchanged)', async () => {
    const set = await loadMappings(['mappings/customers.yaml'], { pipeline: 'customers', agentId: 'demo-host', baseDir: repo });
    const { EMAIL: _e, SALDO: _s, ...sent } = good;
    const [e] = events(set.apply(record('u', sent, { unchanged: ['EMAIL', 'SALDO'] })));
    expect(e!.ferryunchanged).toBe('email,balance');
    expect(Object.keys(e!.data)).not.toContain('email');
    expectConformant(e!);
  });

  it('stays conformant for an agent id that is not a host name, and for contracts with and without an absolute $id', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-cloudevents-'));
    const files: Record<string, string> = {
      'Kunden Stamm.v2.schema.json': JSON.stringify({ type: 'object' }),
      'relative.schema.json': JSON.stringify({ $id: 'contracts/order/v3', type: 'object' }),
      'absolute.schema.json': JSON.stringify({ $id: 'https://hub.example/schemas/order.v4.json#', type: 'object' }),
    };
    const mappings = Object.keys(files).map((contract, i) => {
      files[`m${i}.yaml`] = `entity: e${i}\ncontract: "${contract}"\nmatch: { file: "*.csv" }\nkey: [id]\nfields:\n  id: { from: ID }\n`;
      return `m${i}.yaml`;
    });
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    const set = await loadMappings(mappings, { pipeline: 'orders', agentId: 'ERP Host #1/β', baseDir: dir });
    const produced = events(set.apply(record('c', { ID: 7 })));
    for (const e of produced) expectConformant(e);
    expect(produced.map((e) => e.dataschema)).toEqual(['urn:ferry:contract:Kunden%20Stamm:v2', 'urn:ferry:contract:relative', 'https://hub.example/schemas/order.v4.json']);
    expect(produced[0]!.source).toBe('ferry://ERP%20Host%20%231%2F%CE%B2/orders');
  });

  it('the rules are not vacuous: the old relative dataschema, a bad time and an unencoded source fail them', () => {
    const ok: FerryEvent = {
      specversion: '1.0', id: 'x', source: 'ferry://a/p', type: 'customer.created', subject: 'K1', time: '2024-01-31T10:00:00.000Z',
      dataschema: 'urn:ferry:contract:customer:v1', datacontenttype: 'application/json', data: {}, ferryop: 'c', ferryposition: 'f:1', ferrypipeline: 'p',
    };
    expectConformant(ok);
    for (const bad of [
      { dataschema: 'customer/v1' },
      { dataschema: 'https://hub.example/customer.json#v1' },
      { time: '31.01.2024 10:00' },
      { source: 'ferry://ERP Host/p' },
      { id: '' },
    ]) {
      expect(cloudEvents({ ...ok, ...bad }), JSON.stringify(bad)).toBe(false);
      expect(published({ ...ok, ...bad }), JSON.stringify(bad)).toBe(false);
    }
    // Ferry's own attribute: a comma list of field names, as compile-mapping writes it.
    for (const ferryunchanged of ['', 'email, balance', 'email,']) expect(published({ ...ok, ferryunchanged }), ferryunchanged).toBe(false);
    expect(published({ ...ok, ferryunchanged: 'email,balance' })).toBe(true);
  });
});
