import type { Readable } from 'node:stream';
import type { FixedWidthFormat } from '../config.js';
import { numberedLines } from './lines.js';
import { UnreadableFileError, rawExcerpt, type ParsedRow } from './row.js';

/**
 * Fixed-width records, one per line. The first data line must fit the layout
 * (else the layout is wrong for this file and the whole file is unreadable);
 * a later line that is too short is an invalid row.
 */
export function fixedWidthParser(format: FixedWidthFormat): (text: Readable) => AsyncIterable<ParsedRow[]> {
  const needed = Math.max(...format.columns.map((c) => c.start - 1 + c.length));
  const trim = format.trim ?? true;
  const skipEmpty = format.skipEmptyLines ?? true;
  return async function* parseFixedWidth(text) {
    let first = true;
    for await (const lines of numberedLines(text)) {
      const rows: ParsedRow[] = [];
      for (const { line, text: t } of lines) {
        if (skipEmpty && t.trim() === '') continue;
        if (t.length < needed) {
          const reason = `line is ${t.length} characters long, the layout needs ${needed}`;
          if (first) throw new UnreadableFileError(`the fixed-width layout does not fit line ${line}: ${reason}`);
          rows.push({ line, data: { _raw: rawExcerpt(t) }, invalid: reason });
          continue;
        }
        first = false;
        const data: Record<string, string> = {};
        for (const c of format.columns) {
          const value = t.slice(c.start - 1, c.start - 1 + c.length);
          data[c.name] = trim ? value.trim() : value;
        }
        rows.push({ line, data });
      }
      if (rows.length > 0) yield rows;
    }
  };
}
