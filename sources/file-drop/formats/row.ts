import type { Readable } from 'node:stream';

/** One record as a format parser found it, before it becomes a SourceRecord. */
export interface ParsedRow {
  /** Physical line in the file where the record starts (1-based), for people to find it. */
  line: number;
  data: Record<string, unknown>;
  /** Set when the line could be located but not parsed; `data` then holds `{ _raw }`. */
  invalid?: string;
}

/**
 * Turns a stream of decoded text into rows, in file order, handed over in
 * arrays of whatever was parsed from the buffered text (not one promise per
 * row). Throws `UnreadableFileError` when the file cannot be parsed at all.
 */
export type RowParser = (text: Readable) => AsyncIterable<ParsedRow[]>;

/** The file as a whole cannot be read (I/O error, layout or header that does not fit): it goes to the errors folder. */
export class UnreadableFileError extends Error {
  override readonly name = 'UnreadableFileError';
}

/** Raw text kept on an invalid record, capped so one broken record cannot hold a whole file in memory. */
export function rawExcerpt(raw: string | undefined, max = 4_096): string {
  if (raw === undefined) return '';
  return raw.length > max ? `${raw.slice(0, max)}…` : raw;
}
