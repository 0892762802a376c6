import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { dbPollSource } from '../../sources/db-poll/index.js';
import { describeSource, type SourceFixture } from '../conformance/describe-source.js';
import { pgQuery } from '../support/postgres.js';

/**
 * The source conformance suite for db-poll on a real Postgres, once per mode:
 * each fixture is a fresh table and view in one database made for this file;
 * produce() inserts rows (diff mode sees them as created).
 */

const DB = `ferry_dbpconf_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
let tables = 0;


beforeAll(() => pgQuery('postgres://postgres@127.0.0.1:5432/postgres', `CREATE DATABASE ${DB}`));
afterAll(() => pgQuery('postgres://postgres@127.0.0.1:5432/postgres', `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));

async function fixture(view: (name: string) => Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<SourceFixture> {
  const table = `t${++tables}`;
  await pgQuery(
    URL,
    `CREATE TABLE ${table} (id int PRIMARY KEY, updated_at timestamptz NOT NULL, name text NOT NULL);
     CREATE VIEW v_${table} AS SELECT id, updated_at, name FROM ${table};`,
  );
  let next = 1;
  return {
    config: { type: 'db-poll', connection: URL, every: '100ms', pageSize: 4, views: [view(`public.v_${table}`)], ...extra },
    env: { configDir: process.cwd() },
    async produce(count) {
      await pgQuery(URL, `INSERT INTO ${table} SELECT g, now(), 'row ' || g FROM generate_series(${next}, ${next + count - 1}) g`);
      next += count;
    },
    teardown: async () => void (await pgQuery(URL, `DROP VIEW v_${table}; DROP TABLE ${table}`)),
  };
}

const invalidConfigs = [
  { why: 'no views', config: { type: 'db-poll', connection: URL, views: [] } },
  { why: 'not a database URL', config: { type: 'db-poll', connection: 'http://x', views: [{ name: 'a.b', mode: 'diff', key: ['id'] }] } },
  { why: 'unknown mode', config: { type: 'db-poll', connection: URL, views: [{ name: 'a.b', mode: 'cdc', key: ['id'] }] } },
  { why: 'view without key', config: { type: 'db-poll', connection: URL, views: [{ name: 'a.b', mode: 'diff' }] } },
  { why: 'unknown field', config: { type: 'db-poll', connection: URL, interval: '5s', views: [{ name: 'a.b', mode: 'diff', key: ['id'] }] } },
  { why: 'bad interval', config: { type: 'db-poll', connection: URL, every: 'often', views: [{ name: 'a.b', mode: 'diff', key: ['id'] }] } },
];

describeSource('db-poll (incremental, Postgres)', {
  plugin: dbPollSource,
  fixture: () => fixture((name) => ({ name, mode: 'incremental', cursor: ['updated_at', 'id'], key: ['id'] }), { lookBackMs: 60_000 }),
  invalidConfigs,
});

describeSource('db-poll (diff, Postgres)', {
  plugin: dbPollSource,
  fixture: () => fixture((name) => ({ name, mode: 'diff', key: ['id'] })),
  invalidConfigs,
});
