import { afterAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

/**
 * ALTER TABLE ADD / DROP COLUMN in the middle of a mysql-cdc stream, through
 * the real agent (`ferry run`) to the file sink (docs/sources/mysql-cdc.md,
 * "Schema changes"): every row arrives under the columns of its time, with
 * the mapping's fields filled from a new column once it exists, both while
 * the agent streams and from a backlog that holds the DDL and that the agent
 * reads after a restart (where today's columns would be the wrong ones).
 * Columns are added with AFTER, so a row decoded against the wrong columns
 * puts values under other names and breaks the contract's types: only the
 * one row written to break it on purpose may reach the dead-letter queue.
 */

const [fx, t] = useFixture('ddlagent');
const running: FerryProcess[] = [];
const prefix = uniquePrefix('myddl');

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await deleteRedisPrefix(prefix);
});

type ItemEvent = { id: string; type: string; subject: string; ferryop: string; data: Record<string, unknown> };
type DeadLetter = { pipeline: string; sink: string; code: string; violations: Array<{ field: string; message: string }>; record: { op: string; data: Record<string, unknown>; position: string } };

/**
 * Pipeline `shop`: `items` → entity `item` with fields from columns that come
 * and go (note is dropped, color and size are added later); the contract
 * types each field, and knows three colours. One partition, so the sink holds
 * the events in binlog order.
 */
function workspace(): { config: string; out: string } {
  return rowPipelineWorkspace({
    name: 'my-ddl',
    prefix,
    logLevel: 'info',
    contract: {
      name: 'item',
      properties: {
        id: { type: 'integer' },
        version: { type: ['integer', 'null'] },
        note: { type: ['string', 'null'] },
        color: { enum: ['red', 'green', 'blue', null] },
        size: { type: ['integer', 'null'] },
      },
    },
    tables: [
      {
        mapping: 'items',
        entity: 'item',
        table: t('items'),
        fields: `  id:      { from: id, type: integer, required: true }
  version: { from: version, type: integer }
  note:    { from: note }
  color:   { from: color }
  size:    { from: size, type: integer }
`,
      },
    ],
    source: `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${uniqueServerId()}
      tables: [${t('items')}]
      snapshot: initial`,
    delivery: '{ partitions: 1, batch: { maxEvents: 100, maxWaitMs: 20 } }',
  });
}

/** [op, data] of the streamed events at the sink, in sink order. */
function streamed(out: string): Array<[string, Record<string, unknown>]> {
  return readJsonLines<ItemEvent>(out)
    .filter((e) => e.ferryop !== 'r')
    .map((e) => [e.ferryop, e.data]);
}

async function waitForStreamed(agent: FerryProcess, out: string, n: number): Promise<void> {
  await waitFor(`${n} streamed events at the sink`, () => streamed(out).length >= n || agent.proc.exitCode !== null, 60_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(streamed(out))}; agent stderr: ${agent.stderr().slice(-3000)}`);
  });
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
}

describe('mysql-cdc: ALTER TABLE in the middle of the stream, through ferry run', () => {
  it('delivers rows before an ADD/DROP COLUMN with the old columns and rows after with the new, live and from a backlog read after a restart; only the bad row is dead-lettered', async () => {
    const items = t('items');
    await fx.root.query(`CREATE TABLE ${items} (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64))`);
    await fx.root.query(`INSERT INTO ${items} VALUES (1, 1, 'seed'), (2, 1, 'seed'), (3, 1, 'seed')`);
    const { config, out } = workspace();

    const agent = startAgent(config);
    running.push(agent);
    await waitFor('the snapshot at the sink', () => readJsonLines(out).length >= 3 || agent.proc.exitCode !== null, 60_000, 100);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    // A mapping field whose column does not exist (yet) is null, like any field without a value.
    expect(readJsonLines<ItemEvent>(out).map((e) => [e.ferryop, e.data])).toEqual(
      [1, 2, 3].map((id) => ['r', { id, version: 1, note: 'seed', color: null, size: null }]),
    );

    // Live: the agent is streaming while the table changes shape under it.
    await fx.root.query(`INSERT INTO ${items} VALUES (10, 1, 'before-add')`);
    await fx.root.query(`ALTER TABLE ${items} ADD COLUMN color VARCHAR(16) AFTER id`); // id, color, version, note
    await fx.root.query(`INSERT INTO ${items} VALUES (11, 'red', 1, 'after-add')`);
    await fx.root.query(`UPDATE ${items} SET color = 'green', version = 2 WHERE id = 10`);
    // Breaks the contract on purpose: the one row that belongs in the dead-letter queue.
    await fx.root.query(`INSERT INTO ${items} VALUES (12, 'purple', 1, 'bad colour')`);
    await fx.root.query(`ALTER TABLE ${items} DROP COLUMN note`); // id, color, version
    await fx.root.query(`INSERT INTO ${items} VALUES (13, 'blue', 1)`);
    await fx.root.query(`UPDATE ${items} SET version = 2 WHERE id = 11`);
    await fx.root.query(`DELETE FROM ${items} WHERE id = 10`);
    const live: Array<[string, Record<string, unknown>]> = [
      ['c', { id: 10, version: 1, note: 'before-add', color: null, size: null }],
      ['c', { id: 11, version: 1, note: 'after-add', color: 'red', size: null }],
      ['u', { id: 10, version: 2, note: 'before-add', color: 'green', size: null }],
      ['c', { id: 13, version: 1, note: null, color: 'blue', size: null }],
      ['u', { id: 11, version: 2, note: null, color: 'red', size: null }],
      // A delete carries the fields whose column it has (docs/mappings.md): no note any more.
      ['d', { id: 10, version: 2, color: 'green' }],
    ];
    await waitForStreamed(agent, out, live.length);
    expect(streamed(out)).toEqual(live);
    expect(await agent.stop()).toBe(0);

    // A backlog written while the agent is down, DDL included: on restart the
    // table is (id, size, version), the shape of none of the rows before the last ALTER.
    await fx.root.query(`INSERT INTO ${items} VALUES (20, 'red', 1)`);
    await fx.root.query(`ALTER TABLE ${items} ADD COLUMN size INT AFTER id`); // id, size, color, version
    await fx.root.query(`INSERT INTO ${items} VALUES (21, 5, 'blue', 1)`);
    await fx.root.query(`ALTER TABLE ${items} DROP COLUMN color`); // id, size, version
    await fx.root.query(`UPDATE ${items} SET version = 2, size = 7 WHERE id = 20`);
    await fx.root.query(`INSERT INTO ${items} VALUES (22, 9, 1)`);
    const backlog: Array<[string, Record<string, unknown>]> = [
      ['c', { id: 20, version: 1, note: null, color: 'red', size: null }],
      ['c', { id: 21, version: 1, note: null, color: 'blue', size: 5 }],
      ['u', { id: 20, version: 2, note: null, color: null, size: 7 }],
      ['c', { id: 22, version: 1, note: null, color: null, size: 9 }],
    ];
    const restarted = startAgent(config);
    running.push(restarted);
    await waitForStreamed(restarted, out, live.length + backlog.length);
    // Settle: nothing more may follow (a repeat, or a row dead-lettered late).
    await new Promise((r) => setTimeout(r, 1500));
    expect(streamed(out)).toEqual([...live, ...backlog]);
    expect(restarted.proc.exitCode, restarted.stderr()).toBeNull();
    expect(await restarted.stop()).toBe(0);
    // The column changes are logged (docs/sources/mysql-cdc.md, "Schema changes").
    expect(agent.stderr()).toContain('mysql-cdc: table columns changed');
    expect(restarted.stderr()).toContain('mysql-cdc: table columns changed');

    // Dead letters, of every sink and the mapping: only row 12, its colour under its own name.
    const all = await runFerry(['dlq', 'list', '--config', config, '--json']);
    expect(all.code, all.stderr).toBe(0);
    const entries = all.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as DeadLetter);
    expect(entries, all.stdout).toHaveLength(1);
    expect(entries[0]).toMatchObject({ pipeline: 'shop', code: 'FERRY_CONTRACT_VIOLATION', record: { op: 'c', data: { id: 12, color: 'purple', version: 1, note: 'bad colour' } } });
    expect(entries[0]!.violations.map((v) => v.field)).toEqual(['color']);
  }, 180_000);
});
