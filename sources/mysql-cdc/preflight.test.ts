import { describe, expect, it } from 'vitest';
import { binlogChecks, rowBinlogRefusal } from './preflight.js';

/**
 * The binlog checks on values the test server cannot take (log_bin is fixed
 * at start, PARTIAL_JSON and transaction compression exist on MySQL only):
 * the global variables as `serverVariables` reads them.
 */
const GOOD = {
  log_bin: 'ON',
  binlog_format: 'ROW',
  binlog_row_image: 'FULL',
  binlog_row_metadata: 'FULL',
  binlog_row_value_options: '',
  binlog_transaction_compression: 'OFF',
};
const vars = (over: Record<string, string | undefined> = {}): Map<string, string> =>
  new Map(Object.entries({ ...GOOD, ...over }).filter((e): e is [string, string] => e[1] !== undefined));
const failed = (over: Record<string, string | undefined>) => binlogChecks(vars(over)).filter((r) => !r.ok);

describe('binlogChecks', () => {
  it('passes the documented settings, and a server without the MySQL-only variables', () => {
    expect(failed({})).toEqual([]);
    expect(failed({ binlog_row_value_options: undefined, binlog_transaction_compression: undefined })).toEqual([]);
  });

  it.each([
    ['log_bin', 'OFF', /log_bin = OFF/, /^Set log_bin = mysql-bin in my\.cnf under \[mysqld\] and restart the server/],
    ['binlog_format', 'STATEMENT', /binlog_format = STATEMENT/, /^SET GLOBAL binlog_format = 'ROW'; and set it in my\.cnf .*connection pools/],
    ['binlog_format', 'MIXED', /binlog_format = MIXED/, /^SET GLOBAL binlog_format = 'ROW';/],
    ['binlog_row_image', 'MINIMAL', /binlog_row_image = MINIMAL/, /^SET GLOBAL binlog_row_image = 'FULL'; and set it in my\.cnf/],
    ['binlog_row_image', 'NOBLOB', /binlog_row_image = NOBLOB/, /^SET GLOBAL binlog_row_image = 'FULL';/],
    ['binlog_row_value_options', 'PARTIAL_JSON', /binlog_row_value_options = 'PARTIAL_JSON'/, /^SET GLOBAL binlog_row_value_options = ''; and set it in my\.cnf .*PARTIAL_JSON/],
    ['binlog_transaction_compression', 'ON', /binlog_transaction_compression = ON/, /^SET GLOBAL binlog_transaction_compression = OFF; and set it in my\.cnf .*compressed transactions/],
  ])('fails %s = %s as an error, naming the setting and its fix', (name, value, detail, fix) => {
    const found = failed({ [name]: value });
    expect(found.map((r) => r.name)).toEqual([name]);
    expect(found[0]).toMatchObject({ severity: 'error', detail: expect.stringMatching(detail), fix: expect.stringMatching(fix) });
  });

  it('only warns without FULL row metadata, and says what it costs', () => {
    for (const value of ['MINIMAL', 'NO_LOG']) {
      expect(failed({ binlog_row_metadata: value })).toEqual([
        expect.objectContaining({ name: 'binlog_row_metadata', severity: 'warning', detail: `binlog_row_metadata = ${value}`, fix: expect.stringMatching(/^SET GLOBAL binlog_row_metadata = 'FULL';.*ALTER TABLE/) }),
      ]);
    }
    expect(failed({ binlog_row_metadata: undefined })).toEqual([expect.objectContaining({ detail: expect.stringMatching(/not supported by this server/), severity: 'warning' })]);
  });

  it('reads an unknown log_bin (a server that hides the variable) as a failure', () => {
    expect(failed({ log_bin: undefined })).toEqual([expect.objectContaining({ name: 'log_bin', detail: 'log_bin = unknown' })]);
  });
});

describe('rowBinlogRefusal', () => {
  it('opens on the documented settings and on missing row metadata (a warning only)', () => {
    expect(rowBinlogRefusal(vars(), 'repl@db:3306')).toBeUndefined();
    expect(rowBinlogRefusal(vars({ binlog_row_metadata: 'MINIMAL' }), 'repl@db:3306')).toBeUndefined();
  });

  it('refuses with FERRY_PREFLIGHT_FAILED naming every bad setting, its value and its fix', () => {
    const err = rowBinlogRefusal(vars({ log_bin: 'OFF', binlog_row_value_options: 'PARTIAL_JSON', binlog_transaction_compression: 'ON' }), 'repl@db:3306');
    expect(err).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', where: 'server repl@db:3306, global variables' });
    expect(err?.message).toMatch(/log_bin = OFF, binlog_row_value_options = 'PARTIAL_JSON', binlog_transaction_compression = ON/);
    expect(err?.fix).toMatch(/^log_bin: Set log_bin = mysql-bin .* binlog_row_value_options: SET GLOBAL binlog_row_value_options = ''; .* binlog_transaction_compression: SET GLOBAL binlog_transaction_compression = OFF;/);
  });
});
