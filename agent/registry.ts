import type { SinkPlugin, SourcePlugin } from './plugin/define.js';
import { postgresCdcSource } from '../sources/postgres-cdc/index.js';
import { fileSink } from '../sinks/file/index.js';
import { stdoutSink } from '../sinks/stdout/index.js';
import { webhookSink } from '../sinks/webhook/index.js';
import { fileDropSource } from '../sources/file-drop/index.js';
import { dbPollSource } from '../sources/db-poll/index.js';
import { mysqlCdcSource } from '../sources/mysql-cdc/index.js';

/**
 * Every source and sink type Ferry knows. Adding a plugin is one line here;
 * everything else (config validation, JSON Schema, docs, `ferry --help`)
 * reads this list.
 */
export const SOURCES: readonly SourcePlugin[] = [
  postgresCdcSource,
  fileDropSource,
  dbPollSource,
  mysqlCdcSource,
];

export const SINKS: readonly SinkPlugin[] = [
  fileSink,
  stdoutSink,
  webhookSink,
];

export function findSource(type: string): SourcePlugin | undefined {
  return SOURCES.find((p) => p.type === type);
}

export function findSink(type: string): SinkPlugin | undefined {
  return SINKS.find((p) => p.type === type);
}
