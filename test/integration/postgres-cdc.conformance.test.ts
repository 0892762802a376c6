import { postgresCdcSource } from '../../sources/postgres-cdc/index.js';
import { describeSource } from '../conformance/describe-source.js';
import { TestDatabase } from './postgres-cdc.helpers.js';

// The conformance suite against the real Postgres: a fresh database (with its
// own slot and publication) per test; each produce() commits one insert per
// row, so batches of 5 end on transaction boundaries. `snapshot: never` makes
// the first open create the slot before anything is produced, and a second
// open without a checkpoint stream again from the slot's unmoved position,
// as the suite's re-read test needs.

const base = { type: 'postgres-cdc', connection: 'postgres://u@h/db', publication: 'p', slot: 's', tables: ['public.t'] };

describeSource('postgres-cdc', {
  plugin: postgresCdcSource,
  records: 25,
  async fixture() {
    const db = await new TestDatabase().create();
    await db.sql(`CREATE TABLE public.items (id serial PRIMARY KEY, v text NOT NULL)`);
    return {
      config: { type: 'postgres-cdc', connection: db.url, publication: 'ferry_conf', slot: `${db.name}_slot`, tables: ['public.items'], snapshot: 'never', batchSize: 5, heartbeatMs: 500 },
      env: { configDir: '.' },
      async produce(count) {
        for (let i = 0; i < count; i++) await db.sql(`INSERT INTO public.items (v) VALUES ($1)`, [`row ${i}`]);
      },
      teardown: () => db.drop(),
    };
  },
  invalidConfigs: [
    { why: 'no tables', config: { ...base, tables: undefined } },
    { why: 'empty tables', config: { ...base, tables: [] } },
    { why: 'unknown key', config: { ...base, serverId: 1 } },
    { why: 'a table without its schema', config: { ...base, tables: ['orders'] } },
    { why: 'a slot name Postgres refuses', config: { ...base, slot: 'Ferry-Slot' } },
    { why: 'unknown snapshot mode', config: { ...base, snapshot: 'always' } },
    { why: 'batchSize 0', config: { ...base, batchSize: 0 } },
    { why: 'heartbeat below 100 ms', config: { ...base, heartbeatMs: 10 } },
  ],
});
