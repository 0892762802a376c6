import { describe, expect, it } from 'vitest';
import { decodeValue, parseArray } from './type-decoding.js';
import { compareLsn, formatLsn, lsnToBigInt, normaliseLsn } from './lsn.js';

describe('decodeValue', () => {
  it('keeps exact numbers exact and parses json', () => {
    expect(decodeValue(1700, '12345678901234567890.000000000001')).toBe('12345678901234567890.000000000001');
    expect(decodeValue(20, '9223372036854775807')).toBe('9223372036854775807');
    expect(decodeValue(23, '-42')).toBe(-42);
    expect(decodeValue(701, 'NaN')).toBe('NaN');
    expect(decodeValue(3802, '{"a": [1, "x"]}')).toEqual({ a: [1, 'x'] });
    expect(decodeValue(16, 'f')).toBe(false);
  });
  it('writes timestamptz as ISO 8601 with microseconds', () => {
    expect(decodeValue(1184, '2024-02-29 23:59:59.123456+00')).toBe('2024-02-29T23:59:59.123456Z');
    expect(decodeValue(1184, '2024-02-29 23:59:59+05:30')).toBe('2024-02-29T23:59:59+05:30');
    expect(decodeValue(1184, 'infinity')).toBe('infinity');
  });
  it('encodes bytea as base64', () => {
    expect(decodeValue(17, '\\x00ff10')).toBe(Buffer.from([0, 255, 16]).toString('base64'));
  });
  it('parses nested, quoted and NULL array elements', () => {
    expect(decodeValue(1007, '{1,NULL,3}')).toEqual([1, null, 3]);
    expect(decodeValue(1009, '{"a,b","say \\"hi\\"",NULL,"NULL"}')).toEqual(['a,b', 'say "hi"', null, 'NULL']);
    expect(decodeValue(1231, '{{1.10,2},{3,4}}')).toEqual([['1.10', '2'], ['3', '4']]);
    expect(parseArray('[0:1]={x,y}', (t) => t)).toEqual(['x', 'y']);
    expect(decodeValue(1007, '{}')).toEqual([]);
  });
});

describe('lsn', () => {
  it('round-trips and compares', () => {
    expect(formatLsn(lsnToBigInt('16/B374D848'))).toBe('16/B374D848');
    expect(normaliseLsn('00000000/016B3748')).toBe('0/16B3748');
    expect(compareLsn('1/0', '0/FFFFFFFF')).toBe(1);
  });
});
