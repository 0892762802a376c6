import { defineSource } from '../../agent/plugin/define.js';
import { PostgresCdcConfig, resolveConfig } from './config.js';
import { PostgresCdcSource } from './postgres-cdc-source.js';

export { PostgresCdcConfig } from './config.js';
export { PostgresCdcSource } from './postgres-cdc-source.js';
export type { PgCdcCheckpoint } from './checkpoint.js';

export const postgresCdcSource = defineSource({
  type: 'postgres-cdc',
  summary: 'PostgreSQL change data capture: a consistent snapshot, then inserts, updates, deletes and truncates from a logical replication slot (pgoutput).',
  config: PostgresCdcConfig,
  create: (config) => new PostgresCdcSource(resolveConfig(config)),
});
