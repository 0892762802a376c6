import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { eventId } from '../../agent/event/cloud-event.js';
import { comparePosition } from '../../sources/mysql-cdc/position.js';
import { cleanUpAfterAll, readJsonLines, runFerry, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';
import { createFixture, type MysqlFixture } from './mysql-cdc.helpers.js';

/**
 * A CDC record that breaks its contract, end to end with the real binary
 * (issues 2-4): a streamed row between valid ones goes to the mapping
 * dead-letter queue with its table, its source position (LSN / binlog
 * file:pos) and the violated field, its neighbours reach the file sink, and
 * once the mapping file is fixed `ferry dlq replay` delivers it with the
 * event id the stream would have given it, leaving the queue empty.
 *
 * Postgres breaks a code table (a status with no default), MariaDB a
 * contract pattern: one mapping-level and one contract-level violation.
 */

const PIPELINE = 'shop';
const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const { running, prefixes, cleanups } = cleanUpAfterAll();

type OrderEvent = { id: string; type: string; subject: string; time: string; ferryop: string; ferryposition: string; ferrytxid?: string; data: { id: number; status: string; ref: string } };
type Violation = { field: string; message: string };
type DeadLetter = {
  id: string;
  pipeline: string;
  sink: string;
  code: string;
  reason: string;
  location: string;
  violations: Violation[];
  record: { origin: { kind: string; name: string }; op: string; data: Record<string, unknown>; changeId: string; time: string; position: string; txid?: string };
};

/**
 * `dir/ferry.yaml` for the pipeline `shop`: `source` (indented under the
 * pipeline), the orders mapping and contract, the shared Redis under a
 * fresh prefix and a file sink. The mapping's code table knows N and S with
 * no default; the contract wants `ref` as `ORD-<digits>`.
 */
function workspace(name: string, table: string, source: string): { config: string; mapping: string; out: string } {
  const dir = tempWorkspace(name);
  const prefix = uniquePrefix(name);
  prefixes.push(prefix);
  writeFile(
    join(dir, 'mappings/contracts/order.v1.schema.json'),
    JSON.stringify({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      required: ['id', 'status', 'ref'],
      additionalProperties: false,
      properties: {
        id: { type: 'integer' },
        status: { enum: ['new', 'shipped', 'cancelled'] },
        ref: { type: 'string', pattern: '^ORD-[0-9]+$' },
      },
    }),
  );
  const mapping = writeFile(
    join(dir, 'mappings/orders.yaml'),
    `entity: order
contract: contracts/order.v1.schema.json
match: { table: ${table} }
key: [id]
fields:
  id:     { from: id, type: integer, required: true }
  status: { from: status, map: { N: new, S: shipped } }
  ref:    { from: ref }
`,
  );
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent: { id: ${name}, dataDir: ./data, logLevel: warn }
queue: { redis: "redis://127.0.0.1:6379", prefix: ${prefix} }
pipelines:
  - name: ${PIPELINE}
    source:
${source.trimEnd()}
    mappings: [mappings/orders.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
    delivery: { partitions: 2, batch: { maxEvents: 100, maxWaitMs: 20 } }
`,
  );
  return { config, mapping, out: join(dir, 'out/events.jsonl') };
}

/** Rewrites the mapping file, failing loudly when `from` is not in it (a fix that changes nothing proves nothing). */
function editMapping(file: string, from: string, to: string): void {
  const text = readFileSync(file, 'utf8');
  expect(text).toContain(from);
  writeFile(file, text.replace(from, to));
}

/** Starts the agent and waits for the seed row's snapshot event: from then on it is streaming. */
async function startStreaming(config: string, out: string): Promise<FerryProcess> {
  const agent = startAgent(config);
  running.push(agent);
  await waitFor('the seed row at the sink', () => readJsonLines(out).length >= 1 || agent.proc.exitCode !== null, 120_000, 100);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  expect(readJsonLines<OrderEvent>(out).map((e) => [e.type, e.subject])).toEqual([['order.snapshot', '1']]);
  return agent;
}

/**
 * Waits for the good rows (by subject) at the sink and the one entry in the
 * mapping dead-letter queue; returns `ferry dlq list`'s text line for it and
 * `ferry dlq show`'s entry.
 */
async function deadLetterOf(agent: FerryProcess, config: string, out: string, good: string[]): Promise<{ line: string; entry: DeadLetter }> {
  await waitFor('the good rows at the sink', () => new Set(readJsonLines<OrderEvent>(out).map((e) => e.subject)).size >= good.length || agent.proc.exitCode !== null, 120_000, 100);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  const list = await waitFor(
    'the entry in the mapping dead-letter queue',
    async () => {
      const r = await runFerry(['dlq', 'list', '--config', config, '--sink', 'mapping']);
      return r.stderr.includes('1 dead-letter entry') ? r : undefined;
    },
    60_000,
    300,
  );
  expect(list.code).toBe(0);
  const lines = list.stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const id = lines[0]!.split(/\s+/)[0]!;
  const shown = await runFerry(['dlq', 'show', id, '--config', config]);
  expect(shown.code, shown.stderr).toBe(0);
  const entry = JSON.parse(shown.stdout) as DeadLetter;
  expect(entry).toMatchObject({ id, pipeline: PIPELINE, code: 'FERRY_CONTRACT_VIOLATION' });
  return { line: lines[0]!, entry };
}

/** `ferry dlq replay`, then the replayed row at the sink; then no dead letter is left anywhere in the config. */
async function replayAndDrain(config: string, out: string, subject: string): Promise<OrderEvent> {
  const replay = await runFerry(['dlq', 'replay', '--config', config]);
  expect(replay.stderr).toContain('replayed 1 entry');
  expect(replay.stderr).not.toContain('still fail');
  expect(replay.code).toBe(0);
  await waitFor('the replayed row at the sink', () => readJsonLines<OrderEvent>(out).some((e) => e.subject === subject), 120_000, 100);
  const after = await runFerry(['dlq', 'list', '--config', config]);
  expect(after.code).toBe(0);
  expect(after.stdout).toBe('');
  expect(after.stderr).toContain('0 dead-letter entries');
  return readJsonLines<OrderEvent>(out).find((e) => e.subject === subject)!;
}

/** Every event at the sink once: the replay added the missing one and repeated nothing. */
function expectEachOnce(out: string, subjects: string[]): OrderEvent[] {
  const events = readJsonLines<OrderEvent>(out);
  expect(events.map((e) => e.subject).sort()).toEqual([...subjects].sort());
  expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  return events;
}

/** `0/16B3748` as a number, to order LSNs. */
function lsnValue(lsn: string): bigint {
  const m = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

function binlogPosition(p: string): { file: string; pos: number } {
  const m = /^(.+):(\d+)$/.exec(p);
  if (!m) throw new Error(`not a binlog position: ${p}`);
  return { file: m[1]!, pos: Number(m[2]) };
}

describe('CDC records that break their contract → mapping dead-letter queue → replay', () => {
  it('postgres-cdc: a status outside the code table is dead-lettered with schema.table, LSN and field; fixed and replayed, it arrives with its stream id', async () => {
    const db = `ferry_cdcdlq_${randomBytes(4).toString('hex')}`;
    const url = `postgres://postgres@127.0.0.1:5432/${db}`;
    cleanups.push(() => dropDatabaseAndSlots(ADMIN, db));
    await pgQuery(ADMIN, `CREATE DATABASE ${db}`);
    await pgQuery(url, `CREATE TABLE public.orders (id integer PRIMARY KEY, status text NOT NULL, ref text NOT NULL); INSERT INTO public.orders VALUES (1, 'N', 'ORD-1')`);
    const ws = workspace('cdcdlq-pg', 'public.orders', `      type: postgres-cdc
      connection: "${url}"
      publication: ${db}_pub
      slot: ${db}_slot
      tables: [public.orders]
      snapshot: initial
      heartbeatMs: 1000`);
    const agent = await startStreaming(ws.config, ws.out);

    // One transaction: a good row, the bad one, a good row, with the WAL insert
    // position read between them to bound the bad row's LSN; then a later
    // transaction, so the stream visibly goes on past the bad record.
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    let bounds: { from: bigint; to: bigint };
    let xid: string;
    try {
      const insertLsn = async () => lsnValue(((await c.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!).lsn);
      await c.query('BEGIN');
      await c.query(`INSERT INTO public.orders VALUES (2, 'N', 'ORD-2')`);
      const from = await insertLsn();
      await c.query(`INSERT INTO public.orders VALUES (3, 'X', 'ORD-3')`);
      const to = await insertLsn();
      await c.query(`INSERT INTO public.orders VALUES (4, 'S', 'ORD-4')`);
      xid = ((await c.query<{ xid: string }>('SELECT (txid_current() % 4294967296)::text AS xid')).rows[0]!).xid;
      await c.query('COMMIT');
      bounds = { from, to };
      await c.query(`INSERT INTO public.orders VALUES (5, 'S', 'ORD-5')`);
    } finally {
      await c.end();
    }

    const { line, entry } = await deadLetterOf(agent, ws.config, ws.out, ['1', '2', '4', '5']);
    // The good rows are delivered, the bad one is not.
    const live = expectEachOnce(ws.out, ['1', '2', '4', '5']);
    const bySubject = (s: string) => live.find((e) => e.subject === s)!;
    expect(bySubject('2').data).toEqual({ id: 2, status: 'new', ref: 'ORD-2' });
    expect(bySubject('4').data).toEqual({ id: 4, status: 'shipped', ref: 'ORD-4' });

    // What an operator sees: table, LSN, transaction, field and reason.
    const reason = 'status: "X" is not in the code table (N, S) and the field has no default';
    const lsn = entry.record.position;
    expect(line).toContain(`${PIPELINE}/mapping  FERRY_CONTRACT_VIOLATION`);
    expect(line).toContain(`public.orders @ ${lsn} xid ${xid}`);
    expect(line).toContain(reason);
    expect(entry.location).toBe(`public.orders @ ${lsn} xid ${xid}`);
    expect(entry.reason).toBe(reason);
    expect(entry.violations).toEqual([{ field: 'status', message: '"X" is not in the code table (N, S) and the field has no default' }]);
    expect(entry.record).toMatchObject({ origin: { kind: 'table', name: 'public.orders' }, op: 'c', data: { id: 3, status: 'X', ref: 'ORD-3' }, txid: xid });
    // The position is the bad row's own: inside the WAL written by its INSERT, between its neighbours' positions.
    expect(lsnValue(lsn) >= bounds.from && lsnValue(lsn) < bounds.to, `${lsn} within the bad INSERT's WAL`).toBe(true);
    expect(lsnValue(bySubject('2').ferryposition) < lsnValue(lsn) && lsnValue(lsn) < lsnValue(bySubject('4').ferryposition)).toBe(true);
    // Its change id is the stream's: <commit LSN>:<n>, between its neighbours' (whose event ids the agent made from theirs).
    const m = /^(.+):(\d+)$/.exec(entry.record.changeId)!;
    expect(m).not.toBeNull();
    const [commitLsn, n] = [m[1]!, Number(m[2])];
    expect(bySubject('2').id).toBe(eventId(PIPELINE, 'order', `${commitLsn}:${n - 1}`));
    expect(bySubject('4').id).toBe(eventId(PIPELINE, 'order', `${commitLsn}:${n + 1}`));

    // Fix the mapping, replay: delivered as the stream would have delivered it.
    editMapping(ws.mapping, '{ N: new, S: shipped }', '{ N: new, S: shipped, X: cancelled }');
    const replayed = await replayAndDrain(ws.config, ws.out, '3');
    expect(replayed).toMatchObject({
      id: eventId(PIPELINE, 'order', entry.record.changeId),
      type: 'order.created',
      ferryop: 'c',
      ferryposition: lsn,
      ferrytxid: xid,
      time: bySubject('2').time,
      data: { id: 3, status: 'cancelled', ref: 'ORD-3' },
    });
    expect(await agent.stop()).toBe(0);
    expectEachOnce(ws.out, ['1', '2', '3', '4', '5']);
  }, 480_000); // the waits (120 + 120 + 60 + 120 s), the database set-up and six CLI runs

  it('mysql-cdc: a ref breaking the contract pattern is dead-lettered with db.table, binlog file:pos and field; fixed and replayed, it arrives with its stream id', async () => {
    const fx: MysqlFixture = await createFixture('cdcdlq');
    cleanups.push(() => fx.drop());
    const table = `${fx.database}.orders`;
    await fx.root.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, status VARCHAR(8) NOT NULL, ref VARCHAR(32) NOT NULL); INSERT INTO ${table} VALUES (1, 'N', 'ORD-1')`);
    const ws = workspace('cdcdlq-my', table, `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${30_000 + Math.floor(Math.random() * 1000)}
      tables: [${table}]
      snapshot: initial`);
    const agent = await startStreaming(ws.config, ws.out);

    // One INSERT each, so the three rows have three row events and three positions.
    const masterStatus = async () => {
      const [[row]] = await fx.root.query<RowDataPacket[]>('SHOW MASTER STATUS');
      return { file: String(row!.File), pos: Number(row!.Position) };
    };
    const before = await masterStatus();
    await fx.root.query(`START TRANSACTION;
      INSERT INTO ${table} VALUES (2, 'N', 'ORD-2');
      INSERT INTO ${table} VALUES (3, 'S', 'ord-3');
      INSERT INTO ${table} VALUES (4, 'S', 'ORD-4');
      COMMIT`);
    const [[{ gtid }]] = (await fx.root.query<RowDataPacket[]>('SELECT @@last_gtid AS gtid')) as unknown as [[{ gtid: string }]];
    const after = await masterStatus();
    await fx.root.query(`INSERT INTO ${table} VALUES (5, 'S', 'ORD-5')`);

    const { line, entry } = await deadLetterOf(agent, ws.config, ws.out, ['1', '2', '4', '5']);
    const live = expectEachOnce(ws.out, ['1', '2', '4', '5']);
    const bySubject = (s: string) => live.find((e) => e.subject === s)!;
    expect(bySubject('2').data).toEqual({ id: 2, status: 'new', ref: 'ORD-2' });
    expect(bySubject('4').data).toEqual({ id: 4, status: 'shipped', ref: 'ORD-4' });

    const reason = 'ref: "ord-3" does not match the pattern ^ORD-[0-9]+$';
    const position = entry.record.position;
    expect(line).toContain(`${PIPELINE}/mapping  FERRY_CONTRACT_VIOLATION`);
    expect(line).toContain(`${table} @ ${position}`);
    expect(line).toContain(reason);
    expect(entry.location).toBe(`${table} @ ${position}`);
    expect(entry.reason).toBe(reason);
    expect(entry.violations).toEqual([{ field: 'ref', message: '"ord-3" does not match the pattern ^ORD-[0-9]+$' }]);
    expect(entry.record).toMatchObject({ origin: { kind: 'table', name: table }, op: 'c', data: { id: 3, status: 'S', ref: 'ord-3' }, txid: gtid });
    // The position is real: inside what the transaction wrote, the start of a row event, between its neighbours'.
    const at = binlogPosition(position);
    expect(comparePosition(before, at)).toBeLessThan(0);
    expect(comparePosition(at, after)).toBeLessThan(0);
    const [events] = await fx.root.query<RowDataPacket[]>(`SHOW BINLOG EVENTS IN '${at.file}' FROM ${at.pos} LIMIT 1`);
    expect(events[0]).toMatchObject({ Pos: at.pos, Event_type: expect.stringMatching(/^Write_rows/) });
    expect(comparePosition(binlogPosition(bySubject('2').ferryposition), at)).toBeLessThan(0);
    expect(comparePosition(at, binlogPosition(bySubject('4').ferryposition))).toBeLessThan(0);
    // Its change id is the stream's, <file:pos>:<row>, as its neighbours' event ids were made.
    expect(entry.record.changeId).toBe(`${position}:0`);
    expect(bySubject('2').id).toBe(eventId(PIPELINE, 'order', `${bySubject('2').ferryposition}:0`));
    expect(bySubject('4').id).toBe(eventId(PIPELINE, 'order', `${bySubject('4').ferryposition}:0`));

    editMapping(ws.mapping, 'ref:    { from: ref }', 'ref:    { from: ref, case: upper }');
    const replayed = await replayAndDrain(ws.config, ws.out, '3');
    expect(replayed).toMatchObject({
      id: eventId(PIPELINE, 'order', entry.record.changeId),
      type: 'order.created',
      ferryop: 'c',
      ferryposition: position,
      ferrytxid: gtid,
      time: entry.record.time,
      data: { id: 3, status: 'shipped', ref: 'ORD-3' },
    });
    expect(await agent.stop()).toBe(0);
    expectEachOnce(ws.out, ['1', '2', '3', '4', '5']);
  }, 480_000); // the waits (120 + 120 + 60 + 120 s), the database set-up and six CLI runs
});
