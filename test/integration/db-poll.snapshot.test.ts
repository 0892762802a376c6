import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { checkpointKey } from '../../agent/queue/queue-names.js';
import { readJsonLines, runFerry, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';

/**
 * `ferry snapshot` on a db-poll pipeline, through the built CLI: the chosen
 * view's rows that meet --where arrive at the file sink as op `r` (delivered
 * by a `--role deliver` agent), with progress on stderr, and the pipeline's
 * stored position and diff state are left alone. Postgres and MariaDB.
 */

const suffix = randomBytes(4).toString('hex');
const redis = new Redis(6379, '127.0.0.1');
const prefixes: string[] = [];
const running: FerryProcess[] = [];

interface SnapshotDatabase {
  name: string;
  /** Creates views `v_x` (ids 1..50) and `v_other`; returns the connection URL and how view names are written. */
  setup(): Promise<{ url: string; view: (base: string) => string }>;
  teardown(): Promise<void>;
}

const PG_DB = `ferry_dbsnap_${suffix}`;
async function pgRun(db: string, sql: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

const MY_DB = `ferry_dbsnap_${suffix}`;
async function myRun(sqls: string[]): Promise<void> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
  try {
    for (const sql of sqls) await c.query(sql);
  } finally {
    await c.end();
  }
}

const databases: SnapshotDatabase[] = [
  {
    name: 'Postgres',
    async setup() {
      await pgRun('postgres', `CREATE DATABASE ${PG_DB}`);
      await pgRun(
        PG_DB,
        `CREATE SCHEMA erp;
         CREATE TABLE erp.x (id int PRIMARY KEY, name text NOT NULL, amount numeric(10,2) NOT NULL);
         INSERT INTO erp.x SELECT g, 'name ' || g, g * 1.5 FROM generate_series(1, 50) g;
         CREATE VIEW erp.v_x AS SELECT id, name, amount FROM erp.x;
         CREATE VIEW erp.v_other AS SELECT id FROM erp.x;`,
      );
      return { url: `postgres://postgres@127.0.0.1:5432/${PG_DB}`, view: (base) => `erp.${base}` };
    },
    teardown: () => pgRun('postgres', `DROP DATABASE IF EXISTS ${PG_DB} WITH (FORCE)`),
  },
  {
    name: 'MariaDB',
    async setup() {
      await myRun([
        `DROP DATABASE IF EXISTS ${MY_DB}`,
        `CREATE DATABASE ${MY_DB}`,
        `CREATE TABLE ${MY_DB}.x (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, amount DECIMAL(10,2) NOT NULL)`,
        `INSERT INTO ${MY_DB}.x SELECT seq, CONCAT('name ', seq), seq * 1.5 FROM ${MY_DB}.seq_1_to_50`,
        `CREATE VIEW ${MY_DB}.v_x AS SELECT id, name, amount FROM ${MY_DB}.x`,
        `CREATE VIEW ${MY_DB}.v_other AS SELECT id FROM ${MY_DB}.x`,
      ]);
      return { url: `mysql://root@127.0.0.1:3306/${MY_DB}`, view: (base) => `${MY_DB}.${base}` };
    },
    teardown: () => myRun([`DROP DATABASE IF EXISTS ${MY_DB}`]),
  },
];

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  redis.disconnect();
});

function workspace(url: string, view: (base: string) => string): { config: string; out: string; prefix: string; dir: string } {
  const dir = tempWorkspace('dbpoll-snapshot');
  const prefix = uniquePrefix('dbsnap');
  prefixes.push(prefix);
  writeFile(join(dir, 'mappings/contracts/any.v1.schema.json'), JSON.stringify({ type: 'object' }));
  for (const base of ['v_x', 'v_other']) {
    writeFile(
      join(dir, `mappings/${base}.yaml`),
      `entity: ${base.replace('v_', '')}
contract: contracts/any.v1.schema.json
match: { table: ${view(base)} }
key: [id]
fields:
  id:     { from: id, type: integer, required: true }
  name:   { from: name }
  amount: { from: amount }
`,
    );
  }
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent: { id: dbpoll-snapshot, dataDir: ./data, logLevel: warn }
queue: { redis: "redis://127.0.0.1:6379", prefix: ${prefix} }
pipelines:
  - name: erp
    source:
      type: db-poll
      connection: "${url}"
      every: 1h
      pageSize: 7
      views:
        - { name: ${view('v_x')}, mode: diff, key: [id] }
        - { name: ${view('v_other')}, mode: diff, key: [id] }
    mappings: [mappings/v_x.yaml, mappings/v_other.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
`,
  );
  return { config, out: join(dir, 'out/events.jsonl'), prefix, dir };
}

type Event = { id: string; type: string; subject: string; ferryop: string; data: Record<string, unknown> };

describe.each(databases)('ferry snapshot on a db-poll pipeline ($name)', (db) => {
  it('queues the chosen view\'s rows meeting --where as op r, with progress, leaving the stored position alone', async () => {
    const { url, view } = await db.setup();
    try {
      const ws = workspace(url, view);
      const stored = JSON.stringify({ views: { [view('v_x')]: { gen: 7 } } });
      await redis.set(checkpointKey(ws.prefix, 'erp'), stored);

      const snap = await runFerry(['snapshot', 'erp', '--config', ws.config, '-t', view('v_x'), '-w', "id > 10 AND name <> 'a?b' -- a comment"]);
      expect(snap.code, snap.stderr).toBe(0);
      expect(snap.stderr).toContain(`${view('v_x')} [`);
      expect(snap.stderr).toMatch(/40\/40 rows \(100%\)/);
      expect(snap.stderr).toMatch(/snapshot done: 40 rows read, 40 events queued for audit/);

      const deliver = startAgent(ws.config, { role: 'deliver' });
      running.push(deliver);
      await waitFor('40 events at the sink', () => readJsonLines(ws.out).length >= 40 || deliver.proc.exitCode !== null, 30_000, 100);
      await new Promise((r) => setTimeout(r, 300));
      expect(await deliver.stop()).toBe(0);

      const events = readJsonLines<Event>(ws.out);
      expect(events.map((e) => Number(e.subject)).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 11));
      expect(new Set(events.map((e) => e.id)).size).toBe(40);
      expect(new Set(events.map((e) => `${e.type}/${e.ferryop}`))).toEqual(new Set(['x.snapshot/r']));
      const first = events.find((e) => e.subject === '11')!;
      expect(first.data).toEqual({ id: 11, name: 'name 11', amount: '16.50' });

      // The condition is one expression: a `?` stays text (MySQL placeholders), a `--` comment ends at its line.
      // The pipeline's own position and diff state: untouched.
      expect(await redis.get(checkpointKey(ws.prefix, 'erp'))).toBe(stored);
      expect(existsSync(join(ws.dir, 'data/db-poll'))).toBe(false);

      // A second run is a new snapshot: new event ids.
      const again = await runFerry(['snapshot', 'erp', '--config', ws.config, '-t', view('v_x'), '-w', 'id = 11']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/snapshot done: 1 rows read, 1 events queued/);
    } finally {
      await db.teardown();
    }
  }, 60_000);

  it('refuses a --where with ";", an unknown view and a condition the database rejects, with exit 2', async () => {
    const { url, view } = await db.setup();
    try {
      const ws = workspace(url, view);
      const semicolon = await runFerry(['snapshot', 'erp', '--config', ws.config, '-w', 'id > 1; DELETE FROM x']);
      expect(semicolon.code).toBe(2);
      expect(semicolon.stderr).toMatch(/FERRY_USAGE[\s\S]*without ";"/);

      const unknown = await runFerry(['snapshot', 'erp', '--config', ws.config, '-t', view('v_nope')]);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain(view('v_other'));

      const badColumn = await runFerry(['snapshot', 'erp', '--config', ws.config, '-t', view('v_x'), '-w', 'no_such_column > 1']);
      expect(badColumn.code).toBe(2);
      expect(badColumn.stderr).toMatch(/FERRY_USAGE[\s\S]*no_such_column/);
    } finally {
      await db.teardown();
    }
  }, 60_000);
});
