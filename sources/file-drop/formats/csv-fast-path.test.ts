import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import iconv from 'iconv-lite';
import { afterAll, describe, expect, it } from 'vitest';
import type { CsvFormat } from '../config.js';
import { openDecoded } from '../decode.js';
import { csvParser } from './csv.js';
import { quoteFreeRows } from './csv-fast-path.js';
import type { ParsedRow } from './row.js';

// Differential tests: the fast path must give exactly what csv-parse alone gives
// (`csvParser(format, { fastPath: false })`), rows, lines, reasons and errors alike.

type Outcome = { rows: ParsedRow[] } | { error: string };

/** Decoded text as the file reader hands it over: string chunks. */
const stream = (parts: string[]): Readable => Readable.from(parts);

async function outcome(rows: AsyncIterable<ParsedRow[]>): Promise<Outcome> {
  const out: ParsedRow[] = [];
  try {
    for await (const part of rows) {
      expect(part.length).toBeGreaterThan(0);
      out.push(...part);
    }
    return { rows: out };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** Both paths on the same chunks; returns the (equal) outcome. */
async function same(format: CsvFormat, parts: string[]): Promise<Outcome> {
  const fast = await outcome(csvParser(format)(stream(parts)));
  const reference = await outcome(csvParser(format, { fastPath: false })(stream(parts)));
  expect(fast, JSON.stringify(parts).slice(0, 300)).toEqual(reference);
  return fast;
}

/** The fast path alone: whether it handed the text over to csv-parse. */
async function handedOver(format: CsvFormat, parts: string[]): Promise<boolean> {
  const it = quoteFreeRows(format, stream(parts), 8 << 20);
  for (let r = await it.next(); ; r = await it.next()) if (r.done === true) return r.value !== undefined;
}

const splitsAt = (text: string, ...at: number[]): string[] => [0, ...at].map((from, i) => text.slice(from, at[i] ?? text.length));
const singles = (text: string): string[] => [...text];

const semi: CsvFormat = { type: 'csv', delimiter: ';' };
const legacy = ['KUNDE_NR;NAME;STATUS', 'K1;Jürgen;A', 'K2;Straßer;I', '', 'K3;€uro;A', 'K4;x', 'K5;a;b;c', 'K6;;'];

describe('quote-free CSV, split instead of parsed', () => {
  const cases: [string, CsvFormat, string][] = [
    ['CRLF', semi, `${legacy.join('\r\n')}\r\n`],
    ['LF', semi, `${legacy.join('\n')}\n`],
    ['a last line without a line break', semi, legacy.join('\r\n')],
    ['empty lines kept (skipEmptyLines: false)', { ...semi, skipEmptyLines: false }, `${legacy.join('\n')}\n\n\n`],
    ['an empty first line (skipped)', semi, `\r\n\r\n${legacy.join('\r\n')}`],
    ['an empty first line as the header (skipEmptyLines: false)', { ...semi, skipEmptyLines: false }, `\n${legacy.join('\n')}`],
    ['a BOM', semi, `\ufeff${legacy.join('\r\n')}\r\n`],
    ['a BOM kept (bom: false)', { ...semi, bom: false }, `\ufeff${legacy.join('\r\n')}\r\n`],
    ['a BOM before a header that columns replace', { ...semi, columns: ['a', 'b', 'c'], header: true }, `\ufeff${legacy.join('\n')}`],
    ['columns without a header line', { ...semi, columns: ['a', 'b', 'c'] }, `${legacy.join('\n')}\n`],
    ['columns replacing the header line', { ...semi, columns: ['a', 'b', 'c'], header: true }, `${legacy.join('\n')}\n`],
    ['columns replacing an empty first line', { ...semi, columns: ['a', 'b', 'c'], header: true }, `\n${legacy.join('\n')}\n`],
    ['relaxColumnCount', { ...semi, relaxColumnCount: true }, `${legacy.join('\r\n')}\r\n`],
    ['duplicate header names', semi, 'a;b;a\n1;2;3\n'],
    ['an empty header name', semi, 'a;;c\n1;2;3\n'],
    ['a multi-character delimiter', { type: 'csv', delimiter: '||' }, 'a||b\n1||2\n3|||4\n5||||6\n'],
    ['backslashes with a backslash escape', { ...semi, escape: '\\' }, 'a;b\nC:\\tmp;x\\\n'],
    ['whitespace-only lines are not empty', semi, 'a;b\n \n1;2\n'],
    ['only a header', semi, 'a;b\r\n'],
    ['only empty lines', semi, '\n\n\n'],
    ['an empty file', semi, ''],
    ['one line replaced by columns', { ...semi, columns: ['a'], header: true }, 'x;y'],
  ];

  it.each(cases)('%s: same rows as csv-parse, without handing over', async (_name, format, text) => {
    await same(format, [text]);
    expect(await handedOver(format, [text])).toBe(false);
  });

  it('reproduces csv-parse invalid rows exactly', async () => {
    const result = await same(semi, [`${legacy.join('\r\n')}\r\n`]);
    expect(result).toEqual({
      rows: [
        { line: 2, data: { KUNDE_NR: 'K1', NAME: 'Jürgen', STATUS: 'A' } },
        { line: 3, data: { KUNDE_NR: 'K2', NAME: 'Straßer', STATUS: 'I' } },
        { line: 5, data: { KUNDE_NR: 'K3', NAME: '€uro', STATUS: 'A' } },
        { line: 6, data: { _raw: 'K4;x' }, invalid: 'Invalid Record Length: columns length is 3, got 2 on line 6' },
        { line: 7, data: { _raw: 'K5;a;b;c' }, invalid: 'Invalid Record Length: columns length is 3, got 4 on line 7' },
        { line: 8, data: { KUNDE_NR: 'K6', NAME: '', STATUS: '' } },
      ],
    });
  });

  it('gives the same rows wherever the chunks end', async () => {
    for (const [, format, text] of cases) {
      for (let at = 0; at <= text.length; at++) await same(format, splitsAt(text, at));
      await same(format, singles(text));
    }
  });
});

describe('handing over to csv-parse', () => {
  const many = Array.from({ length: 3000 }, (_, i) => `K${i};N${i};${i % 2 ? 'A' : 'I'}`);

  it('at a quote after many lines, a quoted line break right after the switch, lines and columns carried over', async () => {
    // A quoted LF, as spreadsheets write line breaks in a cell (csv-parse counts a quoted CRLF as two lines).
    const text = `a;b;c\r\n${many.join('\r\n')}\r\n"x\ny";2;3\r\nshort;1\r\nlast;"q";z\r\n`;
    const parts = Array.from({ length: Math.ceil(text.length / 4096) }, (_, i) => text.slice(i * 4096, (i + 1) * 4096));
    const result = await same(semi, parts);
    expect(await handedOver(semi, parts)).toBe(true);
    if (!('rows' in result)) throw new Error('expected rows');
    expect(result.rows.slice(-3)).toEqual([
      { line: 3002, data: { a: 'x\ny', b: '2', c: '3' } },
      { line: 3004, data: { _raw: 'short;1' }, invalid: 'Invalid Record Length: columns length is 3, got 2 on line 3004' },
      { line: 3005, data: { a: 'last', b: 'q', c: 'z' } },
    ]);
  });

  it('at every chunk boundary around the switch, and in 1-character chunks', async () => {
    const texts: [CsvFormat, string][] = [
      [semi, 'a;b\r\n1;2\r\n\r\n3;"x\r\ny"\r\n4\r\n5;6'],
      [semi, 'a;b\n1;2\n3;"x\ny"\n4;5\n'],
      [{ ...semi, columns: ['p', 'q'], header: true }, 'a;b\n1;2\n3;"x\ny"\n4;5\n'],
      [{ ...semi, skipEmptyLines: false }, '\n\na;b\n"1";2\n'],
      [{ ...semi, relaxColumnCount: true }, 'a;b\n1\n2;3;4\n"5";6;7\n8\n'],
    ];
    for (const [format, text] of texts) {
      for (let at = 0; at <= text.length; at++) await same(format, splitsAt(text, at));
      for (let at = 1; at < text.length; at++) await same(format, splitsAt(text, at - 1, at));
      await same(format, singles(text));
    }
  });

  it('a quote in the very first chunk, also in the header', async () => {
    await same(semi, ['"a";b\n1;2\n']);
    await same(semi, ['a;b\n1;"2"\n3;4\n']);
    await same(semi, ['\ufeff"a";b\n1;2\n']);
    expect(await same(semi, ['"a;b\n1;2\n'])).toEqual({ error: expect.stringContaining('UnreadableFileError') });
  });

  it('a quote after only empty lines: csv-parse still reads the header', async () => {
    await same(semi, ['\n\n', '"a";b\n1;2\n']);
    await same(semi, ['\n\n', '"a;b\n1;2\n']);
  });

  it('line breaks csv-parse does not split on the same way: lone CR, lone LF in a CRLF file, CRLF in an LF file', async () => {
    const texts = ['a;b\r1;2\r3;4', 'a;b\r\n1;2\n3;4\r\n5;6\r\n', 'a;b\n1;2\r\n3;4\n', 'a;b\n1;2\r3;4\n', 'a;b\r\n1;2\r', 'a;b\r', 'a;b\n1;2\r'];
    for (const text of texts) {
      for (let at = 0; at <= text.length; at++) await same(semi, splitsAt(text, at));
      await same(semi, singles(text));
    }
  });

  it('a lone surrogate (csv-parse turns it into U+FFFD)', async () => {
    await same(semi, ['a;b\n1;\ud800x\n']);
    expect(await handedOver(semi, ['a;b\n1;\ud800x\n'])).toBe(true);
    await same(semi, ['a;b\n1;😀\n']);
    expect(await handedOver(semi, ['a;b\n1;😀\n'])).toBe(false);
  });

  it('a line longer than the record cap', async () => {
    const huge = 'x'.repeat(9 << 20);
    const text = `a;b\n1;2\n${huge};y\n3;4\n`;
    const parts = Array.from({ length: Math.ceil(text.length / (256 << 10)) }, (_, i) => text.slice(i * (256 << 10), (i + 1) * (256 << 10)));
    const result = await same(semi, parts);
    expect(await handedOver(semi, parts)).toBe(true);
    if (!('rows' in result)) throw new Error('expected rows');
    expect(result.rows[0]).toEqual({ line: 2, data: { a: '1', b: '2' } });
    expect(result.rows[1]).toMatchObject({ line: 3, invalid: expect.stringContaining('Max Record Size') });
  });

  it('a line under the cap in characters that csv-parse may still count over it in bytes is left to csv-parse', async () => {
    const long = 'ü'.repeat(3 << 20);
    const text = `a;b\n1;2\n${long};y\n3;4\n`;
    const parts = Array.from({ length: Math.ceil(text.length / (256 << 10)) }, (_, i) => text.slice(i * (256 << 10), (i + 1) * (256 << 10)));
    await same(semi, parts);
    expect(await handedOver(semi, parts)).toBe(true);
  });
});

describe('stopping early', () => {
  it('destroys the text stream, in the fast path and after handing over', async () => {
    for (const start of ['a;b\n1;2\n', 'a;b\n"q";1\n']) {
      // Endless, so only the parser stopping can destroy it.
      const source = Readable.from(
        (async function* () {
          yield start;
          for (let i = 0; ; i++) yield `${i};x\n`;
        })(),
      );
      for await (const rows of csvParser(semi)(source)) {
        expect(rows.length).toBeGreaterThan(0);
        break;
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(source.destroyed).toBe(true);
    }
  });
});

describe('random texts and chunkings', () => {
  it('the fast path agrees with csv-parse', async () => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff) / 0x80000000);
    const alphabet = ['a', 'b', ';', ';', '\n', '\n', '\r\n', '\r\n', '\r', '"', ' ', '\ufeff', '|'];
    const formats: CsvFormat[] = [
      semi,
      { ...semi, skipEmptyLines: false },
      { ...semi, relaxColumnCount: true },
      { ...semi, columns: ['x', 'y'], header: true },
      { ...semi, columns: ['x', 'y'] },
      { ...semi, bom: false, delimiter: ';|' },
    ];
    for (let n = 0; n < 3000; n++) {
      // Mostly quote-free texts, so that the fast path runs and now and then hands over.
      const length = Math.floor(random() * 30);
      let text = '';
      for (let i = 0; i < length; i++) {
        const c = alphabet[Math.floor(random() * alphabet.length)]!;
        text += c === '"' && random() < 0.7 ? 'a' : c;
      }
      const cuts = [...new Set(Array.from({ length: Math.floor(random() * 4) }, () => Math.floor(random() * text.length)))].sort((p, q) => p - q);
      await same(formats[n % formats.length]!, splitsAt(text, ...cuts));
    }
  });
});

describe('a Windows-1252 file read from disk', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('gives the same rows through both paths', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-csv-fast-'));
    dirs.push(dir);
    const lines = ['KUNDE_NR;NAME;SALDO'];
    for (let i = 1; i <= 20_000; i++) lines.push(i % 997 === 0 ? `K${i};Müller` : `K${i};Straßer ${i};${i},50 €`);
    lines.push('K0;"Quoted;Name";1', 'K-1;after;2');
    const file = join(dir, 'kunden.csv');
    await writeFile(file, iconv.encode(`${lines.join('\r\n')}\r\n`, 'windows-1252'));
    const format: CsvFormat = { type: 'csv', delimiter: ';', encoding: 'windows-1252' };
    const fast = await outcome(csvParser(format)(openDecoded(file, 'windows-1252', true)));
    const reference = await outcome(csvParser(format, { fastPath: false })(openDecoded(file, 'windows-1252', true)));
    expect(fast).toEqual(reference);
    if (!('rows' in fast)) throw new Error('expected rows');
    expect(fast.rows).toHaveLength(20_002);
    expect(fast.rows[996]).toEqual({ line: 998, data: { _raw: 'K997;Müller' }, invalid: 'Invalid Record Length: columns length is 3, got 2 on line 998' });
    expect(fast.rows.at(-2)).toEqual({ line: 20_002, data: { KUNDE_NR: 'K0', NAME: 'Quoted;Name', SALDO: '1' } });
  });
});
