import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, runFerry, tempWorkspace, uniquePrefix, writeFile } from '../support/agent-process.js';

/**
 * A source that finds a config mistake only once it talks to its system
 * raises a ConfigError naming just `ferry.yaml` and `source.tables` (the
 * mysql-cdc source does, for a table that does not exist). `ferry run`
 * reports it in the real configuration file, at the line of the entry, with
 * the pipeline's full path, and exits 2.
 */
describe('ferry run: a config mistake a source finds when it opens', () => {
  const database = `ferry_cfgerr_${randomBytes(3).toString('hex')}`;
  const prefix = uniquePrefix('cfgerr');
  let root: mysql.Connection;

  beforeAll(async () => {
    root = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
    await root.query(`CREATE DATABASE \`${database}\``);
    await root.query(`CREATE TABLE \`${database}\`.orders (id INT PRIMARY KEY, ref VARCHAR(20) NOT NULL)`);
  });
  afterAll(async () => {
    await root?.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => {});
    await root?.end();
    await deleteRedisPrefix(prefix);
  });

  it('mysql-cdc naming a table that does not exist: exit 2 at that entry of `tables` in the file given with --config', async () => {
    const dir = tempWorkspace('cfgerr');
    writeFile(join(dir, 'mappings/contracts/order.v1.schema.json'), JSON.stringify({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { id: { type: 'integer' } } }));
    writeFile(
      join(dir, 'mappings/orders.yaml'),
      `entity: order\ncontract: contracts/order.v1.schema.json\nmatch: { table: ${database}.orders }\nkey: [id]\nfields:\n  id: { from: id, type: integer, required: true }\n`,
    );
    // Not named ferry.yaml, so the report cannot be the source's hard-coded name.
    writeFile(
      join(dir, 'agent.yaml'),
      `agent: { id: cfgerr, dataDir: ./data, logLevel: error }
queue: { redis: "redis://127.0.0.1:6379", prefix: ${prefix} }
pipelines:
  - name: first
    source:
      type: file-drop
      path: ./inbox
      format: { type: jsonl }
    mappings: [mappings/orders.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/first.jsonl }
  - name: orders
    source:
      type: mysql-cdc
      connection: "mysql://root@127.0.0.1:3306/${database}"
      serverId: ${randomInt(100_000, 4_000_000)}
      tables:
        - ${database}.orders
        - ${database}.no_such_table
    mappings: [mappings/orders.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/orders.jsonl }
`,
    );
    writeFile(join(dir, 'inbox/.keep'), '');
    const { code, stderr } = await runFerry(['run', '--config', 'agent.yaml'], { cwd: dir });
    expect(stderr).toMatch(/^ferry: FERRY_CONFIG_INVALID: /m);
    expect(stderr).toContain(`  agent.yaml:19:11 (pipelines[1].source.tables[1]): table ${database}.no_such_table does not exist or the user may not read it`);
    expect(stderr).not.toMatch(/ferry\.yaml/);
    expect(code).toBe(2);
  }, 60_000);
});
