import { Type, type Static } from '@sinclair/typebox';

/** One view or table polled by the source. */
export const ViewSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      description: 'The view or table to poll, `schema.view` (Postgres) or `database.view` (MySQL). Mappings match records by this name.',
      examples: ['erp.v_open_orders'],
    }),
    mode: Type.Union([Type.Literal('incremental'), Type.Literal('diff')], {
      description:
        '`incremental`: read rows past a high-watermark cursor (needs a change column such as `updated_at`). `diff`: read the whole view and compare per-key row hashes with the previous poll, emitting inserts, updates and deletes.',
    }),
    cursor: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        minItems: 1,
        description:
          'incremental only: the cursor columns, most significant first, e.g. `[updated_at, order_no]`. The last columns must make the tuple unique so rows sharing a timestamp are never skipped. NOT NULL columns only.',
        examples: [['updated_at', 'order_no']],
      }),
    ),
    key: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'The columns that identify a row (NOT NULL). Diff mode orders and compares by them; both modes put them in the change id.',
      examples: [['order_no']],
    }),
    createdColumn: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'incremental only: a creation-time column. A row whose value here equals its first cursor column is emitted as `c` (created); every other row as `u`. Without it every incremental row is `u`.',
        examples: ['created_at'],
      }),
    ),
  },
  { additionalProperties: false },
);

/** The whole `source:` entry of a `db-poll` pipeline. */
export const DbPollConfigSchema = Type.Object(
  {
    type: Type.Literal('db-poll', { description: 'Polls read-only views or tables of Postgres or MySQL/MariaDB on a schedule.' }),
    connection: Type.String({
      pattern: '^(postgres|postgresql|mysql|mariadb)://',
      description: 'Database URL: `postgres://user:pass@host:5432/db` or `mysql://user:pass@host:3306/db`. Put the password in `${env:NAME}`.',
      examples: ['postgres://reader:${env:ERP_PASSWORD}@127.0.0.1:5432/erp'],
    }),
    every: Type.Optional(
      Type.String({
        pattern: '^\\d+(\\.\\d+)?(ms|s|m|h)$',
        description: 'Poll interval, e.g. `500ms`, `5s`, `1m`, `1h`. The first poll runs at start-up. Use either `every` or `cron`; default `1m`.',
        examples: ['5s'],
      }),
    ),
    cron: Type.Optional(
      Type.String({ minLength: 1, description: 'Cron expression (5 or 6 fields, croner syntax, local time of the agent) for when to poll, instead of `every`.', examples: ['*/5 * * * *'] }),
    ),
    jitterMs: Type.Integer({ minimum: 0, default: 0, description: 'A random delay of up to this many milliseconds added to every tick, so many agents do not poll one database at the same instant.' }),
    requireReadOnly: Type.Boolean({
      default: false,
      description: 'Refuse to start (FERRY_SOURCE_NOT_READ_ONLY) when the database role can write to a polled view. When false, the same finding is only logged as a warning.',
    }),
    queryTimeoutMs: Type.Integer({ minimum: 1, default: 30000, description: 'Statement timeout of every query. A poll that hits it is abandoned and retried at the next tick.' }),
    pageSize: Type.Integer({ minimum: 1, maximum: 100000, default: 1000, description: 'Rows fetched per query (keyset pages); also the most records in one batch.' }),
    lookBackMs: Type.Integer({
      minimum: 0,
      default: 60000,
      description:
        'incremental only: each poll starts this far before the cursor on its first (time) column, to catch rows committed late with an older timestamp (a transaction that set `updated_at` before the previous poll but committed after it). Rows already delivered in the window are recognised by hash and not emitted again. Set it to the longest transaction of the legacy application plus clock skew; 0 turns it off (late rows are then skipped).',
    }),
    views: Type.Array(ViewSchema, { minItems: 1, description: 'The views or tables to poll, in order, one after the other on each tick.' }),
  },
  { additionalProperties: false },
);

export type DbPollConfig = Static<typeof DbPollConfigSchema>;
export type ViewConfig = Static<typeof ViewSchema>;
