import { hash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { OffHeapText } from './off-heap-text.js';

/** What was appended, decoded from the copied bytes, separators between pieces (not after the last). */
function text(t: OffHeapText): string {
  const bytes = t.copy();
  return bytes.toString('utf8', 0, Math.max(0, bytes.length - 1));
}

describe('OffHeapText', () => {
  it('joins appended pieces by the separator, multi-byte text and growth past the first buffer included', () => {
    const t = new OffHeapText(0x0a, { initialBytes: 16 });
    const pieces = ['{"a":"Jürgen Straßer"}', '€ 𝄞 ß', '', 'x'.repeat(5000), '"quoted\\nescaped"'];
    for (const p of pieces) t.append(p);
    expect(t.count).toBe(pieces.length);
    expect(text(t)).toBe(pieces.join('\n'));
    t.clear();
    expect(t.count).toBe(0);
    expect(text(t)).toBe('');
    t.append('again');
    expect(text(t)).toBe('again');
  });

  it('takes pieces already encoded, separator included, between pieces given as strings', () => {
    const t = new OffHeapText(0x0a, { initialBytes: 8 });
    const encoded = Buffer.from('{"a":"Jürgen"}\n€ 𝄞\n', 'utf8');
    t.append('first');
    t.appendEncoded(encoded, 0, 16);
    t.appendEncoded(encoded, 16, encoded.length);
    t.append('last ß');
    expect(t.count).toBe(4);
    expect(text(t)).toBe('first\n{"a":"Jürgen"}\n€ 𝄞\nlast ß');
  });

  it('hashes like the strings it holds: ids followed by NUL give the same digest as the joined text', () => {
    const ids = ['bde3d22b-d87d-85e9-a317-a892b287741e', '3c92a92c-ff94-8ab3-a114-368b19a334a6'];
    const t = new OffHeapText(0);
    for (const id of ids) t.append(id);
    expect(hash('sha256', t.view(), 'hex')).toBe(hash('sha256', `${ids.join('\0')}\0`, 'hex'));
  });
});
