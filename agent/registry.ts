import type { SourcePlugin } from './plugin/define.js';
import { postgresCdcSource } from '../sources/postgres-cdc/index.js';
import { fileDropSource } from '../sources/file-drop/index.js';
import { dbPollSource } from '../sources/db-poll/index.js';
import { mysqlCdcSource } from '../sources/mysql-cdc/index.js';

export { SINKS, findSink } from './sink-registry.js';

/**
 * Every source type Ferry knows, and (from `sink-registry.ts`) every sink
 * type. Adding a plugin is one line here or there; everything else (config
 * validation, JSON Schema, docs, `ferry --help`) reads these lists.
 */
export const SOURCES: readonly SourcePlugin[] = [
  postgresCdcSource,
  fileDropSource,
  dbPollSource,
  mysqlCdcSource,
];

export function findSource(type: string): SourcePlugin | undefined {
  return SOURCES.find((p) => p.type === type);
}
