import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { csvParser } from './csv.js';
import { fixedWidthParser } from './fixed-width.js';
import { parseJsonl } from './jsonl.js';
import { numberedLines } from './lines.js';
import { UnreadableFileError, type ParsedRow } from './row.js';

/** Feeds the text in small pieces, so that records and line breaks straddle chunk boundaries. */
function chunked(text: string, size = 3): Readable {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

async function all<T>(it: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const part of it) out.push(...part);
  return out;
}

const summary = (rows: ParsedRow[]): unknown[] => rows.map((r) => [r.line, r.invalid === undefined ? r.data : `invalid`]);

describe('numberedLines', () => {
  it('numbers LF and CRLF lines across chunk boundaries, and a last line without a break', async () => {
    const lines = await all(numberedLines(chunked('a\r\nbb\n\nccc\r\nd')));
    expect(lines).toEqual([
      { line: 1, text: 'a' },
      { line: 2, text: 'bb' },
      { line: 3, text: '' },
      { line: 4, text: 'ccc' },
      { line: 5, text: 'd' },
    ]);
  });
});

describe('csvParser', () => {
  it('gives each record the line it starts on, also after quoted line breaks and empty lines', async () => {
    const rows = await all(csvParser({ type: 'csv', delimiter: ';' })(chunked('id;t\n1;"a\nb\nc"\n\n2;x\n3;y\n')));
    expect(summary(rows)).toEqual([
      [2, { id: '1', t: 'a\nb\nc' }],
      [6, { id: '2', t: 'x' }],
      [7, { id: '3', t: 'y' }],
    ]);
  });

  it('puts invalid rows in line order between the good ones', async () => {
    const rows = await all(csvParser({ type: 'csv' })(chunked('a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n')));
    expect(summary(rows)).toEqual([
      [2, { a: '1', b: '2' }],
      [3, 'invalid'],
      [4, { a: '4', b: '5' }],
      [5, 'invalid'],
      [6, { a: '9', b: '10' }],
    ]);
    expect(rows[3]!.data).toEqual({ _raw: '6,7,8' });
  });

  it('relaxColumnCount accepts short and long rows', async () => {
    const rows = await all(csvParser({ type: 'csv', relaxColumnCount: true })(chunked('a,b\n1\n2,3,4\n')));
    expect(rows.every((r) => r.invalid === undefined)).toBe(true);
  });

  it('explicit columns with header: true replace the header line', async () => {
    const rows = await all(csvParser({ type: 'csv', columns: ['x', 'y'], header: true })(chunked('A,B\n1,2\n')));
    expect(summary(rows)).toEqual([[2, { x: '1', y: '2' }]]);
  });

  it('a custom quote and escape', async () => {
    const rows = await all(csvParser({ type: 'csv', quote: "'", escape: '\\' })(chunked("a,b\n'x,y','it\\'s'\n")));
    expect(rows[0]!.data).toEqual({ a: 'x,y', b: "it's" });
  });

  it('a header that cannot be parsed makes the file unreadable', async () => {
    await expect(all(csvParser({ type: 'csv' })(chunked('"a,b\n1,2\n')))).rejects.toBeInstanceOf(UnreadableFileError);
  });
});

describe('parseJsonl', () => {
  it('skips blank lines and reports bad ones', async () => {
    const rows = await all(parseJsonl(chunked('{"a":1}\n\n  \n"str"\n{bad\n{"a":2}')));
    expect(summary(rows)).toEqual([
      [1, { a: 1 }],
      [4, 'invalid'],
      [5, 'invalid'],
      [6, { a: 2 }],
    ]);
  });
});

describe('fixedWidthParser', () => {
  const columns = [
    { name: 'A', start: 1, length: 2 },
    { name: 'B', start: 3, length: 3 },
  ];

  it('cuts and trims fields; trim: false keeps the padding', async () => {
    expect((await all(fixedWidthParser({ type: 'fixed-width', columns })(chunked('01 x \n02yyy\n'))))[0]!.data).toEqual({ A: '01', B: 'x' });
    expect((await all(fixedWidthParser({ type: 'fixed-width', columns, trim: false })(chunked('01 x \n'))))[0]!.data).toEqual({ A: '01', B: ' x ' });
  });

  it('a first line that does not fit is a wrong layout', async () => {
    await expect(all(fixedWidthParser({ type: 'fixed-width', columns })(chunked('01\n02yyy\n')))).rejects.toThrow(/layout does not fit line 1/);
  });
});
