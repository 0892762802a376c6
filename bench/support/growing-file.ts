import { closeSync, openSync, readSync } from 'node:fs';

/** Reads what was appended to `file` since the last call (nothing if it does not exist yet). */
function appendedReader(file: string): (onChunk: (buf: Buffer, n: number) => void) => void {
  let offset = 0;
  const buf = Buffer.alloc(1 << 20);
  return (onChunk) => {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return;
    }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n === 0) break;
        offset += n;
        onChunk(buf, n);
      }
    } finally {
      closeSync(fd);
    }
  };
}

/** Counts the complete lines of a growing file (a sink's output), reading only what is new. */
export function lineCounter(file: string): () => number {
  const read = appendedReader(file);
  let lines = 0;
  return () => {
    read((buf, n) => {
      for (let i = 0; i < n; i++) if (buf[i] === 10) lines++;
    });
    return lines;
  };
}

/** The complete lines appended to a growing file since the last call. */
export function lineReader(file: string): () => string[] {
  const read = appendedReader(file);
  let rest = '';
  return () => {
    let text = rest;
    read((buf, n) => {
      text += buf.toString('utf8', 0, n);
    });
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    return lines;
  };
}
