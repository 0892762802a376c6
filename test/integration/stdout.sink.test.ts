import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { stdoutSink, type StdoutSinkConfig } from '../../sinks/stdout/index.js';
import { StdoutSink } from '../../sinks/stdout/stdout-sink.js';
import { describeSink, sampleEvents, type SinkTarget } from '../conformance/describe-sink.js';

/**
 * The conformance suite cannot read this process's own stdout, so each target
 * gives the sink a real stream instead: a file, or a pipe into a child process.
 * The last describe block runs the registered plugin on a real stdout.
 */
const streams = new Map<string, Writable>();

async function streamTarget(make: (dir: string) => Promise<Writable>): Promise<SinkTarget<StdoutSinkConfig>> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-stdout-sink-'));
  const out = await make(dir);
  streams.set(dir, out);
  return {
    config: { name: 'console', type: 'stdout' },
    env: { configDir: dir },
    readBack: async () => {
      const text = await readFile(join(dir, 'stdout.jsonl'), 'utf8').catch(() => '');
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    cleanup: async () => {
      streams.delete(dir);
      out.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const toFile = (dir: string): Promise<WriteStream> => Promise.resolve(createWriteStream(join(dir, 'stdout.jsonl')));

/** A pipe into a child that has exited: every write fails with EPIPE. */
async function closedPipe(): Promise<Writable> {
  const child = spawn('true', { stdio: ['pipe', 'ignore', 'ignore'] });
  await new Promise((r) => child.once('exit', r));
  return child.stdin!;
}

/** A pipe into a child that never reads, already filled past the pipe buffer: the next write waits. */
async function stuckPipe(): Promise<Writable> {
  const child: ChildProcess = spawn('sleep', ['30'], { stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin!.write(Buffer.alloc(1 << 20, 0x20));
  child.stdin!.once('close', () => child.kill());
  return child.stdin!;
}

describeSink('stdout', {
  plugin: stdoutSink,
  create: (config, env) => new StdoutSink({ pretty: config.pretty ?? false, out: streams.get(env.configDir)! }),
  target: () => streamTarget(toFile),
  badConfigs: {
    'has an unknown key': { name: 'console', type: 'stdout', path: 'x' },
    'has pretty as a string': { name: 'console', type: 'stdout', pretty: 'yes' },
    'has no name': { type: 'stdout' },
    'names another type': { name: 'console', type: 'file' },
  },
  failures: [{ name: 'reader went away (EPIPE)', expect: 'retryable', target: () => streamTarget(closedPipe) }],
  hanging: () => streamTarget(stuckPipe),
});

/** The child writes the batches this process prepared (a file of JSON), through the registered plugin. */
const child = `
const { readFileSync } = await import('node:fs');
const { stdoutSink } = await import(${JSON.stringify(resolve('dist/sinks/stdout/index.js'))});
const [mode, batchFile] = process.argv.slice(1);
const sink = stdoutSink.create({ name: 'console', type: 'stdout', pretty: mode === 'pretty' }, { configDir: '.' });
await sink.open({});
for (const batch of JSON.parse(readFileSync(batchFile, 'utf8'))) await sink.write(batch, new AbortController().signal);
await sink.close();
process.stderr.write('written ' + Date.now() + '\\n');
`;

const batches = Array.from({ length: 20 }, (_, b) => sampleEvents(500, `batch-${b}`));

/** Runs the registered plugin in a child whose stdout is a real pipe to this process. */
async function runChild(mode: 'lines' | 'pretty', holdMs: number): Promise<{ stdout: string; writtenAt: number; resumedAt: number; code: number | null }> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-stdout-child-'));
  const batchFile = join(dir, 'batches.json');
  await writeFile(batchFile, JSON.stringify(batches));
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child, mode, batchFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    proc.stdout.pause();
    const resumedAt = Date.now() + holdMs;
    setTimeout(() => proc.stdout.resume(), holdMs);
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => {
      void rm(dir, { recursive: true, force: true });
      const m = /written (\d+)/.exec(err);
      if (!m) return reject(new Error(`child failed (${code}): ${err}`));
      resolvePromise({ stdout: Buffer.concat(out).toString('utf8'), writtenAt: Number(m[1]), resumedAt, code });
    });
  });
}

describe('stdout sink on a real standard output', () => {
  it('writes JSON lines and waits for a slow reader instead of buffering (backpressure)', async () => {
    const r = await runChild('lines', 800);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string });
    expect(lines).toHaveLength(20 * 500);
    expect(new Set(lines.map((l) => l.id)).size).toBe(20 * 500);
    expect(lines).toEqual(batches.flat());
    // Several MiB cannot fit in a pipe: the writes could only finish once this process read.
    expect(r.writtenAt).toBeGreaterThanOrEqual(r.resumedAt - 50);
  });

  it('pretty prints one indented event after another', async () => {
    const r = await runChild('pretty', 0);
    expect(r.stdout).toContain('\n  "specversion": "1.0",\n');
    const first = JSON.parse(r.stdout.slice(0, r.stdout.indexOf('\n}\n') + 2)) as { id: string };
    expect(first).toEqual(batches[0]![0]);
  });
});
