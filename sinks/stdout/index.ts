import { Type, type Static } from '@sinclair/typebox';
import { SinkEntrySchema } from '../../agent/config/schema.js';
import { defineSink } from '../../agent/plugin/define.js';
import { StdoutSink } from './stdout-sink.js';

/** One `sinks[]` entry of type `stdout`; docs/sinks/stdout.md is written from these descriptions. */
export const StdoutSinkConfig = Type.Object(
  {
    name: SinkEntrySchema.properties.name,
    type: Type.Literal('stdout', { description: "Writes events as JSON lines to the agent's standard output." }),
    pretty: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Indent each event over several lines for reading by eye. Off by default: one event a line (JSON lines), which other programs can parse.',
      }),
    ),
  },
  { additionalProperties: false, title: 'stdout sink', description: 'JSON lines on standard output, honouring backpressure from the reader.' },
);

export type StdoutSinkConfig = Static<typeof StdoutSinkConfig>;

export const stdoutSink = defineSink({
  type: 'stdout',
  summary: "Writes events as JSON lines to the agent's standard output.",
  config: StdoutSinkConfig,
  create: (config) => new StdoutSink({ pretty: config.pretty ?? false, out: process.stdout }),
});
