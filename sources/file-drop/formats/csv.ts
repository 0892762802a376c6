import { pipeline, Readable } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import type { CsvFormat } from '../config.js';
import { quoteFreeApplies, quoteFreeRows, type Resume } from './csv-fast-path.js';
import { drain } from './drain.js';
import { UnreadableFileError, rawExcerpt, type ParsedRow, type RowParser } from './row.js';

/** Caps one record (an unclosed quote would otherwise swallow the rest of the file into memory). */
const MAX_RECORD_CHARS = 8 << 20;

/** What leaves the parser: a record tagged with the line it ends on, or a row csv-parse rejected, in file order. */
type Tagged = { record: Record<string, unknown>; endLine: number } | { rejected: ParsedRow };

/**
 * CSV, streaming. Rows csv-parse rejects (wrong column count, bad quoting)
 * come out as invalid rows at their line, in line order with the good ones;
 * a header line that cannot be parsed makes the whole file unreadable.
 *
 * Text without quote characters (most legacy exports) is split rather than
 * parsed, several times faster, with the same rows (see csv-fast-path.ts); at
 * the first quote csv-parse takes over for the rest of the file.
 * `fastPath: false` parses everything with csv-parse: the reference the
 * fast path is tested against.
 */
export function csvParser(format: CsvFormat, options: { fastPath?: boolean } = {}): RowParser {
  if (options.fastPath === false || !quoteFreeApplies(format)) return (text) => parseWithCsvParse(format, text);
  return async function* parseCsv(text) {
    const handoff = yield* quoteFreeRows(format, text, MAX_RECORD_CHARS);
    if (handoff !== undefined) yield* parseWithCsvParse(format, Readable.from(handoff.text), handoff.resume);
  };
}

/** csv-parse over the whole text, or over the rest of a file from `resume.firstLine` on. */
async function* parseWithCsvParse(format: CsvFormat, text: Readable, resume?: Resume): AsyncIterable<ParsedRow[]> {
  const header = format.header ?? format.columns === undefined;
  const delimiter = format.delimiter ?? ',';
  let headerError: string | undefined;
  const parser = parse({
    delimiter,
    quote: format.quote ?? '"',
    escape: format.escape ?? '"',
    columns: resume?.columns ?? format.columns ?? header,
    // Taking over part-way: the lines before (line 1 included) are read, the text no longer starts the file.
    from_line: resume === undefined && format.columns !== undefined && header ? 2 : 1,
    bom: resume === undefined && (format.bom ?? true),
    record_delimiter: resume?.recordDelimiter,
    skip_empty_lines: format.skipEmptyLines ?? true,
    relax_column_count: format.relaxColumnCount ?? false,
    max_record_size: MAX_RECORD_CHARS,
    skip_records_with_error: true,
    on_skip: (err: CsvError | undefined) => {
      const context = err as { lines?: number; header?: boolean; record?: unknown } | undefined;
      const reason = err?.message ?? 'unparsable CSV record';
      // csv-parse flags `header` while the column names are not known yet: no row can be read without them.
      if (context?.header === true) headerError ??= reason;
      else {
        const fields = Array.isArray(context?.record) ? context.record.join(delimiter) : undefined;
        // Pushed into the stream right here, so it sits in file order between the good records (and is not held in memory).
        push({ rejected: { line: context?.lines ?? 0, data: fields === undefined ? {} : { _raw: rawExcerpt(fields) }, invalid: reason } });
      }
      return undefined;
    },
  });
  // csv-parse's `info` option copies a dozen fields per record and halves throughput;
  // the parser's live line counter, read as each record is pushed, is all we need.
  const push = parser.push.bind(parser);
  parser.push = (record: unknown): boolean => push(record === null ? null : ({ record, endLine: parser.info.lines } as Tagged));
  // Its line counter is live state, not a copy: started at the line it takes over on, every line number and message is the file's.
  if (resume !== undefined) (parser.info as { lines: number }).lines = resume.firstLine;
  pipeline(text, parser, () => undefined);
  let lastEnd = resume?.lastRowLine ?? 0;
  try {
    for await (const tagged of drain<Tagged>(parser)) {
      if (headerError !== undefined) break;
      const rows: ParsedRow[] = [];
      for (const t of tagged) {
        if ('rejected' in t) {
          rows.push(t.rejected);
          lastEnd = t.rejected.line;
          continue;
        }
        // A record right after the previous one is on one line; else quoted line breaks may make it start earlier.
        const line = t.endLine === lastEnd + 1 ? t.endLine : t.endLine - lineBreaksIn(t.record);
        lastEnd = t.endLine;
        rows.push({ line, data: t.record });
      }
      yield rows;
    }
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    throw new UnreadableFileError(`CSV cannot be parsed: ${err.message}`);
  }
  if (headerError !== undefined) throw new UnreadableFileError(`the header line cannot be parsed: ${headerError}`);
}

function lineBreaksIn(record: Record<string, unknown>): number {
  let breaks = 0;
  for (const value of Object.values(record)) {
    if (typeof value !== 'string') continue;
    for (let i = value.indexOf('\n'); i !== -1; i = value.indexOf('\n', i + 1)) breaks++;
  }
  return breaks;
}
