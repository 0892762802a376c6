import { Type, type Static } from '@sinclair/typebox';

const identifier = '^[a-z_][a-z0-9_]*$';

/** The `source:` entry of type `postgres-cdc`; docs/sources/postgres-cdc.md describes the same fields. */
export const PostgresCdcConfig = Type.Object(
  {
    type: Type.Literal('postgres-cdc', { description: 'Change data capture from PostgreSQL logical replication (pgoutput).' }),
    connection: Type.String({
      minLength: 1,
      description:
        'libpq connection URL of the database to capture. The role needs the REPLICATION attribute and SELECT on the tables; put the password in `${env:NAME}`.',
      examples: ['postgres://ferry:${env:PG_PASSWORD}@127.0.0.1:5432/shop'],
    }),
    publication: Type.String({
      pattern: identifier,
      description: 'Publication to read. Created `FOR TABLE <tables>` when missing (the role must be a superuser, or own every table and have CREATE on the database); used as is when it exists.',
      examples: ['ferry_shop'],
    }),
    slot: Type.String({
      pattern: identifier,
      description: 'Logical replication slot that holds Ferry\'s position. Created (plugin pgoutput) when missing. One slot per pipeline: two agents on one slot is an error.',
      examples: ['ferry_shop'],
    }),
    tables: Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_$]*\\.[A-Za-z_][A-Za-z0-9_$]*$' }), {
      minItems: 1,
      uniqueItems: true,
      description: 'Tables to capture, as `schema.table`. Mappings match records by the same names.',
      examples: [['public.orders', 'public.customers']],
    }),
    snapshot: Type.Optional(
      Type.Union([Type.Literal('initial'), Type.Literal('never'), Type.Literal('when_needed')], {
        default: 'initial',
        description:
          '`initial`: on first start, emit every existing row (op `r`) from a snapshot consistent with the stream, then stream. `never`: stream only. `when_needed`: like `initial`, and also re-snapshot when the slot was dropped or lost instead of stopping with FERRY_SOURCE_POSITION_LOST.',
      }),
    ),
    snapshotChunkSize: Type.Optional(
      Type.Integer({ minimum: 1, default: 10000, description: 'Rows per snapshot chunk (one key-ordered query, one batch). A crash resumes after the last durable chunk.' }),
    ),
    batchSize: Type.Optional(Type.Integer({ minimum: 1, default: 1000, description: 'Most changes in one batch handed to the queue while streaming.' })),
    heartbeatMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        default: 10000,
        description:
          'How often Ferry reports its durable position to the server and, when idle, moves it to the server\'s WAL end, so an idle or filtered database does not pin WAL. Also the slot lag sampling interval.',
      }),
    ),
    heartbeatQuery: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Optional statement run every heartbeatMs while streaming, e.g. an UPDATE of a one-row heartbeat table that is in the publication; for databases where the captured tables are idle but others are busy. The only write Ferry ever makes, and only when you set it.',
        examples: ["UPDATE ferry.heartbeat SET ts = now()"],
      }),
    ),
  },
  {
    additionalProperties: false,
    title: 'postgres-cdc source',
    description: 'Streams inserts, updates, deletes and truncates of the listed tables from a logical replication slot, after an optional consistent snapshot.',
  },
);

export type PostgresCdcConfig = Static<typeof PostgresCdcConfig>;

/** The config with every default applied. */
export type ResolvedConfig = Required<Omit<PostgresCdcConfig, 'heartbeatQuery'>> & { heartbeatQuery?: string };

export function resolveConfig(config: PostgresCdcConfig): ResolvedConfig {
  return {
    ...config,
    snapshot: config.snapshot ?? 'initial',
    snapshotChunkSize: config.snapshotChunkSize ?? 10000,
    batchSize: config.batchSize ?? 1000,
    heartbeatMs: config.heartbeatMs ?? 10000,
  };
}

/** `public.orders` → `"public"."orders"`. */
export function quoteTable(table: string): string {
  const dot = table.indexOf('.');
  return `${quoteIdent(table.slice(0, dot))}.${quoteIdent(table.slice(dot + 1))}`;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
