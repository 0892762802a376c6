import { DateTime, IANAZone } from 'luxon';
import type { FieldSpec } from './schema.js';

/** A cast that did not work: what the value was and what was expected. */
export class CastFailure {
  constructor(readonly message: string) {}
}

/**
 * Turns one non-empty source value into its canonical form, or a
 * `CastFailure`. Compiled once per field at load time; runs per record, so it
 * allocates nothing on success beyond the result.
 */
export type Cast = (value: unknown) => unknown;

/** Shows a value in a violation message the way the user sees it in the source. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? String(value);
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Compiles the cast of `spec.type`. Throws a plain Error with a user message for bad options (the loader locates it). */
export function compileCast(spec: FieldSpec): Cast {
  switch (spec.type ?? 'string') {
    case 'string':
      return asText;
    case 'integer':
      return integerCast(spec.thousandsSeparator);
    case 'decimal':
      return decimalCast(spec.decimalSeparator ?? '.', spec.thousandsSeparator);
    case 'boolean':
      return booleanCast(spec.trueValues, spec.falseValues);
    case 'date':
      return dateCast(spec.format);
    case 'timestamp':
      return timestampCast(spec.format, spec.timeZone ?? 'UTC');
    case 'json':
      return asJson;
  }
}

/**
 * `json`: the value as the source gave it, for JSON the source has already
 * parsed (a Postgres json/jsonb column, a MySQL JSON column): an object stays
 * an object for a contract that types it so. Text is not parsed.
 */
function asJson(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return new CastFailure(`${value} is beyond the numbers JSON carries exactly; use type decimal`);
  if (value instanceof Uint8Array) return new CastFailure('is binary data, not JSON; use type string');
  return value;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// Shared by every cast: neither is global or sticky, so they keep no lastIndex state between calls.
const INTEGER = /^[+-]?\d+$/;
const LEADING_ZEROS = /^0+(?=\d)/;

function integerCast(thousands: string | undefined): Cast {
  const sep = thousands === undefined ? undefined : new RegExp(escapeRegex(thousands), 'g');
  const what = thousands === undefined ? 'an integer' : `an integer (thousands separator "${thousands}")`;
  return (value) => {
    if (typeof value === 'number') return Number.isSafeInteger(value) ? value : new CastFailure(`${show(value)} is not ${what}`);
    if (typeof value === 'bigint') {
      return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : new CastFailure(`${show(value)} is too large for an integer; use type: decimal`);
    }
    const raw = asText(value);
    const text = sep ? raw.replace(sep, '') : raw;
    if (!INTEGER.test(text)) return new CastFailure(`${show(value)} is not ${what}`);
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : new CastFailure(`${show(value)} is too large for an integer; use type: decimal`);
  };
}

/**
 * Exact decimals: the digits are rearranged as text, never through a float,
 * so "1.234,50" becomes "1234.50" and keeps its scale.
 */
function decimalCast(decimalSep: string, thousands: string | undefined): Cast {
  if (thousands !== undefined && thousands === decimalSep) throw new Error(`thousandsSeparator and decimalSeparator are both "${decimalSep}"`);
  const d = escapeRegex(decimalSep);
  const group = thousands === undefined ? '' : `(?:${escapeRegex(thousands)}\\d{3})*`;
  // Grouped (1.234.567,89) or ungrouped (1234567,89) integer part; a lone ",5" is allowed too.
  const shape = new RegExp(`^([+-])?(?:(\\d{1,3}${group}|\\d+)(?:${d}(\\d*))?|${d}(\\d+))$`);
  const sep = thousands === undefined ? undefined : new RegExp(escapeRegex(thousands), 'g');
  const expectation = `a decimal number (decimal separator "${decimalSep}"${thousands === undefined ? '' : `, thousands separator "${thousands}"`})`;
  const byShape = (value: unknown, text: string): unknown => {
    const m = shape.exec(text);
    if (!m) return new CastFailure(`${show(value)} is not ${expectation}`);
    const sign = m[1] === '-' ? '-' : '';
    const intDigits = m[2] === undefined ? '0' : sep ? m[2].replace(sep, '') : m[2];
    const frac = m[3] ?? m[4] ?? '';
    const int = intDigits.replace(LEADING_ZEROS, '');
    return frac === '' ? `${sign}${int}` : `${sign}${int}.${frac}`;
  };
  // Marks that are digits or signs would make the shape ambiguous: those always take the regular expression.
  const plainMarks = decimalSep.length === 1 && !/[\d+-]/.test(decimalSep) && (thousands === undefined || (thousands.length === 1 && !/[\d+-]/.test(thousands)));
  const mark = decimalSep.charCodeAt(0);
  const groupMark = thousands === undefined ? -1 : thousands.charCodeAt(0);
  return (value) => {
    if (typeof value === 'number') return Number.isFinite(value) ? String(value) : new CastFailure(`${show(value)} is not ${expectation}`);
    if (typeof value === 'bigint') return value.toString();
    const text = asText(value).trim();
    return (plainMarks ? scanDecimal(text, mark, groupMark, sep) : undefined) ?? byShape(value, text);
  };
}

/**
 * The common shapes, [+-]digits[mark digits] or [+-]mark digits, with or
 * without thousands groups (1.234.567,89), read in one scan: the same result
 * as the regular expression, without its captures. Undefined for anything
 * else (misplaced groups, junk, no digits), which the regular expression
 * then decides. `group` is the thousands mark's char code (or -1), `groupSep`
 * the same mark as a global regular expression.
 */
function scanDecimal(text: string, mark: number, group: number, groupSep: RegExp | undefined): string | undefined {
  const length = text.length;
  let at = 0;
  const first = text.charCodeAt(0);
  const negative = first === 45; // -
  if (negative || first === 43) at = 1; // +
  const intStart = at;
  let groups = 0;
  let run = 0; // digits since the start or the last group mark
  for (; at < length; at++) {
    const code = text.charCodeAt(at);
    if (isDigit(code)) run++;
    else if (code === group) {
      // One to three digits first, then exactly three between marks.
      if (groups === 0 ? run < 1 || run > 3 : run !== 3) return undefined;
      groups++;
      run = 0;
    } else break;
  }
  if (groups > 0 && run !== 3) return undefined;
  const intEnd = at;
  let fracStart = length;
  if (at < length) {
    if (text.charCodeAt(at) !== mark) return undefined;
    fracStart = ++at;
    while (at < length && isDigit(text.charCodeAt(at))) at++;
    if (at < length) return undefined;
  }
  const hasFrac = fracStart < length;
  if (intStart === intEnd && !hasFrac) return undefined;
  const grouped = groups > 0 && groupSep !== undefined;
  const digits = grouped ? text.slice(intStart, intEnd).replace(groupSep, '') : text;
  const digitsStart = grouped ? 0 : intStart;
  const digitsEnd = grouped ? digits.length : intEnd;
  // Leading zeros go, but one digit stays: "007" is 7, "0,5" is 0.5.
  let from = digitsStart;
  while (from < digitsEnd - 1 && digits.charCodeAt(from) === 48) from++;
  const int = from === digitsEnd ? '0' : digits.slice(from, digitsEnd);
  const sign = negative ? '-' : '';
  return hasFrac ? `${sign}${int}.${text.slice(fracStart)}` : `${sign}${int}`;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

const DEFAULT_TRUE = ['true', 't', 'yes', 'y', 'ja', 'j', '1', 'x'];
const DEFAULT_FALSE = ['false', 'f', 'no', 'n', 'nein', '0'];

function booleanCast(trueValues: string[] | undefined, falseValues: string[] | undefined): Cast {
  const yes = new Set((trueValues ?? DEFAULT_TRUE).map((s) => s.toLowerCase()));
  const no = new Set((falseValues ?? DEFAULT_FALSE).map((s) => s.toLowerCase()));
  const expectation = `one of ${[...yes].join(', ')} (true) or ${[...no].join(', ')} (false)`;
  return (value) => {
    if (typeof value === 'boolean') return value;
    const text = asText(value).toLowerCase();
    if (yes.has(text)) return true;
    if (no.has(text)) return false;
    return new CastFailure(`${show(value)} is not a boolean: expected ${expectation}`);
  };
}

/** Wall-clock fields parsed from a legacy text. */
interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

/**
 * A parser for a Luxon format string. Formats made only of the common numeric
 * tokens (yyyy MM M dd d HH H mm m ss s SSS and literals) are parsed without
 * Luxon, several times faster; anything else uses Luxon's prebuilt parser
 * (`DateTime.buildFormatParser`). Gives the reason as a string when the text
 * does not parse. The WallClock returned is the parser's own, overwritten by
 * the next call: read it at once.
 */
type WallParser = (text: string) => WallClock | string;

const FAST_TOKENS: Record<string, { re: string; field: keyof WallClock; width: number }> = {
  yyyy: { re: '(\\d{4})', field: 'year', width: 4 },
  MM: { re: '(\\d{2})', field: 'month', width: 2 },
  M: { re: '(\\d{1,2})', field: 'month', width: 0 },
  dd: { re: '(\\d{2})', field: 'day', width: 2 },
  d: { re: '(\\d{1,2})', field: 'day', width: 0 },
  HH: { re: '(\\d{2})', field: 'hour', width: 2 },
  H: { re: '(\\d{1,2})', field: 'hour', width: 0 },
  mm: { re: '(\\d{2})', field: 'minute', width: 2 },
  m: { re: '(\\d{1,2})', field: 'minute', width: 0 },
  ss: { re: '(\\d{2})', field: 'second', width: 2 },
  s: { re: '(\\d{1,2})', field: 'second', width: 0 },
  SSS: { re: '(\\d{3})', field: 'ms', width: 3 },
};

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : DAYS_IN_MONTH[month - 1]!;
}

/** The reason a parsed wall clock is not a real one, or undefined. */
function wallClockProblem(w: WallClock): string | undefined {
  if (w.month < 1 || w.month > 12 || w.day < 1 || w.day > daysInMonth(w.year, w.month)) return 'is not a calendar date';
  if (w.hour > 23 || w.minute > 59 || w.second > 59) return 'is not a time of day';
  return undefined;
}

/** One piece of a fixed-width format: `width` digits into `field`, or the literal `text`. */
interface FixedStep {
  field: keyof WallClock | undefined;
  width: number;
  text: string;
}

function fastParser(format: string): WallParser | undefined {
  const parts = format.match(/'[^']*'|([A-Za-z])\1*|[^A-Za-z']+/g) ?? [];
  let re = '^';
  const fields: (keyof WallClock)[] = [];
  const steps: FixedStep[] = [];
  let fixed = true;
  for (const part of parts) {
    if (part.startsWith("'")) {
      re += escapeRegex(part.slice(1, -1));
      steps.push({ field: undefined, width: 0, text: part.slice(1, -1) });
    } else if (/^[A-Za-z]/.test(part)) {
      const token = FAST_TOKENS[part];
      if (!token) return undefined;
      re += token.re;
      fields.push(token.field);
      steps.push({ field: token.field, width: token.width, text: '' });
      if (token.width === 0) fixed = false;
    } else {
      re += escapeRegex(part);
      steps.push({ field: undefined, width: 0, text: part });
    }
  }
  // Fields the format does not set keep these values; the parsers only ever write the others.
  const w: WallClock = { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, ms: 0 };
  return fixed ? fixedWidthParser(steps, w) : regexParser(new RegExp(`${re}$`), fields, w);
}

/** Every token has a fixed width, so each field sits at a known offset: read the digits in place. */
function fixedWidthParser(steps: readonly FixedStep[], w: WallClock): WallParser {
  let length = 0;
  for (const step of steps) length += step.field === undefined ? step.text.length : step.width;
  return (text) => {
    if (text.length !== length) return 'does not have that shape';
    let at = 0;
    for (const step of steps) {
      if (step.field === undefined) {
        if (!text.startsWith(step.text, at)) return 'does not have that shape';
        at += step.text.length;
        continue;
      }
      let n = 0;
      for (const end = at + step.width; at < end; at++) {
        const digit = text.charCodeAt(at) - 48;
        if (digit < 0 || digit > 9) return 'does not have that shape';
        n = n * 10 + digit;
      }
      w[step.field] = n;
    }
    return wallClockProblem(w) ?? w;
  };
}

/** One-or-two-digit tokens (d.M.yyyy) need the backtracking of a regular expression. */
function regexParser(regex: RegExp, fields: readonly (keyof WallClock)[], w: WallClock): WallParser {
  return (text) => {
    const m = regex.exec(text);
    if (!m) return 'does not have that shape';
    for (let i = 0; i < fields.length; i++) w[fields[i]!] = Number(m[i + 1]);
    return wallClockProblem(w) ?? w;
  };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => pad(i, 2));

/** Month and day are valid (1-31) here; the year is 0-9999. */
function isoDate(year: number, month: number, day: number): string {
  return `${year >= 1000 ? String(year) : pad(year, 4)}-${TWO_DIGITS[month]!}-${TWO_DIGITS[day]!}`;
}

function dateCast(format: string | undefined): Cast {
  const fmt = format ?? 'yyyy-MM-dd';
  const fast = fastParser(fmt);
  const luxon = fast ? undefined : DateTime.buildFormatParser(fmt, { locale: 'en-US' });
  return (value) => {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? new CastFailure('invalid Date') : value.toISOString().slice(0, 10);
    const text = asText(value);
    if (fast) {
      const w = fast(text);
      return typeof w === 'string' ? new CastFailure(`${show(value)} is not a valid date in format ${fmt}`) : isoDate(w.year, w.month, w.day);
    }
    const dt = DateTime.fromFormatParser(text, luxon!, { zone: 'UTC' });
    return dt.isValid ? dt.toISODate() : new CastFailure(`${show(value)} is not a valid date in format ${fmt}`);
  };
}

/**
 * The UTC instant of a wall-clock time in a zone. Daylight saving: a time in
 * the spring gap does not exist (undefined); a time in the autumn overlap
 * exists twice and the earlier instant (the first occurrence) wins.
 * Offsets are cached per 15 minutes of local time (every zone changes offset
 * on a quarter hour), so a steady stream costs one Intl call per quarter hour.
 */
function zoneResolver(zoneName: string): (localMs: number) => number | undefined {
  if (zoneName === 'UTC' || zoneName === 'Etc/UTC') return (localMs) => localMs;
  const zone = IANAZone.create(zoneName);
  const cache = new Map<number, number>();
  const offsetAt = (utcMs: number): number => {
    const bucket = Math.floor(utcMs / 900_000);
    let o = cache.get(bucket);
    if (o === undefined) {
      if (cache.size > 50_000) cache.clear();
      o = zone.offset(bucket * 900_000);
      cache.set(bucket, o);
    }
    return o;
  };
  return (localMs) => {
    const before = offsetAt(localMs - 86_400_000);
    const after = offsetAt(localMs + 86_400_000);
    let best: number | undefined;
    for (const o of before === after ? [before] : [before, after]) {
      const utc = localMs - o * 60_000;
      if (offsetAt(utc) === o && (best === undefined || utc < best)) best = utc;
    }
    return best;
  };
}

function timestampCast(format: string | undefined, timeZone: string): Cast {
  if (!IANAZone.isValidZone(timeZone)) throw new Error(`"${timeZone}" is not an IANA time zone (e.g. Europe/Berlin, UTC)`);
  const fast = format === undefined ? undefined : fastParser(format);
  const luxon = format === undefined || fast ? undefined : DateTime.buildFormatParser(format, { locale: 'en-US' });
  const resolve = zoneResolver(timeZone);
  const expectation = format === undefined ? 'an ISO 8601 timestamp' : `a valid timestamp in format ${format}`;
  return (value) => {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? new CastFailure('invalid Date') : value.toISOString();
    const text = asText(value);
    if (fast) {
      const w = fast(text);
      if (typeof w === 'string') return new CastFailure(`${show(value)} is not ${expectation}`);
      const utc = resolve(Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second, w.ms));
      if (utc === undefined) return new CastFailure(`${show(value)} does not exist in time zone ${timeZone} (skipped by the change to daylight saving time)`);
      return new Date(utc).toISOString();
    }
    const dt = luxon ? DateTime.fromFormatParser(text, luxon, { zone: timeZone }) : DateTime.fromISO(text, { zone: timeZone });
    return dt.isValid ? new Date(dt.toMillis()).toISOString() : new CastFailure(`${show(value)} is not ${expectation}`);
  };
}
