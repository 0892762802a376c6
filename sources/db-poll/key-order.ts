import type { Column } from './dialects/dialect.js';

/**
 * Compares key and cursor values in the order the database sorts them.
 *
 * The dialects make the database sort text by its bytes (`COLLATE "C"` in
 * Postgres, `BINARY col` in MySQL), so text is compared here by UTF-8 bytes,
 * not by JS string order (which differs for characters beyond U+FFFF).
 * Numbers compare numerically, exact decimal strings included. Times arrive as
 * the database's fixed-format UTC text, whose byte order is time order.
 */
export function compareValues(a: unknown, b: unknown, column: Column): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (column.kind === 'number') return compareNumbers(a, b);
  return compareUtf8(String(a), String(b));
}

/**
 * UTF-8 byte order without encoding: it equals code point order, which equals
 * UTF-16 order except that a surrogate (a code point above U+FFFF) sorts
 * after every BMP character.
 */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const surrogateX = x >= 0xd800 && x <= 0xdfff;
    const surrogateY = y >= 0xd800 && y <= 0xdfff;
    if (surrogateX !== surrogateY) return surrogateX ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** Lexicographic comparison of two tuples column by column. */
export function compareTuples(a: readonly unknown[], b: readonly unknown[], columns: readonly Column[]): number {
  for (let i = 0; i < columns.length; i++) {
    const c = compareValues(a[i], b[i], columns[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

function compareNumbers(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  const sa = String(a);
  const sb = String(b);
  if (DECIMAL.test(sa) && DECIMAL.test(sb)) return compareDecimals(sa, sb);
  const na = Number(sa);
  const nb = Number(sb);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Exact comparison of two decimal strings of any length (bigint and numeric values). */
export function compareDecimals(a: string, b: string): number {
  const negA = a.startsWith('-');
  const negB = b.startsWith('-');
  const absA = negA ? a.slice(1) : a;
  const absB = negB ? b.slice(1) : b;
  if (negA !== negB && !(isZero(absA) && isZero(absB))) return negA ? -1 : 1;
  const c = compareAbsolute(absA, absB);
  return negA && negB ? -c : c;
}

function isZero(s: string): boolean {
  return /^[0.]+$/.test(s);
}

function compareAbsolute(a: string, b: string): number {
  const [ai = '', af = ''] = a.split('.');
  const [bi = '', bf = ''] = b.split('.');
  const intA = ai.replace(/^0+/, '');
  const intB = bi.replace(/^0+/, '');
  if (intA.length !== intB.length) return intA.length < intB.length ? -1 : 1;
  if (intA !== intB) return intA < intB ? -1 : 1;
  const fracA = af.replace(/0+$/, '');
  const fracB = bf.replace(/0+$/, '');
  return fracA === fracB ? 0 : fracA < fracB ? -1 : 1;
}
