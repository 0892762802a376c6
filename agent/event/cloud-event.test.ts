import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { eventId, eventType, subjectOf, subjectOfKey } from './cloud-event.js';

describe('eventId', () => {
  // Ids already delivered must never change: targets deduplicate on them.
  it('keeps the ids it has always given', () => {
    expect(eventId('customers', 'customer', 'abc:1')).toBe('62763d04-bb29-82a3-ab1c-cece4cd0ee66');
    expect(eventId('customers', 'customer', 'kunden_2024.csv:17')).toBe('d4267db3-06df-808e-992e-5318274ec858');
    expect(eventId('orders', 'order', '0/16B3748:42')).toBe('b5d2f75b-79e7-86c4-a7b0-bfa965be2f26');
    expect(eventId('', '', '')).toBe('96a296d2-24f2-85c6-bbee-93c30f8a3091');
    expect(eventId('pipé', 'Kunde', '€ 😀')).toBe('361eebf2-a0f6-83c5-a0d8-d1e424bafb10');
  });

  it('is the sha256 of pipeline, entity and change id in the UUID v8 layout', () => {
    for (let i = 0; i < 200; i++) {
      const changeId = `file-${i}.csv:${i * 7919}${'é€😀'.slice(0, i % 4)}`;
      const h = createHash('sha256').update(`p${i % 3}\0entity\0${changeId}`, 'utf8').digest('hex');
      const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
      const expected = `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
      expect(eventId(`p${i % 3}`, 'entity', changeId)).toBe(expected);
    }
  });
});

describe('eventType and subjectOf', () => {
  it('names the operation and joins the key with "|"', () => {
    expect(eventType('customer', 'u')).toBe('customer.updated');
    expect(subjectOf(['K1', 2, null, undefined, true])).toBe('K1|2|||true');
  });
  it('gives a one-field key the subject subjectOf gives it', () => {
    for (const v of ['K1', '', 'a|b', 0, -1.5, 12n, true, null, undefined, new Date(0), { a: 1 }]) expect(subjectOfKey(v)).toBe(subjectOf([v]));
  });
});
