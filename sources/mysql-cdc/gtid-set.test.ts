import { describe, expect, it } from 'vitest';
import { addGtid } from './gtid-set.js';

describe('GTID positions', () => {
  it('keeps the last GTID of each MariaDB domain, like @@gtid_binlog_pos', () => {
    let set = addGtid(undefined, '0-1-100');
    set = addGtid(set, '7-1-3');
    set = addGtid(set, '0-1-101');
    set = addGtid(set, '2-5-9');
    expect(set).toBe('0-1-101,7-1-3,2-5-9');
    // A server id change within a domain (a failover) replaces the domain's entry, in its place.
    expect(addGtid(set, '7-2-4')).toBe('0-1-101,7-2-4,2-5-9');
  });

  it('builds MySQL GTID sets: intervals merged per source uuid, tags apart', () => {
    const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const b = '0a7f9c2e-0000-11e1-9e33-c80aa9429562';
    let set: string | undefined;
    for (const n of [1, 2, 3, 5]) set = addGtid(set, `${a}:${n}`);
    expect(set).toBe(`${a}:1-3:5`);
    set = addGtid(set, `${a}:4`);
    expect(set).toBe(`${a}:1-5`);
    set = addGtid(set, `${b}:7`);
    expect(set).toBe(`${b}:7,${a}:1-5`);
    // Seeded from @@gtid_executed (upper case, a tag), then extended.
    const seeded = addGtid(`${a.toUpperCase()}:1-10:12,${a}:nightly:1-2`, `${a}:11`);
    expect(seeded).toBe(`${a}:1-12,${a}:nightly:1-2`);
    expect(addGtid(seeded, `${a}:nightly:3`)).toBe(`${a}:1-12,${a}:nightly:1-3`);
  });
});
