import { existsSync, readFileSync } from 'node:fs';
import type { RowDataPacket } from 'mysql2';
import { describe, expect, it } from 'vitest';
import { FerryError } from '../../agent/errors/index.js';
import { ERROR_CODES } from '../../agent/errors/codes.js';
import { runFerry, startAgent, uniquePrefix } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { contextFor, sourceFor, uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

// Changes binlog_format and binlog_row_image for the whole server: a fault
// test, run alone after the suite, and it puts the old values back.
const [fx, t] = useFixture('preflight');

function workspace(): string {
  return workspaceWithOutput().config;
}

function workspaceWithOutput(): { config: string; out: string } {
  return rowPipelineWorkspace({
    name: 'my-preflight',
    prefix: uniquePrefix('mypreflight'),
    tables: [{ mapping: 'orders', entity: 'order', table: t('orders') }],
    source: `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${uniqueServerId()}
      tables: [${t('orders')}]`,
  });
}

/** Runs `body` with the global `variable` set to `bad`; the server gets its old value back whatever happens. */
async function withGlobal<T>(variable: string, bad: string, body: () => Promise<T>): Promise<T> {
  const [rows] = await fx.root.query<RowDataPacket[]>(`SELECT @@GLOBAL.${variable} AS value`);
  const value = String(rows[0]!.value);
  try {
    await fx.root.query(`SET GLOBAL ${variable} = '${bad}'`);
    return await body();
  } finally {
    await fx.root.query(`SET GLOBAL ${variable} = '${value}'`);
  }
}

/** The source's failed findings as printed: each `✗` line with the `fix:` line under it. */
function failures(stdout: string): Array<{ line: string; fix: string | undefined }> {
  const lines = stdout.split('\n');
  return lines.flatMap((line, i) => (line.startsWith('✗ shop/source (mysql-cdc)') ? [{ line, fix: /^\s+fix: (.*)$/.exec(lines[i + 1] ?? '')?.[1] }] : []));
}

/**
 * Sets a global variable to `bad`, expects `ferry check` to fail on exactly
 * that finding with a fix, runs the fix's statement as an administrator and
 * expects the next check to pass. The server gets its old value back whatever happens.
 */
async function failsThenFixed(variable: string, bad: string, config: string): Promise<{ line: string; fix: string }> {
  const [rows] = await fx.root.query<RowDataPacket[]>(`SELECT @@GLOBAL.${variable} AS value`);
  const value = String(rows[0]!.value);
  try {
    await fx.root.query(`SET GLOBAL ${variable} = '${bad}'`);
    const broken = await runFerry(['check', '--config', config]);
    expect(broken.code, broken.stdout + broken.stderr).toBe(1);
    const found = failures(broken.stdout);
    expect(found).toHaveLength(1);
    expect(broken.stdout).toContain('1 check failed');
    const { line, fix } = found[0]!;

    // The statement part of the printed fix, as an operator would paste it.
    await fx.root.query(fix!.slice(0, fix!.indexOf(';') + 1));
    const fixed = await runFerry(['check', '--config', config]);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect(fixed.stdout).toMatch(new RegExp(`^✓ shop/source \\(mysql-cdc\\) +${variable} +${variable} = ${value}$`, 'm'));
    return { line, fix: fix! };
  } finally {
    await fx.root.query(`SET GLOBAL ${variable} = '${value}'`);
  }
}

describe('ferry check on mysql-cdc server settings', () => {
  it('fails on binlog_format other than ROW and prints the SET GLOBAL that fixes it', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('orders')} (id INT PRIMARY KEY, version INT, note VARCHAR(20))`);
    const config = workspace();
    const { line, fix } = await failsThenFixed('binlog_format', 'STATEMENT', config);
    expect(line).toMatch(/binlog_format +binlog_format = STATEMENT$/);
    expect(fix).toMatch(/^SET GLOBAL binlog_format = 'ROW'; .*my\.cnf/);
  });

  it('fails on binlog_row_image other than FULL and prints the SET GLOBAL that fixes it', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('orders')} (id INT PRIMARY KEY, version INT, note VARCHAR(20))`);
    const config = workspace();
    const { line, fix } = await failsThenFixed('binlog_row_image', 'MINIMAL', config);
    expect(line).toMatch(/binlog_row_image +binlog_row_image = MINIMAL$/);
    expect(fix).toMatch(/^SET GLOBAL binlog_row_image = 'FULL'; .*my\.cnf/);
  });
});

describe('ferry run on mysql-cdc server settings', () => {
  it('refuses to start when binlog_format is not ROW: FERRY_PREFLIGHT_FAILED, exit 1, naming the setting, its value and the fix', async () => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('orders')} (id INT PRIMARY KEY, version INT, note VARCHAR(20))`);
    const { config, out } = workspaceWithOutput();
    const run = await withGlobal('binlog_format', 'STATEMENT', async () => {
      const agent = startAgent(config);
      const code = await Promise.race([agent.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000))]);
      if (code === 'running') await agent.kill();
      return { code, stderr: agent.stderr() };
    });
    expect(run.code, run.stderr).toBe(1);
    expect(ERROR_CODES.FERRY_PREFLIGHT_FAILED.exit).toBe(1);
    expect(run.stderr).toMatch(/^ferry: FERRY_PREFLIGHT_FAILED: the server's binlog would not hold every change as full rows: binlog_format = STATEMENT /m);
    expect(run.stderr).toMatch(/^ {2}fix: binlog_format: SET GLOBAL binlog_format = 'ROW'; and set it in my\.cnf/m);
    // Refused before reading: nothing was sent (the file sink may have created its file).
    expect(existsSync(out) ? readFileSync(out, 'utf8') : '').toBe('');
  });

  it.each([
    ['binlog_format', 'MIXED', "SET GLOBAL binlog_format = 'ROW';"],
    ['binlog_row_image', 'MINIMAL', "SET GLOBAL binlog_row_image = 'FULL';"],
  ])('refuses to open with %s = %s, and opens once it is fixed', async (variable, bad, fix) => {
    await fx.root.query(`CREATE TABLE IF NOT EXISTS ${t('orders')} (id INT PRIMARY KEY, version INT, note VARCHAR(20))`);
    const err = await withGlobal(variable, bad, async () => {
      const source = sourceFor(fx, { tables: [t('orders')] });
      return source.open(undefined, contextFor()).then(() => undefined, (e: unknown) => e).finally(() => source.close());
    });
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).name).toBe('FerryError'); // not retried: the server must be changed first
    expect(err).toMatchObject({ code: 'FERRY_PREFLIGHT_FAILED', message: expect.stringContaining(`${variable} = ${bad}`), where: expect.stringMatching(/^server .*@127\.0\.0\.1:3306, global variables$/) });
    expect((err as FerryError).fix).toContain(fix);

    // back to the documented setting: it opens
    const source = sourceFor(fx, { tables: [t('orders')] });
    await source.open(undefined, contextFor()).finally(() => source.close());
  });
});
