import { describe, expect, it } from 'vitest';
import { ConfigError, FerryError } from '../../agent/errors/index.js';
import { mysqlCdcSource } from '../../sources/mysql-cdc/index.js';
import { describeSource } from '../conformance/describe-source.js';
import { contextFor, createFixture, drain, masterStatus, sourceFor, uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

// ---------------------------------------------------------------------------
// The conformance suite against the real MariaDB: a fresh database and
// replication user per test; each produce() commits one insert per row, so
// batches of at most 5 rows end on transaction boundaries. `startAt` (the
// binlog end once the table exists) makes a source opened without a
// checkpoint read the same range again, as the suite's re-read test needs.

describeSource('mysql-cdc', {
  plugin: mysqlCdcSource,
  records: 25,
  async fixture() {
    const fx = await createFixture('conf');
    const table = `${fx.database}.items`;
    await fx.root.query(`CREATE TABLE ${table} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) NOT NULL)`);
    const start = await masterStatus(fx);
    return {
      config: { type: 'mysql-cdc', connection: fx.url, serverId: uniqueServerId(), tables: [table], snapshot: 'never', startAt: `${start.file}:${start.pos}`, maxBatchSize: 5 },
      env: { configDir: '.' },
      async produce(count) {
        for (let i = 0; i < count; i++) await fx.root.query(`INSERT INTO ${table} (v) VALUES (?)`, [`row ${i}`]);
      },
      teardown: () => fx.drop(),
    };
  },
  invalidConfigs: [
    { why: 'no tables', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 1 } },
    { why: 'unknown key', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 1, tables: ['a.b'], slot: 'x' } },
    { why: 'server id 0', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 0, tables: ['a.b'] } },
    { why: 'a table without its database', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 1, tables: ['b'] } },
    { why: 'unknown snapshot mode', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 1, tables: ['a.b'], snapshot: 'always' } },
    { why: 'startAt without a position', config: { type: 'mysql-cdc', connection: 'mysql://u@h/db', serverId: 1, tables: ['a.b'], startAt: 'mariadb-bin.000001' } },
  ],
});

// ---------------------------------------------------------------------------
// startAt specifics.

const [fx, t] = useFixture('start');

describe('mysql-cdc startAt', () => {
  it('streams from the given position on first start, and refuses it with a snapshot mode or a purged file', async () => {
    await fx.root.query(`CREATE TABLE ${t('s')} (id INT PRIMARY KEY)`);
    await fx.root.query(`INSERT INTO ${t('s')} VALUES (1)`);
    const at = await masterStatus(fx);
    await fx.root.query(`INSERT INTO ${t('s')} VALUES (2), (3)`);

    const source = sourceFor(fx, { tables: [t('s')], startAt: `${at.file}:${at.pos}` });
    await source.open(undefined, contextFor());
    const { records } = await drain(source, (r) => r.length >= 2).finally(() => source.close());
    expect(records.map((r) => [r.op, r.data.id])).toEqual([['c', 2], ['c', 3]]);

    const withSnapshot = sourceFor(fx, { tables: [t('s')], startAt: `${at.file}:${at.pos}`, snapshot: 'initial' });
    await expect(withSnapshot.open(undefined, contextFor()).finally(() => withSnapshot.close())).rejects.toBeInstanceOf(ConfigError);
    const purged = sourceFor(fx, { tables: [t('s')], startAt: 'mariadb-bin.999999:4' });
    const err = await purged.open(undefined, contextFor()).finally(() => purged.close()).catch((e: unknown) => e);
    expect((err as FerryError).code).toBe('FERRY_SOURCE_POSITION_LOST');
    expect(uniqueServerId()).toBeGreaterThan(0);
  });
});
