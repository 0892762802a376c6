import { describe, expect, it } from 'vitest';
import { Completeness } from './completeness.js';

describe('Completeness', () => {
  it('minAgeMs: complete only after size and mtime stayed the same for that long', () => {
    const c = new Completeness({ minAgeMs: 500 });
    const none = new Set<string>();
    expect(c.check('a.csv', { size: 10, mtimeMs: 1 }, none, 1_000)).toEqual({ complete: false, waitMs: 500 });
    expect(c.check('a.csv', { size: 10, mtimeMs: 1 }, none, 1_300)).toEqual({ complete: false, waitMs: 200 });
    // It grew: the quiet period starts again.
    expect(c.check('a.csv', { size: 20, mtimeMs: 2 }, none, 1_400).complete).toBe(false);
    expect(c.check('a.csv', { size: 20, mtimeMs: 2 }, none, 1_800).complete).toBe(false);
    expect(c.check('a.csv', { size: 20, mtimeMs: 2 }, none, 1_900).complete).toBe(true);
  });

  it('minAgeMs 0: complete when first seen', () => {
    expect(new Completeness({ minAgeMs: 0 }).check('a', { size: 1, mtimeMs: 1 }, new Set(), 0).complete).toBe(true);
  });

  it('marker: complete exactly when FILE+marker exists', () => {
    const c = new Completeness({ marker: '.done' });
    expect(c.marker).toBe('.done');
    expect(c.check('a.csv', { size: 1, mtimeMs: 1 }, new Set(['a.csv']), 0).complete).toBe(false);
    expect(c.check('a.csv', { size: 1, mtimeMs: 1 }, new Set(['a.csv', 'a.csv.done']), 0).complete).toBe(true);
  });
});
