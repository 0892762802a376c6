import type { Readable } from 'node:stream';
import { drain } from './drain.js';

/** One physical line, numbered from 1, without its line break (LF or CRLF). */
export interface NumberedLine {
  line: number;
  text: string;
}

/** The lines of a decoded text stream, as arrays of whatever the buffered chunks hold. */
export async function* numberedLines(text: Readable): AsyncIterable<NumberedLine[]> {
  let line = 0;
  let rest = '';
  for await (const chunks of drain<string | Buffer>(text)) {
    const out: NumberedLine[] = [];
    for (const chunk of chunks) {
      const s = rest + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      let start = 0;
      for (let nl = s.indexOf('\n'); nl !== -1; nl = s.indexOf('\n', start)) {
        out.push({ line: ++line, text: s.slice(start, nl > start && s[nl - 1] === '\r' ? nl - 1 : nl) });
        start = nl + 1;
      }
      rest = s.slice(start);
    }
    if (out.length > 0) yield out;
  }
  if (rest !== '') yield [{ line: ++line, text: rest.endsWith('\r') ? rest.slice(0, -1) : rest }];
}
