import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace, type RowEvent } from '../support/change-ledger.js';
import { TestDatabase } from './postgres-cdc.helpers.js';

/**
 * `ferry snapshot PIPELINE -t TABLE -w WHERE` on a postgres-cdc pipeline,
 * through the built CLI against the real Postgres and Redis: the chosen rows
 * are read again as op r and queued, and a delivering agent writes them to
 * the file sink. The pipeline's slot is never created by it.
 */

const db = new TestDatabase();
const prefix = uniquePrefix('pgsnapcli');
const running: FerryProcess[] = [];

beforeAll(async () => {
  await db.create();
  for (const t of ['t1', 't2']) {
    await db.sql(`CREATE TABLE public.${t} (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
    await db.sql(`INSERT INTO public.${t} SELECT g, 1, 'n' || g FROM generate_series(1, 30) g`);
  }
});

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await db.drop();
  await deleteRedisPrefix(prefix);
});

function workspace(): { config: string; out: string } {
  return rowPipelineWorkspace({
    name: 'pg-snap',
    prefix,
    tables: [
      { mapping: 't1', entity: 'order', table: 'public.t1' },
      { mapping: 't2', entity: 'customer', table: 'public.t2' },
    ],
    source: `      type: postgres-cdc
      connection: "${db.url}"
      publication: ferry_snapcli
      slot: ${db.name}_slot
      tables: [public.t1, public.t2]
      snapshotChunkSize: 4
`,
  });
}

describe('ferry snapshot (postgres-cdc)', () => {
  it('re-reads the chosen rows of one table with a progress bar, and a delivering agent writes them as op r', async () => {
    const ws = workspace();

    const snap = await runFerry(['snapshot', 'shop', '--config', ws.config, '-t', 'public.t1', '-w', 'id > 10']);
    expect(snap.code, snap.stderr).toBe(0);
    // 20 rows in chunks of 4, counted under the condition: a line every 10%, the last at 100%
    expect(snap.stderr).toContain('public.t1 [');
    expect(snap.stderr).toContain('20/20 rows (100%)');
    expect(snap.stderr.split('\n').filter((l) => l.startsWith('public.t1')).length).toBeGreaterThanOrEqual(3);
    expect(snap.stderr).not.toContain('public.t2');
    expect(snap.stderr).toContain('snapshot done: 20 rows read, 20 events queued for audit');
    // Read-only: neither the slot nor the publication exists afterwards.
    expect(await db.slot(`${db.name}_slot`)).toBeUndefined();
    expect(await db.sql(`SELECT 1 FROM pg_publication WHERE pubname = 'ferry_snapcli'`)).toEqual([]);

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

    // A second run is a new snapshot: new event ids for the same rows.
    const again = await runFerry(['snapshot', 'shop', '--config', ws.config, '-t', 'public.t1', '-w', 'id = 11']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain('1/1 rows (100%)');
  });

  it('exits 2 naming the problem when the table or the where condition is refused', async () => {
    const ws = workspace();
    const bad = await runFerry(['snapshot', 'shop', '--config', ws.config, '-w', 'id > 1; DELETE FROM public.t1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--where');
    const unknown = await runFerry(['snapshot', 'shop', '--config', ws.config, '-w', 'no_such_column = 1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no_such_column');
    const table = await runFerry(['snapshot', 'shop', '--config', ws.config, '-t', 'public.t3']);
    expect(table.code).toBe(2);
    expect(table.stderr).toContain('public.t3');
    // A captured table that does not exist is placed in the config file, as `ferry run` places it.
    const goneConfig = writeFile(join(dirname(ws.config), 'gone.yaml'), readFileSync(ws.config, 'utf8').replace('tables: [public.t1, public.t2]', 'tables: [public.t1, public.gone]'));
    const gone = await runFerry(['snapshot', 'shop', '--config', goneConfig, '-t', 'public.gone']);
    expect(gone.code, gone.stderr).toBe(2);
    expect(gone.stderr).toMatch(/gone\.yaml:\d+:\d+ \(pipelines\[0\]\.source\.tables\[1\]\): .*public\.gone/);
    expect(await db.sql(`SELECT count(*)::int AS n FROM public.t1`)).toEqual([{ n: 30 }]);
  });
});
