import { expect } from 'vitest';
import { join } from 'node:path';
import { countLines, readJsonLines, startAgent, tempWorkspace, waitFor, writeFile, type FerryProcess } from './agent-process.js';

/**
 * The bookkeeping of the CDC end-to-end tests: what a committed change looks
 * like at the sink (independent of LSNs and binlog positions), and the checks
 * that every one arrived, in per-key order, with duplicates only as exact
 * repeats.
 */

export type RowEvent = { id: string; type: string; subject: string; ferryop: string; ferrytxid?: string; data: { id: number; version?: number | null; note?: string | null } };
export type Op = 'c' | 'u' | 'd' | 'r';

export function identity(table: string, id: number, op: Op, version?: number): string {
  return op === 'd' ? `${table}/${id}/d` : `${table}/${id}/${op}/${version}`;
}

/** Events of entity `order` come from table `orders`, `customer` from `customers`. */
export function identityOf(e: RowEvent): string {
  const [entity, what] = e.type.split('.') as [string, string];
  const op = ({ created: 'c', updated: 'u', deleted: 'd', snapshot: 'r' } as Record<string, Op>)[what]!;
  return identity(`${entity}s`, e.data.id, op, e.data.version ?? undefined);
}

/** How many expected changes the sink does not have yet. */
export function missingAt(out: string, expected: ReadonlySet<string>): number {
  const seen = new Set(readJsonLines<RowEvent>(out).map(identityOf));
  let n = 0;
  for (const e of expected) if (!seen.has(e)) n++;
  return n;
}

/**
 * Kills the agent with SIGKILL at random moments (2–6 s apart) and starts it
 * again, at least `min` and at most `max` times, until `finished()`.
 */
export async function killAndRestart(
  config: string,
  first: FerryProcess,
  running: FerryProcess[],
  finished: () => boolean,
  opts: { min?: number; max?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ agent: FerryProcess; killsMidWorkload: number }> {
  const { min = 3, max = 4, env } = opts;
  let agent = first;
  let killsMidWorkload = 0;
  for (let kills = 0; kills < max && (!finished() || kills < min); kills++) {
    await new Promise((r) => setTimeout(r, 2000 + Math.random() * 4000));
    if (!finished()) killsMidWorkload++;
    await agent.kill();
    agent = startAgent(config, { env });
    running.push(agent);
  }
  return { agent, killsMidWorkload };
}

/**
 * The CDC end-to-end scenario: starts the agent, waits for the initial
 * snapshot of `tables` × `seedRows` seed rows (op r, version 1) at the sink,
 * then runs `workload` while the agent is SIGKILLed and restarted. Returns
 * the agent now running and every change that must reach the sink.
 */
export async function snapshotThenWorkloadThroughKills(opts: {
  config: string;
  out: string;
  running: FerryProcess[];
  tables: readonly string[];
  seedRows: number;
  workload: () => Promise<Set<string>>;
}): Promise<{ agent: FerryProcess; expected: Set<string> }> {
  const { config, out, running, tables, seedRows } = opts;
  let agent = startAgent(config);
  running.push(agent);
  const seeded = tables.length * seedRows;
  await waitFor('the initial snapshot at the sink', () => readJsonLines<RowEvent>(out).filter((e) => e.type.endsWith('.snapshot')).length >= seeded || agent.proc.exitCode !== null, 60_000, 200);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();

  let finished = false;
  const expectedPromise = opts.workload().finally(() => (finished = true));
  const killed = await killAndRestart(config, agent, running, () => finished);
  agent = killed.agent;
  const expected = await expectedPromise;
  // At least one kill must hit the agent while changes were still being committed and streamed, not only a caught-up one.
  expect(killed.killsMidWorkload).toBeGreaterThan(0);
  for (let id = 1; id <= seedRows; id++) for (const t of tables) expected.add(identity(t, id, 'r', 1));
  return { agent, expected };
}

/**
 * The database-restart scenario: the initial snapshot, then a backlog of
 * changes written while the agent is stopped, then the server restarted
 * while the agent is reading that backlog (its first streamed events at the
 * sink, far from all of them), then more changes once the server is back.
 * Returns the agent (still the same process: it must not exit) and every
 * change that must reach the sink.
 */
export async function backlogThroughServerRestart(opts: {
  config: string;
  out: string;
  running: FerryProcess[];
  tables: readonly string[];
  seedRows: number;
  workload: (changes: number, firstNewId: number) => Promise<Set<string>>;
  restartServer: () => Promise<void>;
}): Promise<{ agent: FerryProcess; expected: Set<string>; atRestart: number }> {
  const { config, out, running, tables, seedRows } = opts;
  const seeded = tables.length * seedRows;
  const first = startAgent(config);
  running.push(first);
  await waitFor('the initial snapshot at the sink', () => countLines(out) >= seeded || first.proc.exitCode !== null, 60_000, 200);
  expect(await first.stop()).toBe(0);

  const expected = await opts.workload(150_000, 1001);
  const agent = startAgent(config);
  running.push(agent);
  await waitFor('the first streamed events at the sink', () => countLines(out) > seeded || agent.proc.exitCode !== null, 60_000, 20);
  const atRestart = countLines(out) - seeded;
  await opts.restartServer();
  for (const e of await opts.workload(20_000, 500_000)) expected.add(e);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  for (let id = 1; id <= seedRows; id++) for (const t of tables) expected.add(identity(t, id, 'r', 1));
  return { agent, expected, atRestart };
}

/** Waits for every expected change, stops the agent, and checks order, rollbacks and duplicates. */
export async function expectAllDelivered(agent: FerryProcess, out: string, expected: ReadonlySet<string>): Promise<void> {
  await waitFor('every committed change at the sink', () => missingAt(out, expected) === 0 || agent.proc.exitCode !== null, 240_000, 1000).catch((err: Error) => {
    const missing = [...expected].filter((e) => !new Set(readJsonLines<RowEvent>(out).map(identityOf)).has(e));
    throw new Error(`${err.message}: ${missing.length} missing, e.g. ${missing.slice(0, 5).join(', ')}; agent stderr: ${agent.stderr().slice(-3000)}`);
  });
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  expect(await agent.stop()).toBe(0);
  const events = readJsonLines<RowEvent>(out);
  expect(missingAt(out, expected)).toBe(0);
  expect(events.some((e) => e.data.note === 'rolled-back')).toBe(false);
  // Streamed changes name their transaction; snapshot reads have none.
  expect(events.filter((e) => (e.ferryop === 'r') === (e.ferrytxid !== undefined)).slice(0, 3)).toEqual([]);
  // Per-key order: the first delivery of each event, per key, has rising versions and a delete last.
  expect(perKeyOutOfOrder(events)).toBe(0);
  // Duplicates after a kill are the same events again, with the same ids.
  expect(new Set(events.map(identityOf)).size).toBe(new Set(events.map((e) => e.id)).size);
}

/**
 * A snapshot taken while the tables are being written: the agent starts on
 * `seedRows` rows a table and `workload` (chunks of changes, each with its new
 * ids from `firstNewId` on) runs from the first moment, in chunks until at least
 * `changes` are committed and at least one chunk was committed while the sink
 * still lacked part of the snapshot. Then a consumer replaying the sink must
 * end with the tables as they are, and per-key order must hold.
 */
export async function snapshotWhileWriting(opts: {
  config: string;
  out: string;
  running: FerryProcess[];
  seedRows: number;
  tableCount: number;
  changes: number;
  workload: (changes: number, firstNewId: number) => Promise<Set<string>>;
  tables: () => Promise<TableRows>;
}): Promise<void> {
  const agent = startAgent(opts.config);
  opts.running.push(agent);
  const snapshotAtSink = () => readJsonLines<RowEvent>(opts.out).filter((e) => e.type.endsWith('.snapshot')).length;
  const seeded = opts.tableCount * opts.seedRows;
  let committed = 0;
  let chunksDuringSnapshot = 0;
  for (let chunk = 0; committed < opts.changes || chunksDuringSnapshot === 0; chunk++) {
    expect(chunk, 'no chunk of changes was committed while the snapshot was still on its way').toBeLessThan(200);
    // A chunk inserts fewer than 2,000 new ids a table; its updates and deletes reach the seed rows and earlier chunks.
    committed += (await opts.workload(1000, opts.seedRows + 1 + chunk * 2000)).size;
    if (snapshotAtSink() < seeded) chunksDuringSnapshot++;
  }
  const tables = await opts.tables();
  await waitFor('the sink replayed to the tables', () => replayDifferences(replayedTables(opts.out), tables).length === 0 || agent.proc.exitCode !== null, 180_000, 1000).catch((err: Error) => {
    throw new Error(`${err.message}: ${replayDifferences(replayedTables(opts.out), tables).join('; ')}; agent stderr: ${agent.stderr().slice(-2000)}`);
  });
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  expect(await agent.stop()).toBe(0);
  const events = readJsonLines<RowEvent>(opts.out);
  expect(perKeyOutOfOrder(events)).toBe(0);
  expect(events.some((e) => e.data.note === 'rolled-back')).toBe(false);
}

/** Events whose key already had a newer version at the sink (first deliveries only: a repeat after a kill is the same change again). */
export function perKeyOutOfOrder(events: readonly RowEvent[]): number {
  const firstSeen = new Set<string>();
  const lastVersion = new Map<string, number>();
  let outOfOrder = 0;
  for (const e of events) {
    if (firstSeen.has(e.id)) continue;
    firstSeen.add(e.id);
    const key = `${e.type.split('.')[0]}/${e.subject}`;
    const v = e.type.endsWith('.deleted') ? Number.MAX_SAFE_INTEGER : (e.data.version ?? 0);
    if ((lastVersion.get(key) ?? 0) > v) outOfOrder++;
    lastVersion.set(key, v);
  }
  return outOfOrder;
}

/** A row as the end-to-end tables hold it, keyed `table/id`. */
export type TableRows = Map<string, { version: number; note: string }>;

/**
 * The tables a consumer rebuilds by applying the sink's events in the order
 * they arrived (snapshot reads, inserts and updates set the row, deletes
 * remove it; a repeat after a kill applies the same change again).
 */
export function replayedTables(out: string): TableRows {
  const rows: TableRows = new Map();
  for (const e of readJsonLines<RowEvent>(out)) {
    const key = `${e.type.split('.')[0]}s/${e.data.id}`;
    if (e.type.endsWith('.deleted')) rows.delete(key);
    else rows.set(key, { version: e.data.version ?? 0, note: e.data.note ?? '' });
  }
  return rows;
}

/** The rows where the replay of the sink and the tables disagree (at most `limit`), as `key: table … replay …`. */
export function replayDifferences(replay: TableRows, tables: TableRows, limit = 5): string[] {
  const out: string[] = [];
  for (const key of new Set([...replay.keys(), ...tables.keys()])) {
    const a = JSON.stringify(tables.get(key) ?? null);
    const b = JSON.stringify(replay.get(key) ?? null);
    if (a !== b) out.push(`${key}: table ${a}, replay ${b}`);
    if (out.length >= limit) break;
  }
  return out;
}

/** The contract and mapping fields of the CDC end-to-end workloads' rows. */
const ROW_CONTRACT = { name: 'row', properties: { id: { type: 'integer' }, version: { type: ['integer', 'null'] }, note: { type: ['string', 'null'] } } };
const ROW_FIELDS = `  id:      { from: id, type: integer, required: true }
  version: { from: version, type: integer }
  note:    { from: note }
`;

/**
 * The workspace of a CDC end-to-end test: a contract (by default the row
 * contract, fields id/version/note), one mapping per table (by default those
 * fields), and a ferry.yaml with the given source block, the shared Redis
 * under `prefix`, and a file sink.
 */
export function rowPipelineWorkspace(opts: {
  name: string;
  prefix: string;
  /** The agent's log level; the default leaves the config's own default. */
  logLevel?: string;
  /** `host:port` of the admin HTTP server (/metrics...); none: no admin server. */
  admin?: string;
  /** The Redis URL of the queue; the default is the shared Redis on 6379. */
  redis?: string;
  /** Mapping file → entity → the table it matches, and its `fields:` lines (default: id/version/note). */
  tables: Array<{ mapping: string; entity: string; table: string; fields?: string }>;
  /** The contract every mapping checks against: `contracts/NAME.v1.schema.json` requiring `id`, with these properties and no others. */
  contract?: { name: string; properties: Record<string, unknown> };
  source: string;
  /** The pipeline's `delivery:` value; the default leaves the config's own default. */
  delivery?: string;
}): { dir: string; config: string; out: string } {
  const dir = tempWorkspace(opts.name);
  const contract = opts.contract ?? ROW_CONTRACT;
  writeFile(
    join(dir, `mappings/contracts/${contract.name}.v1.schema.json`),
    JSON.stringify({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      required: ['id'],
      additionalProperties: false,
      properties: contract.properties,
    }),
  );
  for (const t of opts.tables) {
    writeFile(
      join(dir, `mappings/${t.mapping}.yaml`),
      `entity: ${t.entity}
contract: contracts/${contract.name}.v1.schema.json
match: { table: ${t.table} }
key: [id]
fields:
${t.fields ?? ROW_FIELDS}`,
    );
  }
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent: { id: ${opts.name}, dataDir: ./data${opts.logLevel ? `, logLevel: ${opts.logLevel}` : ''}${opts.admin ? `, admin: { listen: "${opts.admin}" }` : ''} }
queue: { redis: "${opts.redis ?? 'redis://127.0.0.1:6379'}", prefix: ${opts.prefix} }
pipelines:
  - name: shop
    source:
${opts.source.trimEnd()}
    mappings: [${opts.tables.map((t) => `mappings/${t.mapping}.yaml`).join(', ')}]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
${opts.delivery ? `    delivery: ${opts.delivery}\n` : ''}`,
  );
  return { dir, config, out: join(dir, 'out/events.jsonl') };
}

/**
 * A `source:` block as the docs write it, moved under a pipeline: the
 * `source:` line dropped and the rest indented, ready for
 * `rowPipelineWorkspace`'s `source`.
 */
export function underPipeline(block: string): string {
  return block.split('\n').slice(1).map((l) => (l ? `    ${l}` : l)).join('\n');
}

/** The two tables of the CDC end-to-end tests: `orders` → order, `customers` → customer. */
export function ordersAndCustomers(qualify: (table: string) => string): Array<{ mapping: string; entity: string; table: string }> {
  return [
    { mapping: 'orders', entity: 'order', table: qualify('orders') },
    { mapping: 'customers', entity: 'customer', table: qualify('customers') },
  ];
}

/** The delivery settings of the CDC end-to-end tests: small, quick batches over four partitions. */
export const E2E_DELIVERY = '{ partitions: 4, batch: { maxEvents: 500, maxWaitMs: 20 } }';

type Row = { id: number; version: number };

/** One database's statements for `mixedWorkload`; each returns the rows it touched. */
export interface WorkloadDialect {
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Inserts ids `from`..`to` with version 1 and this note. */
  insert(table: string, from: number, to: number, note: string): Promise<Row[]>;
  /** Bumps the version and sets the note of ids `lo`..`hi`. */
  update(table: string, lo: number, hi: number, note: string): Promise<Row[]>;
  /** Deletes the ids in `lo`..`hi` divisible by 7. */
  delete(table: string, lo: number, hi: number): Promise<Row[]>;
}

/**
 * A mixed workload over `orders` and `customers` (seeded with ids 1–1000):
 * each transaction inserts, updates or deletes a range of rows of one table,
 * one in twenty is an update that is rolled back (note `rolled-back`).
 * Returns the identities of the committed changes.
 */
export async function mixedWorkload(db: WorkloadDialect, changes: number, firstNewId = 1001): Promise<Set<string>> {
  const expected = new Set<string>();
  const nextId: Record<string, number> = { orders: firstNewId, customers: firstNewId };
  let done = 0;
  for (let tx = 1; done < changes; tx++) {
    const t = tx % 2 ? 'customers' : 'orders';
    const rollback = tx % 20 === 0;
    const kind = rollback ? 'update' : (['insert', 'insert', 'update', 'update', 'delete'] as const)[tx % 5]!;
    const lo = 1 + Math.floor(Math.random() * Math.max(1, nextId[t]! - 200));
    await db.begin();
    let rows: Row[];
    if (kind === 'insert') {
      const from = nextId[t]!;
      nextId[t] = from + 150;
      rows = await db.insert(t, from, from + 149, `tx${tx}`);
    } else if (kind === 'update') {
      rows = await db.update(t, lo, lo + 149, rollback ? 'rolled-back' : `tx${tx}`);
    } else {
      rows = await db.delete(t, lo, lo + 149);
    }
    if (rollback) {
      await db.rollback();
      continue;
    }
    await db.commit();
    for (const r of rows) expected.add(identity(t, r.id, kind === 'insert' ? 'c' : kind === 'update' ? 'u' : 'd', r.version));
    done += rows.length;
  }
  return expected;
}
