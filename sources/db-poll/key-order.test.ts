import { describe, expect, it } from 'vitest';
import type { Column } from './dialects/dialect.js';
import { compareDecimals, compareTuples, compareUtf8 } from './key-order.js';

const text: Column = { name: 'k', kind: 'text', utc: false };
const number: Column = { name: 'n', kind: 'number', utc: false };

describe('key order', () => {
  it('compares text by UTF-8 bytes, as ORDER BY ... COLLATE "C" / BINARY does', () => {
    const words = ['b', 'B', 'ä', 'a', '😀', '\uffff', 'ab', 'a b', ''];
    const byBytes = [...words].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...words].sort(compareUtf8)).toEqual(byBytes);
    expect(byBytes.indexOf('\uffff')).toBeLessThan(byBytes.indexOf('😀'));
  });

  it('compares exact decimals and big integers numerically', () => {
    expect(compareDecimals('9', '10')).toBe(-1);
    expect(compareDecimals('-10', '-9')).toBe(-1);
    expect(compareDecimals('12345678901234567890', '12345678901234567891')).toBe(-1);
    expect(compareDecimals('1.50', '1.5')).toBe(0);
    expect(compareDecimals('0.05', '0.5')).toBe(-1);
    expect(compareDecimals('-0', '0')).toBe(0);
    expect(compareTuples(['2024-01-01 10:00:00', 9], ['2024-01-01 10:00:00', 10], [text, number])).toBe(-1);
    expect(compareTuples(['x', '10'], ['x', 9], [text, number])).toBe(1);
  });
});
