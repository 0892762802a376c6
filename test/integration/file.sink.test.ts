import { mkdtemp, readFile, readlink, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import type { Sink } from '../../agent/plugin/sink.js';
import { fileSink, type FileSinkConfig } from '../../sinks/file/index.js';
import { describeSink, sampleEvents, type SinkTarget } from '../conformance/describe-sink.js';

async function fileTarget(path: string = 'out/events.jsonl', extra: Partial<FileSinkConfig> = {}): Promise<SinkTarget<FileSinkConfig> & { dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-file-sink-'));
  return {
    dir,
    config: { name: 'audit', type: 'file', path, ...extra },
    env: { configDir: dir },
    readBack: async () => readLines(join(dir, path)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

async function readLines(path: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

const ctx = { pipeline: 'p', sink: 'audit', agentId: 'test', dataDir: '/tmp', logger: pino({ level: 'silent' }) };
const live = (): AbortSignal => new AbortController().signal;

describeSink('file', {
  plugin: fileSink,
  target: () => fileTarget(),
  badConfigs: {
    'has no path': { name: 'audit', type: 'file' },
    'has an empty path': { name: 'audit', type: 'file', path: '' },
    'has an unknown key': { name: 'audit', type: 'file', path: 'x.jsonl', rotate: true },
    'has fsync as a string': { name: 'audit', type: 'file', path: 'x.jsonl', fsync: 'yes' },
    'names another type': { name: 'audit', type: 'stdout', path: 'x.jsonl' },
    'has an upper-case name': { name: 'Audit', type: 'file', path: 'x.jsonl' },
  },
  failures: [
    // /dev/full answers every write with ENOSPC: a real full disk.
    { name: 'disk full (ENOSPC)', expect: 'retryable', target: () => fileTarget('/dev/full') },
  ],
  // /dev/null is a file, so no folder can be made under it.
  unreachable: () => fileTarget('/dev/null/events.jsonl'),
});

describe('file sink', () => {
  it('resolves the path against the config folder, creates missing folders, writes one event a line', async () => {
    const t = await fileTarget('a/b/c/events.jsonl');
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    await sink.write(sampleEvents(3), live());
    await sink.close();
    const text = await readFile(join(t.dir, 'a/b/c/events.jsonl'), 'utf8');
    expect(text.split('\n')).toHaveLength(4);
    expect(text.endsWith('\n')).toBe(true);
    expect(text).toContain('Müller 0 €');
    await t.cleanup();
  });

  it('appends to what a previous run left, never truncating it', async () => {
    const t = await fileTarget('events.jsonl');
    await writeFile(join(t.dir, 'events.jsonl'), `${JSON.stringify({ id: 'earlier' })}\n`);
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    await sink.write(sampleEvents(2), live());
    await sink.close();
    expect((await t.readBack()).map((e) => e.id)).toEqual(['earlier', ...sampleEvents(2).map((e) => e.id)]);
    await t.cleanup();
  });

  it('cuts off the half line an agent killed mid-append left, keeping every complete line', async () => {
    const t = await fileTarget('events.jsonl');
    await writeFile(join(t.dir, 'events.jsonl'), `${JSON.stringify({ id: 'earlier' })}\n{"specversion":"1.0","id":"half-writ`);
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    await sink.write(sampleEvents(2), live());
    await sink.close();
    expect((await t.readBack()).map((e) => e.id)).toEqual(['earlier', ...sampleEvents(2).map((e) => e.id)]);
    await writeFile(join(t.dir, 'events.jsonl'), '{"only":"a fragment');
    const again = fileSink.create(t.config, t.env);
    await again.open(ctx);
    await again.write(sampleEvents(1), live());
    await again.close();
    expect((await t.readBack()).map((e) => e.id)).toEqual([sampleEvents(1)[0]!.id]);
    await t.cleanup();
  });

  it('keeps one file handle open across batches', async () => {
    const t = await fileTarget('events.jsonl');
    const path = join(t.dir, 'events.jsonl');
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    const before = await fdsOf(path);
    for (let i = 0; i < 5; i++) await sink.write(sampleEvents(10, `batch-${i}`), live());
    expect(before).toHaveLength(1);
    expect(await fdsOf(path)).toEqual(before);
    await sink.close();
    expect(await fdsOf(path)).toEqual([]);
    await t.cleanup();
  });

  it('never interleaves lines of concurrent batches (one per partition) and keeps each batch in order', async () => {
    const t = await fileTarget('events.jsonl', { fsync: true });
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    const batches = Array.from({ length: 8 }, (_, p) => sampleEvents(300, `partition-${p}`));
    await Promise.all(batches.map((b) => sink.write(b, live())));
    await sink.close();
    const lines = await t.readBack();
    expect(lines).toHaveLength(8 * 300);
    for (const batch of batches) {
      const at = lines.findIndex((l) => l.id === batch[0]!.id);
      expect(lines.slice(at, at + batch.length)).toEqual(batch);
    }
    await t.cleanup();
  });

  it('reports a full disk as a RetryableError naming the path', async () => {
    const t = await fileTarget('/dev/full', { fsync: false });
    const sink: Sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    const err = await sink.write(sampleEvents(2), live()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).message).toContain('/dev/full');
    expect((err as RetryableError).message).toContain('ENOSPC');
    expect((err as RetryableError).where).toBe('/dev/full');
    await sink.close();
    await t.cleanup();
  });

  it('keeps appending at the new end after logrotate copytruncate shrinks the file', async () => {
    const t = await fileTarget('events.jsonl');
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    await sink.write(sampleEvents(50, 'before-rotation'), live());
    await truncate(join(t.dir, 'events.jsonl'), 0);
    await sink.write(sampleEvents(2, 'after-rotation'), live());
    await sink.close();
    const text = await readFile(join(t.dir, 'events.jsonl'), 'utf8');
    expect(text).not.toContain('\0');
    expect(await t.readBack()).toEqual(sampleEvents(2, 'after-rotation'));
    await t.cleanup();
  });

  it('writes with fsync off too', async () => {
    const t = await fileTarget('events.jsonl', { fsync: false });
    const sink = fileSink.create(t.config, t.env);
    await sink.open(ctx);
    await sink.write(sampleEvents(100), live());
    await sink.close();
    expect(await t.readBack()).toEqual(sampleEvents(100));
    await t.cleanup();
  });
});

/** The descriptors this process holds on a file, from /proc. */
async function fdsOf(path: string): Promise<string[]> {
  const fds: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) fds.push(fd);
  }
  return fds;
}
