import { Type } from '@sinclair/typebox';
import { defineSource } from '../../agent/plugin/define.js';
import { MysqlCdcSource } from './mysql-cdc-source.js';

/** The `source:` entry of a mysql-cdc pipeline. Every field is documented; docs/sources/mysql-cdc.md explains them in context. */
export const MysqlCdcConfigSchema = Type.Object(
  {
    type: Type.Literal('mysql-cdc', { description: 'Change data capture from the row-based binlog of MariaDB (10.5+) or MySQL (8.0+).' }),
    connection: Type.String({
      minLength: 1,
      description:
        'URL of the server: mysql://user:password@host:port/database. The user needs REPLICATION SLAVE, REPLICATION CLIENT (MariaDB: BINLOG MONITOR) and SELECT on the tables. Put the password in a secret reference.',
      examples: ['mysql://repl:${env:REPL_PASSWORD}@127.0.0.1:3306/shop'],
    }),
    serverId: Type.Integer({
      minimum: 1,
      maximum: 4294967295,
      description: 'Replica server id this reader announces. Must differ from the server\'s own server_id and from every other replica and Ferry pipeline on the server.',
      examples: [4711],
    }),
    tables: Type.Array(Type.String({ pattern: '^[^.\\s]+\\.[^.\\s]+$', description: 'A table as database.table.' }), {
      minItems: 1,
      uniqueItems: true,
      description: 'Tables to capture, as database.table. Mappings match records by this name.',
      examples: [['shop.orders', 'shop.customers']],
    }),
    snapshot: Type.Optional(
      Type.Union([Type.Literal('initial'), Type.Literal('never'), Type.Literal('when_needed')], {
        default: 'initial',
        description:
          'initial: read every row once (op r) before streaming, on first start only. never: stream from the current end of the binlog. when_needed: like initial, and also re-snapshot when the saved binlog position was purged.',
      }),
    ),
    snapshotChunkSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000, default: 5000, description: 'Rows per snapshot query (keyset pages in primary-key order); progress is checkpointed after each.' })),
    maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'Most row changes handed to the queue in one batch.' })),
    maxBufferedEvents: Type.Optional(
      Type.Integer({ minimum: 10, maximum: 100000, default: 1000, description: 'Most binlog events decoded ahead of the queue, a row event counting once per row it carries; beyond it the binlog connection is paused, which bounds memory.' }),
    ),
    startAt: Type.Optional(
      Type.String({
        pattern: '^[^:\\s]+:\\d+$',
        description:
          'Binlog position file:pos (the start of an event, e.g. from SHOW MASTER STATUS) to stream from on first start, when no position is stored yet, instead of the current end. Needs snapshot: never. For replaying a known range.',
        examples: ['mariadb-bin.000042:4'],
      }),
    ),
    retentionToleranceHours: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, default: 72, description: 'How long the agent may be down; `ferry check` warns when the server keeps binlogs for less.' }),
    ),
  },
  { additionalProperties: false, description: 'mysql-cdc source' },
);

export const mysqlCdcSource = defineSource({
  type: 'mysql-cdc',
  summary: 'MariaDB / MySQL change data capture from the row-based binlog, with a consistent initial snapshot.',
  config: MysqlCdcConfigSchema,
  create: (config) =>
    new MysqlCdcSource({
      connection: config.connection,
      serverId: config.serverId,
      tables: config.tables,
      snapshot: config.snapshot ?? 'initial',
      snapshotChunkSize: config.snapshotChunkSize ?? 5000,
      maxBatchSize: config.maxBatchSize ?? 500,
      maxBufferedEvents: config.maxBufferedEvents ?? 1000,
      retentionToleranceHours: config.retentionToleranceHours ?? 72,
      ...(config.startAt !== undefined ? { startAt: config.startAt } : {}),
    }),
});

export { MysqlCdcSource, type MysqlCdcSettings } from './mysql-cdc-source.js';
export type { MysqlCdcCheckpoint } from './position.js';
