import { describe, expect, it } from 'vitest';
import { SeenWindow } from './seen-window.js';

describe('look-back window of delivered row versions', () => {
  it('forgets entries older than the window as the cursor moves on', () => {
    const seen = new SeenWindow();
    let most = 0;
    for (let t = 0; t < 100_000; t++) {
      seen.add(t * 1000, `h${t}`);
      if (t % 500 === 499) seen.prune(t * 1000 - 10_000);
      most = Math.max(most, seen.size);
    }
    expect(most).toBeLessThanOrEqual(511);
    seen.prune(99_999_000 - 10_000);
    expect(seen.size).toBe(11);
    expect(seen.has('h99999')).toBe(true);
    expect(seen.has('h99988')).toBe(false);
    expect(seen.toJSON()[0]).toEqual([99_989_000, 'h99989']);
  });

  it('keeps a late row of an older time in time order, and remembers a version once', () => {
    const seen = new SeenWindow([
      [1000, 'a'],
      [3000, 'c'],
    ]);
    seen.add(2000, 'b');
    seen.add(3000, 'c');
    expect(seen.toJSON()).toEqual([
      [1000, 'a'],
      [2000, 'b'],
      [3000, 'c'],
    ]);
    seen.prune(2000);
    expect(seen.toJSON()).toEqual([
      [2000, 'b'],
      [3000, 'c'],
    ]);
    expect(seen.has('a')).toBe(false);
  });

  it('holds at most `max` entries, the newest, however many share one time', () => {
    const seen = new SeenWindow([], 100);
    for (let i = 0; i < 5000; i++) seen.add(42, `h${i}`);
    expect(seen.size).toBe(100);
    expect(seen.has('h4999')).toBe(true);
    expect(seen.has('h4899')).toBe(false);
    expect(seen.toJSON()).toHaveLength(100);
  });

  it('does not remember a time that does not parse, which it could never prune', () => {
    const seen = new SeenWindow();
    seen.add(Number.NaN, 'zero-date');
    expect(seen.size).toBe(0);
  });
});
