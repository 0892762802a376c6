import { describe, expect, it } from 'vitest';
import type { RowDataPacket } from 'mysql2';
import { FerryError } from '../../agent/errors/index.js';
import { contextFor, masterStatus, runOnce, sourceFor, useFixture } from './mysql-cdc.helpers.js';

// Purges the server's binlogs: a fault test, run alone after the suite
// (other mysql-cdc tests resume from binlog positions this removes).
const [fx, t] = useFixture('purge');

describe('mysql-cdc with a purged binlog', () => {
  it('reports the missing binlog file, or re-snapshots with snapshot: when_needed', async () => {
    await fx.root.query(`CREATE TABLE ${t('orders')} (id INT PRIMARY KEY, total DECIMAL(10,2))`);
    const settings = { tables: [t('orders')] };
    await fx.root.query(`INSERT INTO ${t('orders')} VALUES (1, '9.99')`);
    // where an agent stopped: a transaction boundary in the current binlog
    const stored = { phase: 'stream', ...(await masterStatus(fx)) };

    // the agent is down; the binlog it stopped in is rotated away and purged
    await fx.root.query(`INSERT INTO ${t('orders')} VALUES (2, '19.99')`);
    await fx.root.query('FLUSH BINARY LOGS');
    const current = await masterStatus(fx);
    // The server keeps a file a connected binlog reader still needs. Readers
    // closed by earlier tests go away at their next heartbeat (5 s); one that
    // stays means another test is reading the binlog: this one must run alone.
    let remaining: string[] = [];
    for (const deadline = Date.now() + 12_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
      await fx.root.query(`PURGE BINARY LOGS TO '${current.file}'`);
      const [logs] = await fx.root.query<RowDataPacket[]>('SHOW BINARY LOGS');
      remaining = logs.map((l) => String(l.Log_name));
      if (!remaining.includes(stored.file)) break;
    }
    expect(remaining, 'another binlog reader holds the old file').not.toContain(stored.file);

    const lost = sourceFor(fx, { ...settings, snapshot: 'initial' });
    const err = await lost.open(stored, contextFor()).catch((e: unknown) => e);
    await lost.close();
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('FERRY_SOURCE_POSITION_LOST');
    expect((err as FerryError).message).toContain(`binlog file ${stored.file} `);
    expect((err as FerryError).fix).toMatch(/snapshot: when_needed/);

    const resnap = await runOnce(sourceFor(fx, { ...settings, snapshot: 'when_needed' }), stored, (r) => r.length >= 2);
    expect(resnap.records.map((r) => [r.op, r.data])).toEqual([
      ['r', { id: 1, total: '9.99' }],
      ['r', { id: 2, total: '19.99' }],
    ]);
  });
});
