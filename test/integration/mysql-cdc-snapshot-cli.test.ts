import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { ordersAndCustomers, rowPipelineWorkspace, type RowEvent } from '../support/change-ledger.js';
import { useFixture } from './mysql-cdc.helpers.js';

/**
 * `ferry snapshot PIPELINE -t TABLE -w WHERE` on a mysql-cdc pipeline, through
 * the built CLI against the real MariaDB and Redis: the chosen rows are read
 * again as op r, queued, and a delivering agent writes them to the file sink.
 */

const [fx, t] = useFixture('snapcli');
const prefix = uniquePrefix('mysnapcli');
const running: FerryProcess[] = [];

beforeAll(async () => {
  for (const table of ['orders', 'customers']) {
    await fx.root.query(`CREATE TABLE ${t(table)} (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(20) NOT NULL)`);
    await fx.root.query(`INSERT INTO ${t(table)} SELECT seq, 1, CONCAT('n', seq) FROM ${t('seq_1_to_30')}`);
  }
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await deleteRedisPrefix(prefix);
});

function workspace(): { config: string; out: string } {
  return rowPipelineWorkspace({
    name: 'my-snap',
    prefix,
    tables: ordersAndCustomers(t),
    source: `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${20_000 + Math.floor(Math.random() * 10_000)}
      tables: [${t('orders')}, ${t('customers')}]
      snapshot: never
      snapshotChunkSize: 4
`,
  });
}

describe('ferry snapshot (mysql-cdc)', () => {
  it('re-reads the chosen rows of one table with a progress bar, and a delivering agent writes them as op r', async () => {
    const ws = workspace();

    const snap = await runFerry(['snapshot', 'shop', '--config', ws.config, '-t', t('orders'), '-w', 'id > 10']);
    expect(snap.code, snap.stderr).toBe(0);
    // 20 rows in chunks of 4, counted under the condition: a line every 10%, the last at 100%
    expect(snap.stderr).toContain(`${t('orders')} [`);
    expect(snap.stderr).toContain('20/20 rows (100%)');
    expect(snap.stderr.split('\n').filter((l) => l.startsWith(t('orders'))).length).toBeGreaterThanOrEqual(3);
    expect(snap.stderr).toContain('snapshot done: 20 rows read, 20 events queued for audit');

    const agent = startAgent(ws.config, { role: 'deliver' });
    running.push(agent);
    const events = await waitFor('20 events at the file sink', () => {
      const e = readJsonLines<RowEvent>(ws.out);
      return e.length >= 20 || agent.proc.exitCode !== null ? e : undefined;
    });
    await new Promise((r) => setTimeout(r, 500)); // nothing else follows
    expect(readJsonLines(ws.out)).toHaveLength(20);
    expect(events.every((e) => e.type === 'order.snapshot')).toBe(true);
    expect(events.map((e) => e.data.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 11));
    expect(await agent.stop()).toBe(0);
  });

  it('exits 2 naming the problem when the where condition is refused', async () => {
    const ws = workspace();
    const bad = await runFerry(['snapshot', 'shop', '--config', ws.config, '-w', 'id > 1; DELETE FROM x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--where');
    const unknown = await runFerry(['snapshot', 'shop', '--config', ws.config, '-w', 'no_such_column = 1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no_such_column');
  });
});
