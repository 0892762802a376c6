import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../agent/errors/codes.js';
import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { checkpointKey } from '../../agent/queue/queue-names.js';
import { classifyMysqlError, noColumnNamesFix, positionLost } from './errors.js';
import { parseCheckpoint } from './position.js';

const at = { file: 'mariadb-bin.000042', pos: 4711 };
const reader = { serverId: 4711, pipeline: 'shop', user: 'repl' };
/** A mysql2 error as the binlog connection reports it. */
const serverError = (fields: { errno: number; code: string; sqlMessage: string }) => Object.assign(new Error(fields.sqlMessage), fields);
/** The key the agent keeps the pipeline's position under, with the default queue.prefix. */
const KEY = checkpointKey('ferry', 'shop');

/**
 * `ferry snapshot` leaves the stored position alone, so a fix that leads
 * there has the agent fail again at its next start. What does work: a
 * snapshot mode that re-snapshots, or deleting the stored position.
 */
function expectWorkableRestart(fix: string | undefined): void {
  expect(fix).not.toMatch(/(run|with|re-snapshot \(|then) `?ferry snapshot/);
  expect(fix).toMatch(/`ferry snapshot` alone does not help: it leaves the stored position as it is/);
}

describe('a lost binlog position', () => {
  it('says to set snapshot: when_needed and restart, or to delete the named stored position, never `ferry snapshot`', () => {
    const err = positionLost(at, 'shop');
    expect(err).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST', where: 'pipeline shop, binlog mariadb-bin.000042:4711' });
    expect(err.fix).toMatch(/^Set `snapshot: when_needed` on this source and restart the agent/);
    expect(err.fix).toContain(`redis-cli -u REDIS_URL DEL ${KEY} `);
    expect(err.fix).toMatch(/start the agent with snapshot: initial/);
    expectWorkableRestart(err.fix);
  });

  it('is what a purged file in the binlog dump becomes, naming the pipeline', () => {
    const err = classifyMysqlError(
      serverError({ errno: 1236, code: 'ER_MASTER_FATAL_ERROR_READING_BINLOG', sqlMessage: 'Could not find first log file name in binary log index file' }),
      at,
      reader,
    );
    expect(err).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST', fix: expect.stringContaining(KEY) });
  });

  it('has a catalog fix (used where a source gives none) that works too', () => {
    const fix = ERROR_CODES.FERRY_SOURCE_POSITION_LOST.fix;
    expect(fix).toMatch(/Set `snapshot: when_needed` on the source and restart/);
    expect(fix).toContain('redis-cli -u REDIS_URL DEL PREFIX:pipeline:PIPELINE:checkpoint');
    expectWorkableRestart(fix);
    expect(checkpointKey('PREFIX', 'PIPELINE')).toBe('PREFIX:pipeline:PIPELINE:checkpoint');
  });

  it('is explained the same way in docs/errors.md', () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'errors.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## FERRY_SOURCE_POSITION_LOST'), doc.indexOf('\n## ', doc.indexOf('## FERRY_SOURCE_POSITION_LOST') + 1));
    expect(section).toContain('set `snapshot: when_needed` on the source and restart the agent');
    expect(section).toContain('redis-cli -u REDIS_URL DEL PREFIX:pipeline:PIPELINE:checkpoint');
    expect(section).toMatch(/`ferry snapshot PIPELINE` does\s+not do that/);
  });

  it('tells to delete a stored position of another source type, which no snapshot mode reads past', () => {
    let err: unknown;
    try {
      parseCheckpoint({ lsn: '0/16B3748' }, 'shop');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST', where: 'pipeline shop, stored position', fix: expect.stringContaining(`redis-cli -u REDIS_URL DEL ${KEY} `) });
  });
});

describe('rows without column names', () => {
  it('says that turning the metadata on is not enough for rows already written, and how to start over', () => {
    const fix = noColumnNamesFix('shop');
    expect(fix).toMatch(/^SET GLOBAL binlog_row_metadata = 'FULL' and set it in my\.cnf/);
    expect(fix).toContain(`redis-cli -u REDIS_URL DEL ${KEY} `);
    expectWorkableRestart(fix);
  });
});

describe('a serverId another reader connected with', () => {
  it('names the serverId, the pipeline and pipelines[].source.serverId, and asks for unique ids', () => {
    // MariaDB's errno 4052, which mysql2 names after an unrelated MySQL error
    const err = classifyMysqlError(
      serverError({
        errno: 4052,
        code: 'ER_SLAVE_SAME_ID',
        sqlMessage: 'A slave with the same server_uuid/server_id as this slave has connected to the master; the first event \'.\' at 4, the last event read from \'mariadb-bin.000042\' at 4711',
      }),
      at,
      reader,
    );
    expect(err).toBeInstanceOf(FerryError);
    expect(err).not.toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({
      code: 'FERRY_CONFIG_INVALID',
      message: expect.stringMatching(/^the server dropped the binlog reader of pipeline shop because another reader connected with the same id \(serverId 4711\)/),
      where: 'pipeline shop: pipelines[].source.serverId',
      fix: expect.stringMatching(/^Give every reader of this server a unique id.*set pipelines\[\]\.source\.serverId of pipeline shop to an id nothing else uses/),
    });
  });

  it('names the replication user in the GRANT for a refused binlog dump', () => {
    const err = classifyMysqlError(
      serverError({ errno: 1227, code: 'ER_SPECIFIC_ACCESS_DENIED_ERROR', sqlMessage: 'Access denied; you need (at least one of) the REPLICATION SLAVE privilege(s) for this operation' }),
      at,
      { ...reader, user: 'cdc_reader' },
    );
    expect(err).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', where: 'pipeline shop, binlog mariadb-bin.000042:4711', fix: expect.stringMatching(/^GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON \*\.\* TO 'cdc_reader'@'%';/) });
  });
});
