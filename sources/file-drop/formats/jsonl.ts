import type { Readable } from 'node:stream';
import { numberedLines } from './lines.js';
import { rawExcerpt, type ParsedRow } from './row.js';

/** JSON lines: each non-empty line one JSON object; a line that is not one is an invalid row, the others keep flowing. */
export async function* parseJsonl(text: Readable): AsyncIterable<ParsedRow[]> {
  for await (const lines of numberedLines(text)) {
    const rows: ParsedRow[] = [];
    for (const { line, text: t } of lines) {
      if (t.trim() === '') continue;
      rows.push(jsonRow(line, t));
    }
    if (rows.length > 0) yield rows;
  }
}

function jsonRow(line: number, text: string): ParsedRow {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { line, data: { _raw: rawExcerpt(text) }, invalid: `not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { line, data: { _raw: rawExcerpt(text) }, invalid: 'not a JSON object' };
  }
  return { line, data: value as Record<string, unknown> };
}
