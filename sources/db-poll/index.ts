import { FerryError } from '../../agent/errors/index.js';
import { defineSource } from '../../agent/plugin/define.js';
import { DbPollConfigSchema } from './config.js';
import { cronSchedule, intervalSchedule, parseInterval } from './schedule.js';
import { DbPollSource } from './source.js';

/**
 * `db-poll`: read-only polling of Postgres or MySQL/MariaDB views and tables
 * on a schedule, incrementally by a cursor or by diffing per-key row hashes.
 * See docs/sources/db-poll.md.
 */
export const dbPollSource = defineSource({
  type: 'db-poll',
  summary: 'Polls read-only views or tables of Postgres or MySQL/MariaDB on a schedule (cursor or row-hash diff).',
  config: DbPollConfigSchema,
  create(config) {
    if (config.every !== undefined && config.cron !== undefined) {
      throw new FerryError('FERRY_CONFIG_INVALID', 'db-poll takes either `every` or `cron`, not both', { where: 'source.every', fix: 'Remove one of `every` and `cron`.' });
    }
    for (const [i, view] of config.views.entries()) {
      if (view.mode === 'incremental' && !view.cursor) {
        throw new FerryError('FERRY_CONFIG_INVALID', `view ${view.name} is incremental but has no \`cursor\``, { where: `source.views[${i}].cursor`, fix: 'Add `cursor: [updated_at, <key>]`, or use `mode: diff`.' });
      }
    }
    let schedule;
    try {
      schedule = config.cron !== undefined ? cronSchedule(config.cron, config.jitterMs) : intervalSchedule(parseInterval(config.every ?? '1m') ?? 60_000, config.jitterMs);
    } catch (e) {
      throw new FerryError('FERRY_CONFIG_INVALID', `db-poll cron expression "${config.cron}" is invalid: ${(e as Error).message}`, { where: 'source.cron', cause: e });
    }
    return new DbPollSource(config, schedule);
  },
});

export { DbPollSource, type DbPollCheckpoint } from './source.js';
export { DbPollConfigSchema, type DbPollConfig } from './config.js';
