import { describe, expect, it } from 'vitest';
import { CastFailure, compileCast } from './casts.js';
import type { FieldSpec } from './schema.js';

const cast = (spec: FieldSpec, value: unknown) => compileCast(spec)(value);
const failure = (spec: FieldSpec, value: unknown) => {
  const r = cast(spec, value);
  expect(r).toBeInstanceOf(CastFailure);
  return (r as CastFailure).message;
};

describe('string', () => {
  it('turns numbers, booleans and dates into text', () => {
    expect(cast({}, 42)).toBe('42');
    expect(cast({ type: 'string' }, true)).toBe('true');
    expect(cast({}, new Date('2024-01-31T00:00:00Z'))).toBe('2024-01-31T00:00:00.000Z');
    expect(cast({}, 'Weiß')).toBe('Weiß');
  });
});

describe('integer', () => {
  it('parses signed integers and drops a thousands separator', () => {
    expect(cast({ type: 'integer' }, '-42')).toBe(-42);
    expect(cast({ type: 'integer' }, 7)).toBe(7);
    expect(cast({ type: 'integer', thousandsSeparator: '.' }, '1.234.567')).toBe(1234567);
  });
  it('rejects fractions, text and unsafe integers', () => {
    expect(failure({ type: 'integer' }, '4,5')).toBe('"4,5" is not an integer');
    expect(failure({ type: 'integer' }, 4.5)).toBe('4.5 is not an integer');
    expect(failure({ type: 'integer' }, '90071992547409930')).toMatch(/too large.*decimal/);
    expect(failure({ type: 'integer' }, '12a')).toBe('"12a" is not an integer');
    expect(cast({ type: 'integer' }, '+0042')).toBe(42);
  });
});

describe('decimal (exact, never through a float)', () => {
  const de: FieldSpec = { type: 'decimal', decimalSeparator: ',', thousandsSeparator: '.' };
  it('rearranges digits as text and keeps the scale', () => {
    expect(cast(de, '1.234,50')).toBe('1234.50');
    expect(cast(de, '1234,50')).toBe('1234.50');
    expect(cast(de, '-0,10')).toBe('-0.10');
    expect(cast(de, ',5')).toBe('0.5');
    expect(cast(de, '007')).toBe('7');
    expect(cast({ type: 'decimal', decimalSeparator: ',' }, '1234,50')).toBe('1234.50');
    expect(cast({ type: 'decimal' }, '12345678901234567890.123456789')).toBe('12345678901234567890.123456789');
    expect(cast({ type: 'decimal' }, '0.1')).toBe('0.1');
  });
  it('rejects misplaced grouping and foreign separators', () => {
    expect(failure(de, '1.23,5')).toBe('"1.23,5" is not a decimal number (decimal separator ",", thousands separator ".")');
    expect(failure({ type: 'decimal', decimalSeparator: ',' }, '1.234,50')).toMatch(/not a decimal number/);
    expect(failure(de, '12x')).toMatch(/"12x"/);
  });
  it('reads signs, bare marks and leading zeros the same with or without grouping', () => {
    const comma: FieldSpec = { type: 'decimal', decimalSeparator: ',' };
    for (const spec of [comma, de]) {
      expect(cast(spec, '+007,50')).toBe('7.50');
      expect(cast(spec, '-,5')).toBe('-0.5');
      expect(cast(spec, '12,')).toBe('12');
      expect(cast(spec, '000')).toBe('0');
      expect(cast(spec, ' -0012,340 ')).toBe('-12.340');
      expect(failure(spec, ',')).toMatch(/^"," is not a decimal number/);
      expect(failure(spec, '-')).toMatch(/^"-" is not a decimal number/);
      expect(failure(spec, '1,2,3')).toMatch(/^"1,2,3" is not a decimal number/);
      expect(failure(spec, '1,5x')).toMatch(/^"1,5x" is not a decimal number/);
      expect(failure(spec, '+-1')).toMatch(/^"\+-1" is not a decimal number/);
    }
    expect(cast({ type: 'decimal' }, '1234.50')).toBe('1234.50');
  });
  it('drops thousands groups only where they are well placed', () => {
    expect(cast(de, '-0.001,5')).toBe('-1.5');
    expect(cast(de, '1.234.567')).toBe('1234567');
    expect(cast(de, '+12.345,')).toBe('12345');
    expect(cast({ type: 'decimal', thousandsSeparator: ' ' }, '12 345.5')).toBe('12345.5');
    expect(failure(de, '1.2345,6')).toMatch(/^"1.2345,6" is not a decimal number/);
    expect(failure(de, '1234.567,8')).toMatch(/^"1234.567,8" is not a decimal number/);
    expect(failure(de, '.123,4')).toMatch(/^".123,4" is not a decimal number/);
    expect(failure(de, '1.234.')).toMatch(/^"1.234." is not a decimal number/);
  });
  it('refuses the same mark for decimals and thousands at load time', () => {
    expect(() => compileCast({ type: 'decimal', decimalSeparator: ',', thousandsSeparator: ',' })).toThrow(/both ","/);
  });
});

describe('boolean', () => {
  it('knows common legacy spellings, case-insensitively', () => {
    expect(cast({ type: 'boolean' }, 'J')).toBe(true);
    expect(cast({ type: 'boolean' }, 'nein')).toBe(false);
    expect(cast({ type: 'boolean' }, 1)).toBe(true);
    expect(cast({ type: 'boolean' }, false)).toBe(false);
  });
  it('uses configured values only, when given', () => {
    const spec: FieldSpec = { type: 'boolean', trueValues: ['aktiv'], falseValues: ['gesperrt'] };
    expect(cast(spec, 'AKTIV')).toBe(true);
    expect(cast(spec, 'gesperrt')).toBe(false);
    expect(failure(spec, 'yes')).toBe('"yes" is not a boolean: expected one of aktiv (true) or gesperrt (false)');
  });
});

describe('date', () => {
  const spec: FieldSpec = { type: 'date', format: 'dd.MM.yyyy' };
  it('parses legacy formats to ISO dates', () => {
    expect(cast(spec, '31.01.2024')).toBe('2024-01-31');
    expect(cast(spec, '29.02.2024')).toBe('2024-02-29');
    expect(cast({ type: 'date', format: 'd.M.yyyy' }, '1.2.2024')).toBe('2024-02-01');
    expect(cast({ type: 'date' }, '2024-01-31')).toBe('2024-01-31');
    expect(cast({ type: 'date', format: 'yyyyMMdd' }, '20240131')).toBe('2024-01-31');
  });
  it('reads fixed-width formats with literals in place', () => {
    expect(cast({ type: 'date', format: "yyyy-MM-dd'T'HH:mm:ss" }, '2024-01-31T23:59:59')).toBe('2024-01-31');
    expect(cast({ type: 'date', format: 'yyyyMMdd' }, '00010101')).toBe('0001-01-01');
    expect(cast({ type: 'date', format: 'MM/dd' }, '02/01')).toBe('1970-02-01');
    expect(failure({ type: 'date', format: "yyyy-MM-dd'T'HH:mm:ss" }, '2024-01-31 23:59:59')).toBe('"2024-01-31 23:59:59" is not a valid date in format yyyy-MM-dd\'T\'HH:mm:ss');
    expect(failure({ type: 'date', format: "yyyy-MM-dd'T'HH:mm:ss" }, '2024-01-31T24:00:00')).toMatch(/not a valid date/);
    expect(failure({ type: 'date', format: 'yyyyMMdd' }, '2024013')).toMatch(/not a valid date/);
    expect(failure({ type: 'date', format: 'yyyyMMdd' }, '202401311')).toMatch(/not a valid date/);
    expect(failure({ type: 'date', format: 'yyyyMMdd' }, '2024-131')).toMatch(/not a valid date/);
    expect(failure(spec, '31.01.２０２４')).toMatch(/not a valid date/);
  });
  it('gives the same result whatever the previous value was', () => {
    const parse = compileCast(spec);
    expect(parse('31.02.2024')).toBeInstanceOf(CastFailure);
    expect(parse('29.02.2024')).toBe('2024-02-29');
    expect(parse('3x.01.2025')).toBeInstanceOf(CastFailure);
    expect(parse('01.12.1999')).toBe('1999-12-01');
  });
  it('falls back to Luxon for tokens the fast parser does not know', () => {
    expect(cast({ type: 'date', format: 'dd MMM yyyy' }, '31 Jan 2024')).toBe('2024-01-31');
    expect(failure({ type: 'date', format: 'dd MMM yyyy' }, '31 Feb 2024')).toBe('"31 Feb 2024" is not a valid date in format dd MMM yyyy');
  });
  it('rejects dates that do not exist', () => {
    expect(failure(spec, '31.02.2024')).toBe('"31.02.2024" is not a valid date in format dd.MM.yyyy');
    expect(failure(spec, '29.02.2023')).toMatch(/not a valid date/);
    expect(failure(spec, '2024-01-31')).toMatch(/not a valid date/);
    expect(failure(spec, '00.01.2024')).toMatch(/not a valid date/);
  });
  it('takes Date objects from database drivers', () => {
    expect(cast(spec, new Date('2024-01-31T00:00:00Z'))).toBe('2024-01-31');
  });
});

describe('timestamp', () => {
  const berlin: FieldSpec = { type: 'timestamp', format: 'dd.MM.yyyy HH:mm:ss', timeZone: 'Europe/Berlin' };
  it('converts legacy local time to UTC', () => {
    expect(cast(berlin, '31.01.2024 10:15:00')).toBe('2024-01-31T09:15:00.000Z');
    expect(cast(berlin, '31.07.2024 10:15:00')).toBe('2024-07-31T08:15:00.000Z');
    expect(cast({ type: 'timestamp', format: 'yyyy-MM-dd HH:mm', timeZone: 'America/New_York' }, '2024-01-31 23:30')).toBe('2024-02-01T04:30:00.000Z');
    expect(cast({ type: 'timestamp', format: 'dd.MM.yyyy HH:mm:ss.SSS' }, '31.01.2024 10:15:00.123')).toBe('2024-01-31T10:15:00.123Z');
  });
  it('handles daylight saving time: the gap is a violation, the overlap takes the first occurrence', () => {
    expect(cast(berlin, '31.03.2024 01:59:59')).toBe('2024-03-31T00:59:59.000Z');
    expect(failure(berlin, '31.03.2024 02:30:00')).toBe('"31.03.2024 02:30:00" does not exist in time zone Europe/Berlin (skipped by the change to daylight saving time)');
    expect(cast(berlin, '31.03.2024 03:00:00')).toBe('2024-03-31T01:00:00.000Z');
    expect(cast(berlin, '27.10.2024 02:30:00')).toBe('2024-10-27T00:30:00.000Z');
    expect(cast(berlin, '27.10.2024 03:00:00')).toBe('2024-10-27T02:00:00.000Z');
  });
  it('parses ISO 8601 by default and keeps an explicit offset', () => {
    expect(cast({ type: 'timestamp', timeZone: 'Europe/Berlin' }, '2024-01-31T10:00:00')).toBe('2024-01-31T09:00:00.000Z');
    expect(cast({ type: 'timestamp', timeZone: 'Europe/Berlin' }, '2024-01-31T10:00:00+05:00')).toBe('2024-01-31T05:00:00.000Z');
    expect(cast({ type: 'timestamp' }, new Date('2024-01-31T10:00:00Z'))).toBe('2024-01-31T10:00:00.000Z');
  });
  it('rejects invalid times and unknown zones', () => {
    expect(failure(berlin, '31.01.2024 25:00:00')).toBe('"31.01.2024 25:00:00" is not a valid timestamp in format dd.MM.yyyy HH:mm:ss');
    expect(() => compileCast({ type: 'timestamp', timeZone: 'Europe/Berlinn' })).toThrow('"Europe/Berlinn" is not an IANA time zone');
  });
});
