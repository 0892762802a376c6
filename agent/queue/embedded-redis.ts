import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { FerryError } from '../errors/index.js';

/**
 * The embedded default queue: with no `queue.redis`, the agent runs its own
 * redis-server, private to it (loopback only, a random port), with
 * append-only persistence (fsync every second) in `<dataDir>/redis`, so
 * queued events survive an agent or machine crash.
 *
 * The server is started detached and its port is written to
 * `<dataDir>/redis/port`: an agent killed with SIGKILL leaves it running, and
 * the next agent (or `ferry dlq`) on the same data directory reuses it
 * instead of starting a second server on the same files.
 */
export interface EmbeddedRedis {
  url: string;
  /** Whether this process started the server (false: it was already running for this data directory). */
  startedHere: boolean;
  /** Shuts the server down (it persists its append-only file first). */
  stop(): Promise<void>;
}

export async function startEmbeddedRedis(dataDir: string, logger: Logger): Promise<EmbeddedRedis> {
  const dir = join(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const portFile = join(dir, 'port');

  if (existsSync(portFile)) {
    const port = Number(readFileSync(portFile, 'utf8').trim());
    if (port > 0 && (await pings(port))) {
      logger.info({ port }, 'reusing the embedded redis-server already running on this data directory');
      return { url: `redis://127.0.0.1:${port}`, startedHere: false, stop: () => shutdown(port) };
    }
  }

  const binary = findRedisServer();
  const port = await freePort();
  const args = [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir,
    '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
    '--maxmemory-policy', 'noeviction', '--protected-mode', 'yes',
    '--logfile', join(dir, 'redis.log'), '--pidfile', join(dir, 'redis.pid'),
    '--daemonize', 'no',
  ];
  const child = spawn(binary, args, { detached: true, stdio: 'ignore' });
  child.unref();
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new FerryError('FERRY_EMBEDDED_REDIS', `cannot start ${binary}: ${err.message}`, { cause: err })));
    child.once('exit', (code) =>
      reject(new FerryError('FERRY_EMBEDDED_REDIS', `embedded redis-server exited with code ${code} at start; see ${join(dir, 'redis.log')}`)),
    );
  });
  failed.catch(() => {});
  const deadline = Date.now() + 20_000;
  while (!(await pings(port))) {
    await Promise.race([failed, new Promise((r) => setTimeout(r, 100))]);
    if (Date.now() > deadline) throw new FerryError('FERRY_EMBEDDED_REDIS', `embedded redis-server did not answer within 20 s; see ${join(dir, 'redis.log')}`);
  }
  writeFileSync(portFile, `${port}\n`);
  logger.info({ port, dir }, 'started the embedded redis-server (append-only persistence)');
  return { url: `redis://127.0.0.1:${port}`, startedHere: true, stop: () => shutdown(port) };
}

async function shutdown(port: number): Promise<void> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.call('SHUTDOWN').catch(() => {});
  } catch {
    // Already gone.
  } finally {
    r.disconnect();
  }
}

function findRedisServer(): string {
  for (const candidate of ['redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next
    }
  }
  throw new FerryError('FERRY_EMBEDDED_REDIS', 'no queue.redis is configured and redis-server is not installed', {
    fix: 'Install it (`apt-get install redis-server`; `npm run demo` does this) or set queue.redis to a Redis URL.',
  });
}

async function pings(port: number): Promise<boolean> {
  const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
