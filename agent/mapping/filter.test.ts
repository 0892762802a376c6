import { describe, expect, it } from 'vitest';
import { compileFilter } from './filter.js';
import { globToRegExp } from './glob.js';

describe('compileFilter', () => {
  it('keeps records by in, notIn, equals, notEquals, exists and matches', () => {
    expect(compileFilter({ field: 'S', in: ['A', 1] })({ S: 1 })).toBe(true);
    expect(compileFilter({ field: 'S', in: ['A'] })({})).toBe(false);
    expect(compileFilter({ field: 'S', notIn: ['D'] })({ S: 'D' })).toBe(false);
    expect(compileFilter({ field: 'S', notIn: ['D'] })({})).toBe(true);
    expect(compileFilter({ field: 'S', equals: 'A' })({ S: 'A' })).toBe(true);
    expect(compileFilter({ field: 'S', notEquals: 'A' })({ S: 'A' })).toBe(false);
    expect(compileFilter({ field: 'S', exists: true })({ S: '' })).toBe(false);
    expect(compileFilter({ field: 'S', exists: false })({ S: null })).toBe(true);
    expect(compileFilter({ field: 'S', matches: '^K\\d+$' })({ S: 'K12' })).toBe(true);
  });
  it('combines with all, any and not', () => {
    const f = compileFilter({ all: [{ field: 'S', notIn: ['D'] }, { any: [{ field: 'T', equals: 'X' }, { not: { field: 'U', exists: true } }] }] });
    expect(f({ S: 'A', T: 'X', U: '1' })).toBe(true);
    expect(f({ S: 'A', T: 'Y' })).toBe(true);
    expect(f({ S: 'A', T: 'Y', U: '1' })).toBe(false);
    expect(f({ S: 'D', T: 'X' })).toBe(false);
  });
  it('rejects ambiguous filters with the path of the culprit', () => {
    expect(() => compileFilter({ field: 'S', in: ['A'], equals: 'B' })).toThrow('field S needs exactly one condition of in, notIn, equals, notEquals, exists, matches; found in, equals');
    expect(() => compileFilter({ all: [{ in: ['A'] }] })).toThrow(expect.objectContaining({ path: ['all', 0] }));
    expect(() => compileFilter({ field: 'S', matches: '(' })).toThrow(/not a valid regular expression/);
  });
});

describe('globToRegExp', () => {
  it('matches file names the way users expect', () => {
    expect(globToRegExp('kunden_*.csv').test('kunden_2024-01-31.csv')).toBe(true);
    expect(globToRegExp('kunden_*.csv').test('kunden_1.csv.tmp')).toBe(false);
    expect(globToRegExp('kunden_*.csv').test('xkunden_1.csv')).toBe(false);
    expect(globToRegExp('k?.{csv,txt}').test('k1.txt')).toBe(true);
    expect(globToRegExp('k[0-9].csv').test('ka.csv')).toBe(false);
    expect(globToRegExp('k[!0-9].csv').test('ka.csv')).toBe(true);
    expect(globToRegExp('public.kunden').test('publicXkunden')).toBe(false);
  });
});
