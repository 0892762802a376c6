import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';

/**
 * Restarts of the shared database servers, for the fault tests (run alone,
 * after the rest: see vitest.fault.config.ts). The commands are the ones that
 * start these servers on this machine kind and in test/setup/services.d.
 */

const run = promisify(execFile);

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * `pg_ctlcluster restart` (fast shutdown: sessions are cut, committed work
 * kept), then waits until it answers. `settings` go on the server's command
 * line (`-c name=value`) and win over the configuration files until the next
 * restart without them: the way back when the files hold a value the server
 * refuses to start with.
 */
export async function restartPostgres(opts: { settings?: Record<string, string> } = {}): Promise<void> {
  const version = readdirSync('/etc/postgresql').sort((a, b) => Number(a) - Number(b)).at(-1);
  if (!version) throw new Error('no PostgreSQL cluster under /etc/postgresql');
  const settings = Object.entries(opts.settings ?? {}).map(([name, value]) => `-c ${name}=${value}`);
  await run('pg_ctlcluster', ['--skip-systemctl-redirect', '--mode', 'fast', version, 'main', 'restart', ...(settings.length ? ['--', '-o', settings.join(' ')] : [])]);
  await until('PostgreSQL answering after the restart', async () => {
    const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await c.connect();
    await c.end();
    return true;
  });
}

/** `mariadb-admin shutdown`, then starts `mariadbd` again as the machine does, and waits until it answers. */
export async function restartMariadb(): Promise<void> {
  await run('mariadb-admin', ['-uroot', '-h127.0.0.1', 'shutdown']);
  await until('mariadbd gone', async () => {
    try {
      await run('pgrep', ['-x', 'mariadbd']);
      return false;
    } catch {
      return true;
    }
  });
  await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd']);
  await until('MariaDB answering after the restart', async () => {
    const c = await mysql.createConnection('mysql://root@127.0.0.1:3306/');
    await c.end();
    return true;
  });
}
