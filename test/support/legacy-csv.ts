import { mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import iconv from 'iconv-lite';
import { writeFile } from './agent-process.js';

export const KUNDEN_HEADER = 'KUNDE_NR;VORNAME;NACHNAME;EMAIL;SALDO;KUNDE_SEIT;STATUS';

/**
 * A legacy customer export as the reference mapping expects it:
 * semicolon-delimited, Windows-1252, CRLF, dd.MM.yyyy dates. Row i has key
 * `K{i % keys}` and balance `i,00`, so the order of one key's events at the
 * sink shows whether per-key order held.
 */
export function kundenRows(rows: number, keys: number): string[] {
  const out: string[] = [];
  for (let i = 1; i <= rows; i++) {
    const day = String((i % 28) + 1).padStart(2, '0');
    out.push(`K${i % keys};Jürgen;Straße ${i};k${i}@example.de;${i},00;${day}.01.2024;${i % 2 ? 'A' : 'I'}`);
  }
  return out;
}

/** Writes the file under a temporary name and renames it into place, as a careful legacy job does. */
export function dropCsv(path: string, lines: readonly string[], header = KUNDEN_HEADER): void {
  // Outside the watched folder: the source must only ever see the finished file.
  const tmp = join(tmpdir(), `${process.pid}-${Date.now()}-${basename(path)}`);
  writeFile(tmp, iconv.encode([header, ...lines, ''].join('\r\n'), 'win1252'));
  mkdirSync(dirname(path), { recursive: true });
  renameSync(tmp, path);
}

/** The `source:` block (indented for a pipeline) of a drop folder `./inbox` of such exports, archiving what it read. */
export function kundenDropSource(opts: { minAgeMs: number; errors?: boolean }): string {
  return `      type: file-drop
      path: ./inbox
      format: { type: csv, delimiter: ";", header: true, encoding: windows-1252 }
      complete: { minAgeMs: ${opts.minAgeMs} }
      archive: ./archive
${opts.errors ? '      errors: ./errors\n' : ''}`;
}
