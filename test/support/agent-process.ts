import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FERRY_BIN = join(REPO, 'bin/ferry.js');

/** A `ferry` child process, as an operator or a service manager runs it. */
export interface FerryProcess {
  proc: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: no drain, no cleanup. */
  kill(): Promise<void>;
}

export function startFerry(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): FerryProcess {
  const proc = spawn(process.execPath, [FERRY_BIN, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return {
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      proc.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs `ferry ARGS` to completion. */
export async function runFerry(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = startFerry(args, opts);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

/** `ferry run --config FILE`. */
export function startAgent(configFile: string, opts: { env?: NodeJS.ProcessEnv; role?: string } = {}): FerryProcess {
  return startFerry(['run', '--config', configFile, ...(opts.role ? ['--role', opts.role] : [])], { env: opts.env });
}

const workspaces: string[] = [];

/** A fresh folder for one test's config, inbox, outputs and data directory; removed after its test file (test/support/cleanup-setup.ts). */
export function tempWorkspace(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ferry-${name}-`));
  workspaces.push(dir);
  return dir;
}

/** Removes the folders `tempWorkspace` made in this test file; a disk that fills up run after run is how CI machines die. */
export function removeTempWorkspaces(): void {
  for (const dir of workspaces.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export function writeFile(path: string, content: string | Buffer): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  return path;
}

/** A unique Redis key prefix, so test files can share the Redis on 6379. */
export function uniquePrefix(name: string): string {
  return `t${name.replace(/[^a-z0-9]/gi, '')}${process.pid}${Date.now().toString(36)}`;
}

/** Lines of a JSON-lines file, parsed; a last line still being written is ignored. */
export function readJsonLines<T = Record<string, unknown>>(file: string): T[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  if (!text.endsWith('\n')) lines.pop();
  return lines.filter((l) => l.length > 0).map((l) => JSON.parse(l) as T);
}

/**
 * Complete lines in `file`, counted without parsing: cheap enough to poll a
 * growing sink file tightly, so a test can act while the agent is mid-stream.
 */
export function countLines(file: string): number {
  if (!existsSync(file)) return 0;
  const bytes = readFileSync(file);
  let n = 0;
  for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) n++;
  return n;
}

/** Polls `probe` until it returns a truthy value, or throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, timeoutMs = 30_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Polls `read` every 100 ms until it has not changed for a second (each
 * sample a turn of the event loop that would have taken in whatever
 * arrived), and returns it: what a buffer holds once it stopped growing,
 * however slowly the machine fills it. Throws with `what` after `timeoutMs`.
 */
export async function settled(what: string, read: () => number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = read();
  for (let same = 0; same < 10; ) {
    if (Date.now() > deadline) throw new Error(`${what} still changing after ${timeoutMs} ms (now ${last})`);
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** Deletes every key a test wrote under its prefix on the shared Redis. */
export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const r = new Redis(6379, '127.0.0.1');
  try {
    const keys = await r.keys(`${prefix}:*`);
    if (keys.length) await r.del(...keys);
  } finally {
    r.disconnect();
  }
}

/** A loopback port nothing listens on now: for an admin server to start on, or for a connection that must be refused. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = (server.address() as AddressInfo);
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * What a test file starts and must undo after its last test, registered with
 * afterAll: agents still running are killed, then the clean-ups run, then
 * the Redis prefixes are deleted.
 */
export function cleanUpAfterAll(): { running: FerryProcess[]; prefixes: string[]; cleanups: Array<() => Promise<void>> } {
  const left = { running: [] as FerryProcess[], prefixes: [] as string[], cleanups: [] as Array<() => Promise<void>> };
  afterAll(async () => {
    for (const p of left.running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
    for (const c of left.cleanups) await c().catch(() => {});
    for (const p of left.prefixes) await deleteRedisPrefix(p);
  });
  return left;
}
