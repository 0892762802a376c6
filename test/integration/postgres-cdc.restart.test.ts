import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../agent/errors/index.js';
import type { Checkpoint, SourceRecord } from '../../agent/plugin/source.js';
import { resolveConfig } from '../../sources/postgres-cdc/config.js';
import { PostgresCdcSource } from '../../sources/postgres-cdc/postgres-cdc-source.js';
import { covers, Driver } from './postgres-cdc.helpers.js';
import { pgQuery } from '../support/postgres.js';

/**
 * A private PostgreSQL server (initdb in a temp folder, run as the postgres
 * user), so this test can restart Postgres without touching the shared
 * server other tests use.
 */
const BIN = join('/usr/lib/postgresql', readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b)).at(-1) ?? '15', 'bin');
const dir = mkdtempSync(join(tmpdir(), 'ferry-pgcdc-restart-'));
let port = 0;
let url = '';

const asPostgres = (cmd: string, args: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args], { stdio: 'pipe', timeout: 60_000 });
const ctlArgs = (action: string, mode: string) => ['-u', 'postgres', '--', join(BIN, 'pg_ctl'), '-D', join(dir, 'data'), '-l', join(dir, 'log'), '-m', mode, '-w', '-o',
  `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=${dir} -c wal_level=logical -c max_wal_senders=5 -c max_replication_slots=5 -c fsync=off`, action];
const ctl = (action: 'start' | 'stop', mode = 'fast') => execFileSync('runuser', ctlArgs(action, mode), { stdio: 'pipe', timeout: 60_000 });
/** Asynchronous, so the source keeps reading (and confirming) while the server shuts down. */
const ctlAsync = (action: 'restart') =>
  new Promise<void>((resolve, reject) => execFile('runuser', ctlArgs(action, 'fast'), { timeout: 60_000 }, (error) => (error ? reject(error) : resolve())));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      server.close(() => resolve(address.port));
    });
  });
}


beforeAll(async () => {
  chmodSync(dir, 0o700);
  execFileSync('chown', ['postgres:postgres', dir]);
  asPostgres('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  port = await freePort();
  url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  ctl('start');
  await pgQuery(url, `CREATE TABLE public.items (id int PRIMARY KEY, v text)`);
});

afterAll(() => {
  try {
    ctl('stop', 'immediate');
  } finally {
    if (!process.env.PGCDC_KEEP) rmSync(dir, { recursive: true, force: true });
  }
});

const source = () =>
  new PostgresCdcSource(resolveConfig({ type: 'postgres-cdc', connection: url, publication: 'pub', slot: 'restart_slot', tables: ['public.items'], snapshot: 'never', heartbeatMs: 300 }));

/** Opens like the runtime does after a RetryableError: retry with backoff until the server is back. */
async function reopen(from: Checkpoint): Promise<Driver> {
  for (let attempt = 0; ; attempt++) {
    const s = source();
    try {
      return await new Driver(s).open(from);
    } catch (error) {
      await s.close();
      if (!(error instanceof RetryableError) || attempt > 40) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('postgres-cdc across a Postgres restart', () => {
  it('fails the read with a RetryableError, then resumes from the slot without losing a change', async () => {
    const first = await new Driver(source()).open();
    let cp: Checkpoint;
    let committedIds: number[];
    let tail: SourceRecord[];
    try {
      for (let i = 1; i <= 100; i++) await pgQuery(url, `INSERT INTO public.items VALUES (${i}, 'v${i}')`);
      const records = await first.count(100);
      const half = first.batches.findIndex((_, i) => first.batches.slice(0, i + 1).flatMap((b) => b.records).length >= 50);
      await first.source.commit(first.batches[half]!.checkpoint);
      // A fast shutdown waits until the client has confirmed all WAL sent: it
      // completes because the reader keeps committing (heartbeat positions included).
      const restarted = ctlAsync('restart');
      const { error, committed } = await first.commitUntilFailure();
      await restarted;
      expect(error).toBeInstanceOf(RetryableError);
      cp = committed ?? first.batches[half]!.checkpoint;
      // A batch may end inside a transaction: only records the checkpoint covers are done with.
      committedIds = records.filter((r) => covers(cp, r)).map((r) => r.data.id as number);
      tail = records.filter((r) => !covers(cp, r));
    } finally {
      await first.close();
    }
    for (let i = 101; i <= 150; i++) await pgQuery(url, `INSERT INTO public.items VALUES (${i}, 'v${i}')`);
    const second = await reopen(cp);
    try {
      const again = await second.count(tail.length + 50);
      expect(again.slice(0, tail.length)).toEqual(tail);
      const ids = [...committedIds, ...again.map((r) => r.data.id as number)];
      expect(ids).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    } finally {
      await second.close();
    }
  });

  it('reports a slot whose WAL the server removed (wal_status = lost) as position lost, and re-snapshots with when_needed', async () => {
    const config = { type: 'postgres-cdc' as const, connection: url, publication: 'pub', slot: 'lost_slot', tables: ['public.items'], heartbeatMs: 300 };
    const first = await new Driver(new PostgresCdcSource(resolveConfig({ ...config, snapshot: 'never' }))).open();
    let cp: Checkpoint;
    try {
      await pgQuery(url, `INSERT INTO public.items VALUES (1000, 'before')`);
      await first.until((rs) => rs.some((r) => r.data.id === 1000));
      cp = await first.commitAll();
    } finally {
      await first.close();
    }
    // While the agent is down, the server outgrows max_slot_wal_keep_size and gives the slot up.
    await pgQuery(url, `ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`);
    await pgQuery(url, `SELECT pg_reload_conf()`);
    for (let i = 0; i < 6; i++) {
      await pgQuery(url, `INSERT INTO public.items SELECT g, repeat('x', 500) FROM generate_series(${2000 + i * 3000}, ${4999 + i * 3000}) g`);
      await pgQuery(url, `SELECT pg_switch_wal()`);
      await pgQuery(url, `CHECKPOINT`);
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const status = (await client.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'lost_slot'`)).rows[0]?.wal_status;
    await client.end();
    expect(status).toBe('lost');

    const strict = new PostgresCdcSource(resolveConfig({ ...config, snapshot: 'initial' }));
    const error = await new Driver(strict).open(cp).then(() => undefined, (e: unknown) => e);
    await strict.close();
    expect(error).toMatchObject({ code: 'FERRY_SOURCE_POSITION_LOST' });
    expect((error as Error).message).toMatch(/replication slot lost_slot: .*wal_status = lost/);

    await pgQuery(url, `ALTER SYSTEM RESET max_slot_wal_keep_size`);
    await pgQuery(url, `SELECT pg_reload_conf()`);
    const healing = await new Driver(new PostgresCdcSource(resolveConfig({ ...config, snapshot: 'when_needed', snapshotChunkSize: 5000 }))).open(cp);
    try {
      const rows = await healing.until((rs) => rs.length >= 18_001 + 150);
      expect(rows.every((r) => r.op === 'r')).toBe(true);
    } finally {
      await healing.close();
    }
  });
});
