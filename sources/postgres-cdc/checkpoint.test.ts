import { describe, expect, it } from 'vitest';
import { parseCheckpoint, toCheckpoint } from './checkpoint.js';

describe('postgres-cdc checkpoint', () => {
  it('reads back what it wrote, LSN normalised, with snapshot progress', () => {
    const cp = { lsn: '0/16B3748', snapshot: { id: 's1', startedAt: '2026-12-05T06:00:00.000Z', tables: ['public.a'], lastKey: ['42'] } };
    expect(parseCheckpoint(toCheckpoint(cp), 'here')).toEqual(cp);
    expect(parseCheckpoint(undefined, 'here')).toBeUndefined();
  });

  it('refuses a position it did not write, with a fix that really starts over (when_needed cannot judge it)', () => {
    for (const bad of [{ lsn: 5 }, { file: 'mysql-bin.000001', pos: 4 }, 'text', { lsn: 'zz' }]) {
      let error: unknown;
      try {
        parseCheckpoint(bad as never, 'db slot s');
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST', where: 'db slot s' });
      expect((error as { fix: string }).fix).toMatch(/redis-cli -u REDIS_URL DEL PREFIX:pipeline:NAME:checkpoint.*snapshot: initial/);
    }
  });
});
