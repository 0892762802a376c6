import { describe, expect, it } from 'vitest';
import type { FerryEvent } from './cloud-event.js';
import { EventBatch, encodeEventLines } from './event-batch.js';

const event = (i: number): FerryEvent => ({
  specversion: '1.0',
  id: `id-${i}`,
  source: 'ferry://a/p',
  type: 'customer.created',
  subject: `K${i}|"x"`,
  time: '2024-01-31T00:00:00.000Z',
  dataschema: 'urn:ferry:contract:customer:v1',
  datacontenttype: 'application/json',
  data: { id: `K${i}`, name: 'Jürgen Straßer €\nzwei Zeilen', nested: { a: [1, null, 'ß'] } },
  ferryop: 'c',
  ferryposition: `kunden.csv#${i}`,
  ferrypipeline: 'p',
});

describe('event batches', () => {
  it('job text gives back the very lines JSON.stringify gives, and the same events, parsed only when asked', () => {
    const events = [event(1), event(2), event(3)];
    const lines = events.map((e) => JSON.stringify(e));
    const batch = EventBatch.fromJob(encodeEventLines(lines));
    expect(batch.size).toBe(3);
    expect(batch.lines).toEqual(lines);
    expect(batch.events).toEqual(events);
    expect(batch.slice(1).lines).toEqual(lines.slice(1));
    expect(batch.slice(0, 1).events).toEqual(events.slice(0, 1));
  });

  it('reads arrays (jobs queued by earlier versions) and empty text', () => {
    const events = [event(1), event(2)];
    const batch = EventBatch.fromJob(JSON.parse(JSON.stringify(events)) as FerryEvent[]);
    expect(batch.lines).toEqual(events.map((e) => JSON.stringify(e)));
    expect(batch.slice(1).events).toEqual(events.slice(1));
    expect(EventBatch.fromJob('').size).toBe(0);
  });

  it('stored payloads (UTF-8 bytes, a newline after each line) give the same bytes as JSON lines, and lines and events', () => {
    const wide = (i: number): FerryEvent => ({ ...event(i), data: { id: `K${i}`, name: 'Jürgen Straßer ÿ € 𝄞\nzwei Zeilen' } });
    const events = [wide(1), wide(2), { ...event(3), data: { id: 'K3', name: 'plain ascii' } }];
    const lines = events.map((e) => JSON.stringify(e));
    const stored = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
    const batch = EventBatch.fromPayload(stored, 3);
    expect(batch.size).toBe(3);
    expect(batch.jsonLines).toBe(stored);
    expect(batch.lines).toEqual(lines);
    expect(batch.events).toEqual(events);
    expect(batch.slice(1, 2).lines).toEqual(lines.slice(1, 2));
    expect(batch.slice(2).jsonLines.toString('utf8')).toBe(`${lines[2]}\n`);
    expect(EventBatch.fromPayload(Buffer.alloc(0), 0).lines).toEqual([]);
    expect(EventBatch.of(events).jsonLines.equals(stored)).toBe(true);
  });
});
