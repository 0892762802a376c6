import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterAll, countLines, readJsonLines, startAgent, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { E2E_DELIVERY, replayDifferences, replayedTables, rowPipelineWorkspace, type RowEvent, type TableRows } from '../support/change-ledger.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';

/**
 * A lost source position through the real agent (`ferry run`): the slot
 * dropped or the binlog purged while the agent was stopped. The next start
 * must stop with FERRY_SOURCE_POSITION_LOST (exit 1, docs/errors.md) and
 * print the fix, having delivered nothing and moved nothing, rather than
 * stream on from "now" over the gap; with `snapshot: when_needed` the same
 * pipeline snapshots again and a consumer replaying the sink ends with the
 * table as it is.
 *
 * A fault test: purging the binlog removes positions other mysql-cdc tests
 * resume from, so this file runs alone after the suite
 * (vitest.fault.config.ts).
 */

const PIPELINE = 'shop';
const PG_ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const MY_ADMIN = 'mysql://root@127.0.0.1:3306/';
const { running, prefixes, cleanups } = cleanUpAfterAll();

/** The stored checkpoint of the pipeline, as the agent wrote it (JSON text), or null. */
async function storedCheckpoint(prefix: string): Promise<string | null> {
  const r = new Redis(6379, '127.0.0.1');
  try {
    return await r.get(`${prefix}:pipeline:${PIPELINE}:checkpoint`);
  } finally {
    r.disconnect();
  }
}

/** A one-table pipeline `shop` (orders → order, fields id/version/note) on the shared Redis, with a file sink. */
function ordersWorkspace(name: string, table: string, source: string): { config: string; out: string; prefix: string } {
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  const ws = rowPipelineWorkspace({ name, prefix, tables: [{ mapping: 'orders', entity: 'order', table }], delivery: E2E_DELIVERY, source });
  // rowPipelineWorkspace names its pipeline `shop`; the fix and the checkpoint key name it too.
  expect(readFileSync(ws.config, 'utf8')).toContain(`- name: ${PIPELINE}\n`);
  return { ...ws, prefix };
}

/** Rewrites `snapshot: FROM` to `snapshot: TO` in the config, failing when the config does not say FROM (an edit that changes nothing proves nothing). */
function setSnapshotMode(config: string, from: string, to: string): void {
  const text = readFileSync(config, 'utf8');
  expect(text).toContain(`snapshot: ${from}\n`);
  writeFile(config, text.replace(`snapshot: ${from}\n`, `snapshot: ${to}\n`));
}

function startTracked(config: string): FerryProcess {
  const agent = startAgent(config);
  running.push(agent);
  return agent;
}

/** Starts the agent and waits for `rows` snapshot events of the initial snapshot. */
async function startAndSnapshot(config: string, out: string, rows: number): Promise<FerryProcess> {
  const agent = startTracked(config);
  await waitFor('the initial snapshot at the sink', () => readJsonLines<RowEvent>(out).filter((e) => e.ferryop === 'r').length >= rows || agent.proc.exitCode !== null, 60_000, 200);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  return agent;
}

/** Waits until the events at the sink carry `count` distinct streamed (non-snapshot) change ids. */
async function waitForStreamed(agent: FerryProcess, out: string, count: number): Promise<void> {
  await waitFor('the streamed changes at the sink', () => new Set(readJsonLines<RowEvent>(out).filter((e) => e.ferryop !== 'r').map((e) => e.id)).size >= count || agent.proc.exitCode !== null, 60_000, 200);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
}

/**
 * `ferry run` against a lost position: the documented exit code, the code,
 * the message and the fix on stderr, and nothing delivered or stored.
 */
async function expectPositionLost(config: string, out: string, prefix: string, message: RegExp, fix: RegExp[]): Promise<void> {
  const atSink = countLines(out);
  const checkpoint = await storedCheckpoint(prefix);
  expect(checkpoint).not.toBeNull();
  const lost = startTracked(config);
  const code = await Promise.race([lost.exited, new Promise<'still running'>((r) => setTimeout(() => r('still running'), 60_000))]);
  if (code === 'still running') await lost.kill();
  const stderr = lost.stderr();
  expect(code, stderr).toBe(1);
  // What a person reads: `ferry: CODE: message`, then `  fix: ...` (agent/cli/main.ts reportError).
  const report = stderr.slice(stderr.indexOf('ferry: FERRY_SOURCE_POSITION_LOST: '));
  expect(report, stderr).toMatch(/^ferry: FERRY_SOURCE_POSITION_LOST: /);
  expect(report.split('\n')[0]).toMatch(message);
  const fixLine = report.split('\n').find((l) => l.startsWith('  fix: '));
  expect(fixLine, stderr).toBeDefined();
  for (const f of fix) expect(fixLine).toMatch(f);
  // The log line carries the same code and fix for a log collector.
  const logged = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { code?: string; fix?: string });
  expect(logged.find((l) => l.code === 'FERRY_SOURCE_POSITION_LOST')?.fix).toBe(fixLine!.slice('  fix: '.length));
  // Nothing streamed from "now", and the stored position is left as it was for the operator to decide.
  expect(countLines(out)).toBe(atSink);
  expect(await storedCheckpoint(prefix)).toBe(checkpoint);
}

/**
 * The documented recovery: `snapshot: when_needed` on the same pipeline. The
 * agent logs `logged` and sends every row of the table once, as a snapshot
 * read of its current version. Returns the agent, still running.
 */
async function resnapshotWhenNeeded(config: string, out: string, table: () => Promise<TableRows>, logged: string): Promise<FerryProcess> {
  setSnapshotMode(config, 'initial', 'when_needed');
  const atSink = countLines(out);
  const rows = (await table()).size;
  expect(rows).toBe(697);
  const resnap = startTracked(config);
  await waitFor('the re-snapshot at the sink', () => readJsonLines<RowEvent>(out).slice(atSink).filter((e) => e.ferryop === 'r').length >= rows || resnap.proc.exitCode !== null, 60_000, 200);
  expect(resnap.proc.exitCode, resnap.stderr()).toBeNull();
  expect(resnap.stderr()).toContain(logged);
  const again = readJsonLines<RowEvent>(out).slice(atSink).filter((e) => e.ferryop === 'r');
  const now = await table();
  expect(new Map(again.map((e) => [`orders/${e.data.id}`, { version: e.data.version, note: e.data.note }]))).toEqual(now);
  expect(again).toHaveLength(now.size);
  return resnap;
}

/** Waits until replaying the sink gives `expected` (the table, less what the re-snapshot cannot know), then stops the agent (exit 0). */
async function expectReplayed(agent: FerryProcess, out: string, expected: () => Promise<TableRows>): Promise<void> {
  let want = await expected();
  await waitFor(
    'the sink replayed to the table',
    async () => {
      want = await expected();
      return replayDifferences(replayedTables(out), want).length === 0 || agent.proc.exitCode !== null;
    },
    120_000,
    500,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${replayDifferences(replayedTables(out), want).join('; ')}; agent stderr: ${agent.stderr().slice(-3000)}`);
  });
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  expect(replayDifferences(replayedTables(out), want)).toEqual([]);
  expect(await agent.stop()).toBe(0);
}

function rowsOf(found: Array<{ id: number; version: number; note: string }>, table = 'orders'): TableRows {
  return new Map(found.map((r) => [`${table}/${r.id}`, { version: Number(r.version), note: String(r.note) }]));
}

/**
 * The table as a consumer can rebuild it after a re-snapshot: a row deleted
 * while the position was lost gets no `d` event (docs/errors.md,
 * FERRY_SOURCE_POSITION_LOST: "a row deleted during the gap gets no d
 * event"), so the replay keeps what the sink had of it before the gap, and
 * a row both inserted and deleted in the gap never shows.
 */
function withDeletedInGap(table: TableRows, beforeGap: TableRows, deletedIds: number[]): TableRows {
  const out = new Map(table);
  for (const id of deletedIds) {
    const had = beforeGap.get(`orders/${id}`);
    if (had) out.set(`orders/${id}`, had);
  }
  return out;
}

describe('a lost source position through ferry run', () => {
  it('postgres-cdc: a dropped slot stops ferry run with FERRY_SOURCE_POSITION_LOST (exit 1) and its fix; snapshot: when_needed re-snapshots and the sink replays to the table', async () => {
    const db = `ferry_pgfault_${randomBytes(4).toString('hex')}`;
    const url = `postgres://postgres@127.0.0.1:5432/${db}`;
    const slot = `${db}_slot`;
    await pgQuery(PG_ADMIN, `CREATE DATABASE ${db}`);
    cleanups.push(() => dropDatabaseAndSlots(PG_ADMIN, db));
    await pgQuery(url, `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
    await pgQuery(url, `INSERT INTO public.orders SELECT g, 1, 'seed' FROM generate_series(1, 500) g`);
    const { config, out, prefix } = ordersWorkspace('pg-slot-lost', 'public.orders', `      type: postgres-cdc
      connection: "${url}"
      publication: ferry_fault
      slot: ${slot}
      tables: [public.orders]
      snapshot: initial
      heartbeatMs: 1000`);
    const table = async () => rowsOf((await pgQuery(url, `SELECT id, version, note FROM public.orders`)) as Array<{ id: number; version: number; note: string }>);

    // Snapshot, then streamed changes, then a clean stop: the checkpoint is a streaming position in the slot.
    const first = await startAndSnapshot(config, out, 500);
    await pgQuery(url, `INSERT INTO public.orders SELECT g, 1, 'streamed' FROM generate_series(501, 600) g`);
    await pgQuery(url, `UPDATE public.orders SET version = 2, note = 'streamed' WHERE id BETWEEN 1 AND 50`);
    await waitForStreamed(first, out, 150);
    expect(await first.stop()).toBe(0);
    expect(JSON.parse((await storedCheckpoint(prefix))!)).toEqual({ lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) });
    const beforeGap = replayedTables(out);
    expect(replayDifferences(beforeGap, await table())).toEqual([]);

    // While the agent is down: changes it has not read, then the slot holding them is dropped.
    await pgQuery(url, `INSERT INTO public.orders SELECT g, 1, 'gap' FROM generate_series(601, 700) g`);
    await pgQuery(url, `UPDATE public.orders SET version = 3, note = 'gap' WHERE id BETWEEN 40 AND 80`);
    // 7: last seen at the sink as it was; 45: updated in the gap first; 650: inserted in the gap.
    const deletedInGap = [7, 45, 650];
    expect(await pgQuery(url, `DELETE FROM public.orders WHERE id = ANY($1) RETURNING id`, [deletedInGap])).toHaveLength(3);
    // The walsender of the stopped agent may still be letting go of the slot.
    await waitFor('the slot dropped', async () => (await pgQuery(PG_ADMIN, `SELECT pg_drop_replication_slot($1)`, [slot]), true), 15_000, 300);

    await expectPositionLost(config, out, prefix, new RegExp(`replication slot ${slot}: it does not exist`), [/snapshot: when_needed/]);
    // Not recreated at "now" behind the operator's back: a new slot would hide the gap at the next start.
    expect(await pgQuery(PG_ADMIN, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1`, [slot])).toEqual([]);

    // The documented recovery: snapshot: when_needed on the same pipeline.
    const resnap = await resnapshotWhenNeeded(config, out, table, `slot ${slot}: it does not exist (dropped?); re-snapshotting (snapshot: when_needed)`);
    // And it streams on from the new slot.
    await pgQuery(url, `INSERT INTO public.orders SELECT g, 1, 'after' FROM generate_series(701, 720) g`);
    await pgQuery(url, `UPDATE public.orders SET version = version + 1, note = 'after' WHERE id BETWEEN 600 AND 610`);
    await expectReplayed(resnap, out, async () => withDeletedInGap(await table(), beforeGap, deletedInGap));
  }, 240_000);

  // docs/errors.md, FERRY_SOURCE_POSITION_LOST, offers two ways out, the second being to delete
  // PREFIX:pipeline:PIPELINE:checkpoint, the message's fix naming the pipeline.
  it('postgres-cdc: the POSITION_LOST report names the pipeline and its stored position to delete, as docs/errors.md says', async () => {
    const db = `ferry_pgfix_${randomBytes(4).toString('hex')}`;
    const url = `postgres://postgres@127.0.0.1:5432/${db}`;
    await pgQuery(PG_ADMIN, `CREATE DATABASE ${db}`);
    cleanups.push(() => dropDatabaseAndSlots(PG_ADMIN, db));
    await pgQuery(url, `CREATE TABLE public.orders (id integer PRIMARY KEY, version integer NOT NULL, note text NOT NULL)`);
    const { config, prefix } = ordersWorkspace('pg-fix-names', 'public.orders', `      type: postgres-cdc
      connection: "${url}"
      publication: ferry_fault
      slot: ${db}_slot
      tables: [public.orders]
      snapshot: initial
      heartbeatMs: 1000`);
    // A stored streaming position whose slot is gone: what the test above leads to, without the run up to it.
    const r = new Redis(6379, '127.0.0.1');
    await r.set(`${prefix}:pipeline:${PIPELINE}:checkpoint`, JSON.stringify({ lsn: '0/16B3748' }));
    r.disconnect();
    const lost = startTracked(config);
    expect(await lost.exited).toBe(1);
    const report = lost.stderr().slice(lost.stderr().indexOf('ferry: FERRY_SOURCE_POSITION_LOST: '));
    expect(report).toMatch(/^ferry: FERRY_SOURCE_POSITION_LOST: /);
    expect(report).toContain(`pipeline ${PIPELINE}`);
    expect(report).toMatch(new RegExp(`redis-cli -u REDIS_URL DEL \\S*:pipeline:${PIPELINE}:checkpoint`));
  }, 60_000);

  it('mysql-cdc: a purged binlog stops ferry run with FERRY_SOURCE_POSITION_LOST (exit 1) and its fix; snapshot: when_needed re-snapshots and the sink replays to the table', async () => {
    const db = `ferry_myfault_${randomBytes(4).toString('hex')}`;
    const url = `mysql://root@127.0.0.1:3306/${db}`;
    const root = await mysql.createConnection(MY_ADMIN);
    cleanups.push(async () => {
      await root.query(`DROP DATABASE IF EXISTS ${db}`);
      await root.end();
    });
    await root.query(`CREATE DATABASE ${db}`);
    // The sequence engine's seq_1_to_N tables exist only in the selected database.
    await root.query(`USE ${db}`);
    await root.query(`CREATE TABLE ${db}.orders (id INT PRIMARY KEY, version INT NOT NULL, note VARCHAR(64) NOT NULL)`);
    await root.query(`INSERT INTO ${db}.orders SELECT seq, 1, 'seed' FROM seq_1_to_500`);
    const { config, out, prefix } = ordersWorkspace('my-binlog-lost', `${db}.orders`, `      type: mysql-cdc
      connection: "${url}"
      serverId: ${100_000 + Math.floor(Math.random() * 1_000_000_000)}
      tables: [${db}.orders]
      snapshot: initial`);
    const table = async () => rowsOf((await root.query<RowDataPacket[]>(`SELECT id, version, note FROM ${db}.orders`))[0] as Array<{ id: number; version: number; note: string }>);

    const first = await startAndSnapshot(config, out, 500);
    await root.query(`INSERT INTO ${db}.orders SELECT seq, 1, 'streamed' FROM seq_501_to_600`);
    await root.query(`UPDATE ${db}.orders SET version = 2, note = 'streamed' WHERE id BETWEEN 1 AND 50`);
    await waitForStreamed(first, out, 150);
    expect(await first.stop()).toBe(0);
    const stored = JSON.parse((await storedCheckpoint(prefix))!) as { phase: string; file: string; pos: number };
    expect(stored).toMatchObject({ phase: 'stream', file: expect.stringMatching(/\.\d+$/) });
    const beforeGap = replayedTables(out);
    expect(replayDifferences(beforeGap, await table())).toEqual([]);

    // While the agent is down: changes it has not read, then the binlog it stopped in is rotated away and purged.
    await root.query(`INSERT INTO ${db}.orders SELECT seq, 1, 'gap' FROM seq_601_to_700`);
    await root.query(`UPDATE ${db}.orders SET version = 3, note = 'gap' WHERE id BETWEEN 40 AND 80`);
    const deletedInGap = [7, 45, 650];
    expect((await root.query<RowDataPacket[]>(`DELETE FROM ${db}.orders WHERE id IN (?) RETURNING id`, [deletedInGap]))[0]).toHaveLength(3);
    await root.query('FLUSH BINARY LOGS');
    const [[newest]] = await root.query<RowDataPacket[]>('SHOW MASTER STATUS');
    // The server keeps a file a connected binlog reader still needs; a
    // stopped agent's connection goes within its heartbeat (5 s). One that
    // stays means another test reads the binlog: this file must run alone.
    let remaining: string[] = [];
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 500))) {
      await root.query(`PURGE BINARY LOGS TO '${String(newest!.File)}'`);
      remaining = ((await root.query<RowDataPacket[]>('SHOW BINARY LOGS'))[0]).map((l) => String(l.Log_name));
      if (!remaining.includes(stored.file)) break;
    }
    expect(remaining, 'another binlog reader holds the old file').not.toContain(stored.file);

    await expectPositionLost(config, out, prefix, new RegExp(`binlog file ${stored.file.replace(/\./g, '\\.')} \\(position ${stored.file.replace(/\./g, '\\.')}:${stored.pos}\\) is no longer on the server`), [
      /Set `snapshot: when_needed` on this source and restart the agent/,
      // The other way out names this pipeline's checkpoint key (with the default prefix, which the fix says to replace).
      new RegExp(`redis-cli -u REDIS_URL DEL ferry:pipeline:${PIPELINE}:checkpoint`),
    ]);

    const resnap = await resnapshotWhenNeeded(config, out, table, 'mysql-cdc: stored binlog position was purged; re-snapshotting (snapshot: when_needed)');
    await root.query(`INSERT INTO ${db}.orders SELECT seq, 1, 'after' FROM seq_701_to_720`);
    await root.query(`UPDATE ${db}.orders SET version = version + 1, note = 'after' WHERE id BETWEEN 600 AND 610`);
    await expectReplayed(resnap, out, async () => withDeletedInGap(await table(), beforeGap, deletedInGap));
  }, 240_000);
});
