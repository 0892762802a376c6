import type { FileFormat } from '../config.js';
import { csvParser } from './csv.js';
import { fixedWidthParser } from './fixed-width.js';
import { parseJsonl } from './jsonl.js';
import type { RowParser } from './row.js';

export { UnreadableFileError, type ParsedRow, type RowParser } from './row.js';

/** The row parser for a configured format. */
export function rowParser(format: FileFormat): RowParser {
  switch (format.type) {
    case 'csv':
      return csvParser(format);
    case 'jsonl':
      return parseJsonl;
    case 'fixed-width':
      return fixedWidthParser(format);
  }
}
