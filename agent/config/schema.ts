import { Type, type Static } from '@sinclair/typebox';

/**
 * The ferry.yaml schema, declared once. The TypeScript types below, the ajv
 * validation in `load-config.ts` and `docs/schemas/ferry.schema.json` all
 * come from these declarations. Source and sink entries are validated in a
 * second step against the schema their plugin declares (see registry.ts), so
 * here they only need a `type`.
 */

export const AgentSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, description: 'Name of this agent in event sources and logs. Default: the host name.', examples: ['erp-host-1'] })),
    dataDir: Type.String({ default: './.ferry', description: 'Folder for the embedded Redis, local state and logs. Relative to the config file.' }),
    logLevel: Type.Union([Type.Literal('trace'), Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')], {
      default: 'info',
      description: 'Minimum level of the JSON log lines written to stderr.',
    }),
    admin: Type.Optional(
      Type.Object(
        {
          listen: Type.String({ default: '127.0.0.1:9464', description: 'host:port of the admin HTTP server (/healthz, /readyz, /metrics). Loopback by default.' }),
          token: Type.Optional(Type.String({ description: 'Bearer token required by the admin server, e.g. "${env:FERRY_ADMIN_TOKEN}".' })),
        },
        { additionalProperties: false, description: 'The admin HTTP server: /healthz, /readyz and /metrics. Off unless this section is present.' },
      ),
    ),
  },
  { additionalProperties: false, default: {}, description: 'This agent: its name, data directory, logs and admin server.' },
);

export const QueueSchema = Type.Object(
  {
    redis: Type.Optional(
      Type.String({
        description: 'Redis URL (redis://[:password@]host:port[/db]). Omit it and the agent starts its own redis-server with append-only persistence in agent.dataDir.',
        examples: ['redis://127.0.0.1:6379'],
      }),
    ),
    prefix: Type.String({ default: 'ferry', pattern: '^[A-Za-z0-9_.-]+$', description: 'Prefix of every Redis key Ferry writes.' }),
  },
  { additionalProperties: false, default: {}, description: 'The Redis that holds the queues, dead-letter queues and source positions.' },
);

export const DeliverySchema = Type.Object(
  {
    partitions: Type.Integer({ minimum: 1, maximum: 256, default: 4, description: 'Events are spread over this many partitions by key; each partition is delivered in order by one worker.' }),
    batch: Type.Object(
      {
        maxEvents: Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'Most events in one queued job and one sink write.' }),
        maxWaitMs: Type.Integer({ minimum: 0, maximum: 60000, default: 50, description: 'Longest an event waits for its batch to fill before the batch is queued anyway.' }),
      },
      { additionalProperties: false, default: {}, description: 'How many events go into one queued job, and how long a job waits to fill.' },
    ),
    retry: Type.Object(
      {
        attempts: Type.Integer({ minimum: 1, maximum: 1000, default: 8, description: 'Failed deliveries of a batch, counted while the sink\'s circuit is closed, before it goes to the dead-letter queue. Once 5 failures in a row open the circuit, batches wait without spending attempts: a target that is down keeps its events in the queue, not in the dead-letter queue (docs/operations.md).' }),
        initialMs: Type.Integer({ minimum: 1, default: 100, description: 'First backoff delay; each next one doubles, with full jitter.' }),
        maxMs: Type.Integer({ minimum: 1, default: 5000, description: 'Longest backoff delay.' }),
      },
      { additionalProperties: false, default: {}, description: 'Retries of a failed delivery, with exponential backoff and full jitter.' },
    ),
    rateLimit: Type.Optional(
      Type.Object(
        { perSecond: Type.Number({ exclusiveMinimum: 0, description: 'Most events a second written to each sink of this pipeline.' }) },
        { additionalProperties: false, description: 'A cap on the delivery rate per sink. No cap when absent.' },
      ),
    ),
  },
  { additionalProperties: false, default: {}, description: 'How events are batched, partitioned, retried and rate-limited, for every sink of the pipeline.' },
);

/** A `source:` or `sinks[]` entry before its plugin's own schema checks the rest. */
export const PluginEntrySchema = Type.Object({ type: Type.String({ description: 'The source type; the other fields depend on it.' }) }, { additionalProperties: true, description: 'Where the records come from: one source.' });
export const SinkEntrySchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Name of this sink within the pipeline: queue names, metrics and `ferry dlq` use it.' }),
    type: Type.String({ description: 'The sink type.' }),
  },
  { additionalProperties: true },
);

export const PipelineSchema = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]*$', description: 'Pipeline name: lowercase letters, digits, - and _.' }),
    source: PluginEntrySchema,
    mappings: Type.Array(Type.String(), { minItems: 1, description: 'Mapping files (relative to the config file) that turn source records into events.' }),
    sinks: Type.Array(SinkEntrySchema, { minItems: 1, description: 'Where the events go; each sink has its own queue, retries and dead-letter queue.' }),
    delivery: DeliverySchema,
  },
  { additionalProperties: false },
);

export const FerryConfigSchema = Type.Object(
  {
    agent: AgentSchema,
    queue: QueueSchema,
    pipelines: Type.Array(PipelineSchema, { minItems: 1, description: 'What to read, how to map it and where to deliver it; at least one.' }),
  },
  { additionalProperties: false, $id: 'https://ferry.dev/schemas/ferry.schema.json', title: 'Ferry agent configuration (ferry.yaml)' },
);

export type AgentConfig = Static<typeof AgentSchema>;
export type QueueConfig = Static<typeof QueueSchema>;
export type DeliveryConfig = Static<typeof DeliverySchema>;
export type PipelineConfig = Static<typeof PipelineSchema>;
export type SinkEntry = Static<typeof SinkEntrySchema>;

/** The configuration after loading: defaults applied, secrets resolved, paths absolute. */
export interface FerryConfig extends Static<typeof FerryConfigSchema> {
  /** Absolute path of the file it was loaded from. */
  file: string;
  /** Folder of that file; relative paths in the config are resolved against it. */
  dir: string;
  agent: AgentConfig & { id: string };
}
