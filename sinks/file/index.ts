import { resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { SinkEntrySchema } from '../../agent/config/schema.js';
import { defineSink } from '../../agent/plugin/define.js';
import { FileSink } from './file-sink.js';

/** One `sinks[]` entry of type `file`; docs/sinks/file.md is written from these descriptions. */
export const FileSinkConfig = Type.Object(
  {
    name: SinkEntrySchema.properties.name,
    type: Type.Literal('file', { description: 'Appends events as JSON lines to a local file.' }),
    path: Type.String({
      minLength: 1,
      description: 'The file to append to, relative to the folder of the configuration file. Missing folders are created.',
      examples: ['./out/customers.jsonl'],
    }),
    fsync: Type.Optional(
      Type.Boolean({
        default: true,
        description: 'Flush every batch to disk (fsync) before it counts as delivered. Turn off only when losing the last batches in a power cut is acceptable.',
      }),
    ),
  },
  { additionalProperties: false, title: 'file sink', description: 'JSON lines, one event a line, appended and flushed once per batch.' },
);

export type FileSinkConfig = Static<typeof FileSinkConfig>;

export const fileSink = defineSink({
  type: 'file',
  summary: 'Appends events as JSON lines (one event a line) to a local file, flushed per batch.',
  config: FileSinkConfig,
  create: (config, env) => new FileSink({ path: resolve(env.configDir, config.path), fsync: config.fsync ?? true }),
});
