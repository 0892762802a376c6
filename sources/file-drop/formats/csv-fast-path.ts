import type { Readable } from 'node:stream';
import type { CsvFormat } from '../config.js';
import { drain } from './drain.js';
import { rawExcerpt, type ParsedRow } from './row.js';

/**
 * Where csv-parse takes over from the fast path: the text not parsed yet,
 * starting at the beginning of a line, then the rest of the stream.
 */
export interface Handoff {
  text: AsyncIterable<string | Buffer>;
  /** Unset when no line was consumed: csv-parse then reads the file from its very start, as configured. */
  resume?: Resume;
}

/** What csv-parse needs to continue a file part-way through as if it had read it from the start. */
export interface Resume {
  /** The physical line `text` starts on (> 1). */
  firstLine: number;
  /** The column names read from the header line; unset while only empty lines came before. */
  columns?: string[];
  /** The record delimiter csv-parse would have discovered on the first line. */
  recordDelimiter: '\n' | '\r\n';
  /** The line of the last row handed out (0: none), from which csv-parse's rows are located as they would have been. */
  lastRowLine: number;
}

/**
 * Whether the fast path can stand in for csv-parse with these options at
 * all. Records must be objects (`header` or `columns`): without them csv-parse
 * takes the expected field count from the first record, which it cannot be
 * told when it takes over. A delimiter holding a line break or the quote
 * would make splitting differ from parsing.
 */
export function quoteFreeApplies(format: CsvFormat): boolean {
  const header = format.header ?? format.columns === undefined;
  const delimiter = format.delimiter ?? ',';
  const quote = format.quote ?? '"';
  return (header || format.columns !== undefined) && !/[\r\n]/.test(delimiter) && !delimiter.includes(quote);
}

/**
 * CSV records from text without quote characters, by splitting. RFC 4180
 * fields without quotes cannot hold the delimiter or a line break, so there
 * splitting on line breaks and on the delimiter is the parse. It gives what
 * csv-parse gives with the same options (columns, header, from_line, bom,
 * skip_empty_lines, relax_column_count, the same invalid-row reasons and
 * line numbers), several times faster.
 *
 * The escape character needs no check: csv-parse only honours it inside
 * quoted fields, and without quotes there are none.
 *
 * Returns a `Handoff` as soon as the text holds anything this does not
 * handle like csv-parse would: a quote; a CR or LF that is not the line
 * break csv-parse settled on for the file (it keeps those in the field yet
 * counts them as lines); CR-only line breaks; a line that might exceed
 * csv-parse's record cap; a lone surrogate (csv-parse's UTF-8 round trip
 * turns it into U+FFFD); Buffer chunks (decoded text is expected, bytes
 * would need a decoder here).
 */
export async function* quoteFreeRows(
  format: CsvFormat,
  text: Readable,
  maxRecordChars: number,
): AsyncGenerator<ParsedRow[], Handoff | undefined, undefined> {
  const header = format.header ?? format.columns === undefined;
  const delimiter = format.delimiter ?? ',';
  const quote = format.quote ?? '"';
  const stripBom = format.bom ?? true;
  const skipEmpty = format.skipEmptyLines ?? true;
  const relax = format.relaxColumnCount ?? false;
  // csv-parse's from_line: 2 drops line 1 whatever it holds.
  const dropFirstLine = format.columns !== undefined && header;
  // csv-parse caps UTF-8 bytes; a UTF-16 code unit is at most 3 of them, so shorter lines are always under its cap.
  const maxLine = Math.floor(maxRecordChars / 3);

  let names: string[] | undefined = format.columns;
  let line = 0;
  let lastRowLine = 0;
  let crlf: boolean | undefined;
  let carry = '';

  /** One complete line, without its line break. */
  const record = (raw: string, rows: ParsedRow[]): void => {
    line++;
    let s = raw;
    if (line === 1) {
      if (stripBom && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
      if (dropFirstLine) return;
    }
    if (s === '' && skipEmpty) return;
    const fields = s.split(delimiter);
    if (names === undefined) {
      names = fields;
      return;
    }
    lastRowLine = line;
    if (fields.length !== names.length && !relax) {
      rows.push({ line, data: { _raw: rawExcerpt(s) }, invalid: `Invalid Record Length: columns length is ${names.length}, got ${fields.length} on line ${line}` });
      return;
    }
    const data: Record<string, unknown> = {};
    for (let i = 0, n = Math.min(fields.length, names.length); i < n; i++) data[names[i]!] = fields[i];
    rows.push({ line, data });
  };

  /**
   * Parses the complete lines of carry + chunk and keeps the rest as carry.
   * Returns -1, or the offset in carry + chunk of the line csv-parse must start from.
   */
  const take = (chunk: string | Buffer, rows: ParsedRow[]): number => {
    if (typeof chunk !== 'string' || chunk.includes(quote) || !isWellFormed(chunk)) return 0;
    const text = carry + chunk;
    if (crlf === undefined) {
      // csv-parse takes the first line break it meets as the record delimiter for the whole file.
      // The carry holds no line break then, save a CR at its end that waited for the next character.
      const from = Math.max(0, carry.length - 1);
      const lf = text.indexOf('\n', from);
      const cr = text.indexOf('\r', from);
      const first = cr !== -1 && (lf === -1 || cr < lf) ? cr : lf;
      if (first === -1 || (first === cr && cr === text.length - 1)) {
        carry = text;
        return carry.length > maxLine ? 0 : -1;
      }
      if (first === cr && text.charCodeAt(cr + 1) !== 10) return 0;
      crlf = first === cr;
    }
    const last = chunk.lastIndexOf('\n') + carry.length;
    let start = 0;
    if (last >= carry.length) {
      let cr = text.indexOf('\r');
      while (start <= last) {
        const nl = text.indexOf('\n', start);
        if (cr !== -1 && cr < start) cr = text.indexOf('\r', start);
        let end = nl;
        if (crlf) {
          if (nl === start || cr !== nl - 1) return start;
          end = nl - 1;
        } else if (cr !== -1 && cr < nl) return start;
        if (end - start > maxLine) return start;
        record(text.slice(start, end), rows);
        start = nl + 1;
      }
    }
    carry = text.slice(start);
    return carry.length > maxLine ? start : -1;
  };

  const batches = drain<string | Buffer>(text);
  let handedOff = false;
  try {
    for (let batch = await batches.next(); !batch.done; batch = await batches.next()) {
      const chunks = batch.value;
      const rows: ParsedRow[] = [];
      for (let c = 0; c < chunks.length; c++) {
        const chunk = chunks[c]!;
        const before = carry;
        const from = take(chunk, rows);
        if (from === -1) continue;
        if (rows.length > 0) yield rows;
        // Whole pieces keep the stream's chunk ends: csv-parse drops the rest of a chunk after an oversized record.
        const pieces = from === 0 ? [before, chunk] : [(chunk as string).slice(from - before.length)];
        handedOff = true;
        return { text: rest(pieces, chunks.slice(c + 1), batches), resume: resumeAt() };
      }
      if (rows.length > 0) yield rows;
    }
    if (carry === '') return undefined;
    // The last line, without a line break after it.
    if (carry.includes('\r')) {
      handedOff = true;
      return { text: rest([carry], [], batches), resume: resumeAt() };
    }
    const rows: ParsedRow[] = [];
    record(carry, rows);
    if (rows.length > 0) yield rows;
    return undefined;
  } finally {
    if (!handedOff) await batches.return(undefined);
  }

  function resumeAt(): Resume | undefined {
    if (line === 0) return undefined;
    return { firstLine: line + 1, ...(names !== undefined && { columns: names }), recordDelimiter: crlf === true ? '\r\n' : '\n', lastRowLine };
  }
}

async function* rest(pieces: (string | Buffer)[], chunks: (string | Buffer)[], batches: AsyncGenerator<(string | Buffer)[]>): AsyncGenerator<string | Buffer> {
  for (const piece of pieces) if (piece.length > 0) yield piece;
  yield* chunks;
  for await (const batch of batches) yield* batch;
}

// Node 20 has String#isWellFormed; the ES2023 lib typings do not know it yet.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();
