import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { connectionOptions } from './connection.js';
import { MysqlCdcSource, mysqlCdcSource } from './index.js';

const validate = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }).compile(mysqlCdcSource.config);
const reference = {
  type: 'mysql-cdc',
  connection: 'mysql://repl:s3cret@127.0.0.1:3306/shop',
  serverId: 4711,
  tables: ['shop.orders', 'shop.customers'],
  snapshot: 'initial',
};

describe('mysql-cdc config', () => {
  it('accepts the reference configuration and fills in the defaults', () => {
    const config = structuredClone(reference);
    expect(validate(config)).toBe(true);
    expect(config).toMatchObject({ snapshotChunkSize: 5000, maxBatchSize: 500, maxBufferedEvents: 1000, retentionToleranceHours: 72 });
    expect(mysqlCdcSource.create(config as never, { configDir: '.' })).toBeInstanceOf(MysqlCdcSource);
  });

  it('rejects unknown keys, tables without a database, a bad snapshot mode, server id 0 and a startAt without a position', () => {
    for (const bad of [
      { ...reference, tabels: ['shop.orders'] },
      { ...reference, tables: ['orders'] },
      { ...reference, snapshot: 'always' },
      { ...reference, serverId: 0 },
      { ...reference, tables: [] },
      { ...reference, startAt: 'mariadb-bin.000001' },
    ]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('describes every field, for the generated docs', () => {
    for (const [name, field] of Object.entries(mysqlCdcSource.config.properties)) {
      expect((field as { description?: string }).description, name).toBeTruthy();
    }
  });

  it('refuses a connection that is not a mysql:// URL, without echoing it', () => {
    expect(() => mysqlCdcSource.create({ ...reference, connection: 'postgres://u:topsecret@h/db' } as never, { configDir: '.' })).toThrow(/must start with mysql:\/\//);
    try {
      mysqlCdcSource.create({ ...reference, connection: 'postgres://u:topsecret@h/db' } as never, { configDir: '.' });
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('topsecret');
    }
  });

  it('reads user, password, host and port from the URL, also with an unencoded secret in it', () => {
    expect(connectionOptions('mysql://repl:s3cret@db.local:3307/shop')).toMatchObject({ user: 'repl', password: 's3cret', host: 'db.local', port: 3307 });
    expect(connectionOptions('mysql://repl:p%40ss%2Fw@127.0.0.1/shop')).toMatchObject({ password: 'p@ss/w', port: 3306 });
    expect(connectionOptions('mysql://repl:a#b?c/d@e%@127.0.0.1:3306/shop')).toMatchObject({ user: 'repl', password: 'a#b?c/d@e%', host: '127.0.0.1' });
    expect(connectionOptions('mysql://root@[::1]:3306')).toMatchObject({ user: 'root', password: '', host: '::1' });
  });
});
