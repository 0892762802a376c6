import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import iconv from 'iconv-lite';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStateStore, RedisStateStore, type StateStore } from '../../agent/checkpoint/state-store.js';
import { RetryableError } from '../../agent/errors/index.js';
import type { Checkpoint, Source, SourceBatch, SourceRecord } from '../../agent/plugin/source.js';
import { fileDropSource } from '../../sources/file-drop/index.js';
import { context, describeSource, readRecords, schemaValidator, sleep, withTimeout } from '../conformance/describe-source.js';

// ---------------------------------------------------------------------------
// The conformance suite: a temp folder per test, each produce() drops a CSV.

describeSource('file-drop', {
  plugin: fileDropSource,
  records: 25,
  async fixture() {
    const root = await mkdtemp(join(tmpdir(), 'ferry-fd-conf-'));
    await mkdir(join(root, 'inbox'));
    const nonce = randomUUID();
    let dropped = 0;
    return {
      config: { type: 'file-drop', path: './inbox', format: { type: 'csv', delimiter: ';' }, complete: { minAgeMs: 50 }, archive: './archive', errors: './errors', batchSize: 10 },
      env: { configDir: root },
      async produce(count) {
        const rows = Array.from({ length: count }, (_, i) => `${nonce}-${dropped}-${i};row ${i}`);
        await writeFile(join(root, 'inbox', `drop-${dropped++}.csv`), `ID;NAME\n${rows.join('\n')}\n`);
      },
      teardown: () => rm(root, { recursive: true, force: true }),
    };
  },
  invalidConfigs: [
    { why: 'no path', config: { type: 'file-drop', format: { type: 'csv' } } },
    { why: 'unknown key', config: { type: 'file-drop', path: './in', format: { type: 'csv' }, colour: 'red' } },
    { why: 'unknown format', config: { type: 'file-drop', path: './in', format: { type: 'xlsx' } } },
    { why: 'csv with an unknown option', config: { type: 'file-drop', path: './in', format: { type: 'csv', seperator: ';' } } },
    { why: 'fixed-width without columns', config: { type: 'file-drop', path: './in', format: { type: 'fixed-width' } } },
    { why: 'both completeness rules', config: { type: 'file-drop', path: './in', format: { type: 'jsonl' }, complete: { minAgeMs: 5, marker: '.done' } } },
    { why: 'batchSize 0', config: { type: 'file-drop', path: './in', format: { type: 'jsonl' }, batchSize: 0 } },
  ],
});

// ---------------------------------------------------------------------------
// file-drop specifics, against real files and the real chokidar watcher.

let root: string;
let open: Source[] = [];

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  root = await mkdtemp(join(tmpdir(), 'ferry-fd-'));
  await mkdir(join(root, 'inbox'));
  return root;
}

const inbox = (...p: string[]): string => join(root, 'inbox', ...p);

async function start(config: Record<string, unknown>, opts: { from?: Checkpoint; state?: StateStore } = {}): Promise<Source> {
  const full = structuredClone({ type: 'file-drop', path: './inbox', archive: './archive', errors: './errors', complete: { minAgeMs: 100 }, ...config });
  const validate = schemaValidator(fileDropSource);
  expect(validate(full), JSON.stringify(validate.errors)).toBe(true);
  const source = fileDropSource.create(full as never, { configDir: root });
  open.push(source);
  await source.open(opts.from, context('test', opts.state ?? new MemoryStateStore()));
  if (opts.from !== undefined) await source.commit?.(opts.from);
  return source;
}

/** Reads `count` records and commits every batch in order, as the runtime does once they are durable. */
async function readAndCommit(source: Source, count: number, withinMs = 30_000): Promise<SourceRecord[]> {
  const batches = await readRecords(source, count, withinMs);
  // The batch that finishes a file may come right after the last record: pull it too when it is empty.
  for (const b of batches) await source.commit?.(b.checkpoint);
  return batches.flatMap((b) => b.records);
}

/** Pulls for `ms`, failing if any record arrives. */
async function expectNothingFor(source: Source, ms: number): Promise<void> {
  const batches = await readBatchesFor(source, ms);
  expect(batches.flatMap((b) => b.records)).toEqual([]);
}

async function readBatchesFor(source: Source, ms: number): Promise<SourceBatch[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  const out: SourceBatch[] = [];
  for await (const b of source.read(controller.signal)) out.push(b);
  clearTimeout(timer);
  return out;
}

/**
 * Pulls batches until `enough` holds for what was read so far (checked after each batch and every 50 ms, for
 * conditions outside the batches such as a file moved), and throws if it does not within `limitMs`.
 */
async function readUntil(source: Source, what: string, enough: (batches: SourceBatch[]) => boolean | Promise<boolean>, limitMs = 30_000): Promise<SourceBatch[]> {
  const controller = new AbortController();
  const out: SourceBatch[] = [];
  let met = false;
  const check = async (): Promise<void> => {
    if (!met && (await enough(out))) {
      met = true;
      controller.abort();
    }
  };
  const deadline = Date.now() + limitMs;
  const clock = (async () => {
    while (!controller.signal.aborted) {
      if (Date.now() > deadline) controller.abort();
      else await check();
      await sleep(50);
    }
  })();
  try {
    for await (const b of source.read(controller.signal)) {
      out.push(b);
      await check();
    }
  } finally {
    controller.abort();
    await clock;
  }
  if (!met) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
  return out;
}

const hasFailed = (batches: SourceBatch[]): boolean => batches.some((b) => (b.checkpoint as { failed?: string }).failed !== undefined);

const csv = (lines: string[]): string => `${lines.join('\n')}\n`;

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('file-drop: picking files up', () => {
  it('reads a file present at start-up, with origin, location, position, time and changeIds', async () => {
    await folder();
    await writeFile(inbox('kunden_1.csv'), csv(['KUNDE_NR;NAME', '1;Anna', '2;Bert']));
    const mtime = (await stat(inbox('kunden_1.csv'))).mtime.toISOString();
    const source = await start({ format: { type: 'csv', delimiter: ';', header: true } });
    const records = await readAndCommit(source, 2);
    expect(records.map((r) => r.data)).toEqual([{ KUNDE_NR: '1', NAME: 'Anna' }, { KUNDE_NR: '2', NAME: 'Bert' }]);
    expect(records[0]).toMatchObject({ origin: { kind: 'file', name: 'kunden_1.csv' }, op: 'c', location: 'inbox/kunden_1.csv:2', position: 'kunden_1.csv#2', time: mtime });
    expect(records[1]!.changeId).toMatch(/^[0-9a-f]{64}:1$/);
  });

  it('reads a file dropped later, and archives it only on commit', async () => {
    await folder();
    const source = await start({ format: { type: 'csv' } });
    setTimeout(() => void writeFile(inbox('later.csv'), csv(['a,b', '1,2'])), 300);
    const batches = await readRecords(source, 1, 30_000);
    expect(batches.flatMap((b) => b.records.map((r) => r.data))).toEqual([{ a: '1', b: '2' }]);
    const last = batches.at(-1)!;
    expect(last.checkpoint).toMatchObject({ file: 'later.csv', records: 1, done: true });
    expect(await readdir(inbox())).toEqual(['later.csv']);
    await source.commit!(last.checkpoint);
    await source.commit!(last.checkpoint); // idempotent
    expect(await readdir(inbox())).toEqual([]);
    expect(await readdir(join(root, 'archive'))).toEqual(['later.csv']);
  });

  it('does not read a file that is still growing until it has been quiet for minAgeMs', async () => {
    await folder();
    // The source shares this process's event loop: a stall of the process longer than minAgeMs minus the pause
    // between two writes looks to it like a quiet file. A quiet period well above the pause leaves room for a
    // loaded machine; the guard below reports a stall that still exceeds it instead of blaming the source.
    const minAgeMs = 3000;
    const pauseMs = 400;
    const source = await start({ format: { type: 'csv' }, complete: { minAgeMs } });
    const controller = new AbortController();
    const iterator = source.read(controller.signal)[Symbol.asyncIterator]();
    let arrived = false;
    const first = iterator.next().then((r) => ((arrived = true), r));
    const file = inbox('growing.csv');
    const firstWrite = Date.now();
    let lastWrite = firstWrite;
    for (let chunk = 0; chunk < 10; chunk++) {
      const rows = Array.from({ length: 100 }, (_, i) => `${chunk * 100 + i},row ${chunk * 100 + i}\n`).join('');
      // Synchronous, and the time taken before it: the source cannot see this size any earlier (a write stream
      // would land the bytes at some later moment).
      lastWrite = Date.now();
      appendFileSync(file, chunk === 0 ? `n,text\n${rows}` : rows);
      await sleep(pauseMs);
      // Until lastWrite + minAgeMs the file has not been quiet for minAgeMs, so nothing may have arrived by now.
      expect(Date.now() - lastWrite, 'the test itself stalled longer than minAgeMs after a write').toBeLessThan(minAgeMs);
      expect(arrived, `emitted while the file was still being written (chunk ${chunk})`).toBe(false);
    }
    expect(lastWrite - firstWrite, 'the file must grow for longer than the quiet period').toBeGreaterThan(minAgeMs);
    const got: SourceRecord[] = [...(await withTimeout(first, 30_000, 'first batch')).value!.records];
    while (got.length < 1_000) {
      const r = await withTimeout(iterator.next(), 30_000, 'next batch');
      got.push(...r.value!.records);
    }
    controller.abort();
    await iterator.return?.();
    expect(got.map((r) => Number(r.data.n))).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
  });

  it('marker mode: waits for FILE.done, then archives the marker with the file', async () => {
    await folder();
    await writeFile(inbox('orders.csv'), csv(['id', '7']));
    const source = await start({ format: { type: 'csv' }, complete: { marker: '.done' } });
    await expectNothingFor(source, 600);
    await writeFile(inbox('orders.csv.done'), '');
    const records = await readAndCommit(source, 1);
    expect(records.map((r) => r.data)).toEqual([{ id: '7' }]);
    expect((await readdir(join(root, 'archive'))).sort()).toEqual(['orders.csv', 'orders.csv.done']);
    expect(await readdir(inbox())).toEqual([]);
  });

  it('reads only files matching the pattern, oldest first', async () => {
    await folder();
    await writeFile(inbox('b.csv'), csv(['x', 'b']));
    await writeFile(inbox('notes.txt'), 'ignore me');
    await writeFile(inbox('a.csv'), csv(['x', 'a']));
    const old = new Date(Date.now() - 60_000);
    await utimes(inbox('b.csv'), old, old);
    const source = await start({ format: { type: 'csv' }, pattern: '*.csv' });
    const records = await readAndCommit(source, 2);
    expect(records.map((r) => r.data.x)).toEqual(['b', 'a']);
    await expectNothingFor(source, 400);
    expect(await readdir(inbox())).toEqual(['notes.txt']);
  });
});

describe('file-drop: start-up and preflight', () => {
  it('a missing drop folder stops open with a FerryError that says how to fix it', async () => {
    await folder();
    const source = fileDropSource.create({ type: 'file-drop', path: './nope', format: { type: 'csv' } } as never, { configDir: root });
    await expect(source.open(undefined, context('test', new MemoryStateStore()))).rejects.toMatchObject({ code: 'FERRY_SOURCE_UNAVAILABLE', where: 'source.path' });
    await source.close();
  });

  it('an unknown encoding is refused when the source is created', async () => {
    await folder();
    expect(() => fileDropSource.create({ type: 'file-drop', path: './inbox', format: { type: 'csv', encoding: 'klingon' } } as never, { configDir: root })).toThrow(/unknown encoding "klingon"/);
  });

  it('check() reports usable folders and creates nothing', async () => {
    await folder();
    const source = await start({ format: { type: 'csv' } });
    const results = await source.check!();
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['drop folder', true],
      ['archive folder', true],
      ['errors folder', true],
    ]);
    expect((await readdir(root)).sort()).toEqual(['inbox']);
  });
});

describe('file-drop: the same content is never sent twice', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('a re-dropped identical file, even renamed, is archived as a duplicate (state in Redis)', async () => {
    await folder();
    const key = `ferry-test:${randomUUID()}:state`;
    const state = new RedisStateStore(redis, key);
    const content = csv(['id;name', '1;Anna', '2;Bert']);
    await writeFile(inbox('kunden_1.csv'), content);
    const first = await start({ format: { type: 'csv', delimiter: ';' } }, { state });
    const sent = await readAndCommit(first, 2);
    expect(await redis.hlen(key)).toBe(1);
    // Once Redis answers for the content, the source forgets it: its memory follows the files in flight, not every file ever read.
    expect((first as unknown as { readThisRun: Set<string> }).readThisRun.size).toBe(0);

    const archived = async (name: string): Promise<boolean> => (await readdir(join(root, 'archive')).catch(() => [] as string[])).includes(name);
    await writeFile(inbox('kunden_1_copy.csv'), content);
    // Read until the copy has been handled (archived), so "nothing sent" covers the copy, however slow the machine.
    const copyRead = await readUntil(first, 'the copy to be archived as a duplicate', () => archived('kunden_1_copy.csv'));
    expect(copyRead.flatMap((b) => b.records)).toEqual([]);
    expect((await readdir(join(root, 'archive'))).sort()).toEqual(['kunden_1.csv', 'kunden_1_copy.csv']);
    await first.close();

    // After a restart too (a fresh source, the same Redis state); the ids would have been the same anyway.
    await writeFile(inbox('again.csv'), content);
    const second = await start({ format: { type: 'csv', delimiter: ';' } }, { state });
    const againRead = await readUntil(second, 'the second copy to be archived as a duplicate', () => archived('again.csv'));
    expect(againRead.flatMap((b) => b.records)).toEqual([]);
    expect(await readdir(inbox())).toEqual([]);
    expect(sent.map((r) => r.changeId.split(':')[1])).toEqual(['0', '1']);
    await redis.del(key);
  });

  it('a state store that cannot be reached makes read fail with a RetryableError', async () => {
    await folder();
    await writeFile(inbox('a.csv'), csv(['x', '1']));
    // Nothing listens on port 1: a real connection failure, as when Redis is down.
    const closed = new Redis({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, lazyConnect: true });
    const source = await start({ format: { type: 'csv' } }, { state: new RedisStateStore(closed, `ferry-test:${randomUUID()}`) });
    await expect(readRecords(source, 1, 3_000)).rejects.toBeInstanceOf(RetryableError);
    closed.disconnect();
  });

  it('without an archive folder, processed files stay and are remembered', async () => {
    await folder();
    await writeFile(inbox('stay.jsonl'), '{"a":1}\n');
    const state = new MemoryStateStore();
    const first = await start({ format: { type: 'jsonl' }, archive: undefined }, { state });
    await readAndCommit(first, 1);
    await expectNothingFor(first, 400);
    await first.close();
    const second = await start({ format: { type: 'jsonl' }, archive: undefined }, { state });
    await expectNothingFor(second, 600);
    expect(await readdir(inbox())).toEqual(['stay.jsonl']);
  });
});

describe('file-drop: formats and encodings', () => {
  it('Windows-1252 keeps ä, € and ß (decoded before parsing, not latin1)', async () => {
    await folder();
    const text = 'KUNDE_NR;NAME;NOTIZ\r\n1;Jörg Ärger;kostet 12 €\r\n2;Straßenbau GmbH;„Zitat“\r\n';
    const bytes = iconv.encode(text, 'windows-1252');
    expect(bytes.includes(0x80)).toBe(true);
    await writeFile(inbox('kunden.csv'), bytes);
    const source = await start({ format: { type: 'csv', delimiter: ';', header: true, encoding: 'windows-1252' } });
    const records = await readAndCommit(source, 2);
    expect(records.map((r) => r.data)).toEqual([
      { KUNDE_NR: '1', NAME: 'Jörg Ärger', NOTIZ: 'kostet 12 €' },
      { KUNDE_NR: '2', NAME: 'Straßenbau GmbH', NOTIZ: '„Zitat“' },
    ]);
  });

  it('semicolons, quotes, escaped quotes, a line break in a field, a header and a UTF-8 BOM', async () => {
    await folder();
    await writeFile(inbox('q.csv'), '\ufeffid;text\n1;"a;b"\n2;"he said ""hi"""\n3;"two\nlines"\n4;plain\n');
    const source = await start({ format: { type: 'csv', delimiter: ';' } });
    const records = await readAndCommit(source, 4);
    expect(records.map((r) => r.data)).toEqual([
      { id: '1', text: 'a;b' },
      { id: '2', text: 'he said "hi"' },
      { id: '3', text: 'two\nlines' },
      { id: '4', text: 'plain' },
    ]);
    expect(records.map((r) => r.location)).toEqual(['inbox/q.csv:2', 'inbox/q.csv:3', 'inbox/q.csv:4', 'inbox/q.csv:6']);
  });

  it('explicit columns for a file without a header', async () => {
    await folder();
    await writeFile(inbox('nohead.csv'), csv(['1|A', '2|I']));
    const source = await start({ format: { type: 'csv', delimiter: '|', columns: ['ID', 'STATUS'] } });
    const records = await readAndCommit(source, 2);
    expect(records.map((r) => r.data)).toEqual([{ ID: '1', STATUS: 'A' }, { ID: '2', STATUS: 'I' }]);
    expect(records[0]!.location).toBe('inbox/nohead.csv:1');
  });

  it('JSON lines: a bad line is an invalid record with its line, the others flow', async () => {
    await folder();
    await writeFile(inbox('e.jsonl'), '{"id":1}\n\n{"id":2,\n[1,2]\n{"id":3}\n');
    const source = await start({ format: { type: 'jsonl' } });
    const records = await readAndCommit(source, 4);
    expect(records.map((r) => [r.location, r.invalid === undefined ? r.data : 'invalid'])).toEqual([
      ['inbox/e.jsonl:1', { id: 1 }],
      ['inbox/e.jsonl:3', 'invalid'],
      ['inbox/e.jsonl:4', 'invalid'],
      ['inbox/e.jsonl:5', { id: 3 }],
    ]);
    expect(records[1]!.invalid).toMatch(/not valid JSON/);
    expect(records[1]!.data).toEqual({ _raw: '{"id":2,' });
    expect(records[2]!.invalid).toBe('not a JSON object');
  });

  it('fixed-width, in cp850, trimmed, with a short line reported as invalid', async () => {
    await folder();
    const lines = ['0001Müller    A', '0002Weiß      I', '0003', '0004Öz        A'];
    await writeFile(inbox('k.txt'), iconv.encode(`${lines.join('\r\n')}\r\n`, 'cp850'));
    const columns = [
      { name: 'NR', start: 1, length: 4 },
      { name: 'NAME', start: 5, length: 10 },
      { name: 'STATUS', start: 15, length: 1 },
    ];
    const source = await start({ format: { type: 'fixed-width', columns, encoding: 'cp850' } });
    const records = await readAndCommit(source, 4);
    expect(records.map((r) => r.data)).toEqual([
      { NR: '0001', NAME: 'Müller', STATUS: 'A' },
      { NR: '0002', NAME: 'Weiß', STATUS: 'I' },
      { _raw: '0003' },
      { NR: '0004', NAME: 'Öz', STATUS: 'A' },
    ]);
    expect(records[2]).toMatchObject({ location: 'inbox/k.txt:3', invalid: 'line is 4 characters long, the layout needs 15' });
  });

  it('a malformed CSV row is an invalid record with its line number; the rows around it come through', async () => {
    await folder();
    await writeFile(inbox('m.csv'), csv(['id;name;city', '1;Anna;Bonn', '2;Bert', '3;Cleo;Köln', '4;Dora;Ulm;extra', '5;Emil;Kiel']));
    const source = await start({ format: { type: 'csv', delimiter: ';' } });
    const records = await readAndCommit(source, 5);
    expect(records.map((r) => [r.position, r.invalid === undefined])).toEqual([
      ['m.csv#2', true],
      ['m.csv#3', false],
      ['m.csv#4', true],
      ['m.csv#5', false],
      ['m.csv#6', true],
    ]);
    expect(records[1]!.invalid).toMatch(/Invalid Record Length/);
    expect(records[1]!.data).toEqual({ _raw: '2;Bert' });
    expect(records.map((r) => r.changeId.split(':')[1])).toEqual(['0', '1', '2', '3', '4']);
  });
});

describe('file-drop: unreadable files', () => {
  it('a file whose layout does not fit goes to errors/ with FILE.error.txt, only on commit', async () => {
    await folder();
    await writeFile(inbox('bad.txt'), 'short\n');
    await writeFile(inbox('good.jsonl'), '{"ok":true}\n');
    const columns = [{ name: 'A', start: 1, length: 20 }];
    const source = await start({ format: { type: 'fixed-width', columns }, pattern: '*.txt' });
    const batches = await readUntil(source, 'the failed-file checkpoint', hasFailed);
    const failed = batches.find((b) => (b.checkpoint as { failed?: string }).failed !== undefined);
    expect(failed?.checkpoint).toMatchObject({ file: 'bad.txt', done: true, failed: expect.stringMatching(/layout does not fit line 1/) });
    expect(await readdir(inbox())).toContain('bad.txt');
    for (const b of batches) await source.commit!(b.checkpoint);
    expect((await readdir(join(root, 'errors'))).sort()).toEqual(['bad.txt', 'bad.txt.error.txt']);
    const why = await readFile(join(root, 'errors', 'bad.txt.error.txt'), 'utf8');
    expect(why).toMatch(/reason: the fixed-width layout does not fit/);
    expect(why).toMatch(/sha256: [0-9a-f]{64}/);
    expect(why).toMatch(/time: \d{4}-/);
  });

  it('a CSV whose header cannot be parsed is unreadable', async () => {
    await folder();
    await writeFile(inbox('h.csv'), '"id;name\n1;a\n');
    const source = await start({ format: { type: 'csv', delimiter: ';' } });
    const batches = await readUntil(source, 'the failed-file checkpoint', hasFailed);
    expect(batches.flatMap((b) => b.records)).toEqual([]);
    expect(batches.at(-1)!.checkpoint).toMatchObject({ file: 'h.csv', failed: expect.stringMatching(/header/) });
    for (const b of batches) await source.commit!(b.checkpoint);
    expect(await readdir(join(root, 'errors'))).toContain('h.csv.error.txt');
  });

  it('a file that cannot be read at all goes to errors/ with its reason, after commit', async () => {
    await folder();
    // /proc/self/mem reads fail with EIO for everyone, root included (a chmod 000 file would not stop root).
    await symlink('/proc/self/mem', inbox('broken.csv'));
    const source = await start({ format: { type: 'csv' } });
    const batches = await readUntil(source, 'the failed-file checkpoint', hasFailed);
    expect(batches.at(-1)!.checkpoint).toMatchObject({ file: 'broken.csv', hash: '', records: 0, failed: expect.stringMatching(/EIO/) });
    expect(await readdir(inbox())).toEqual(['broken.csv']);
    for (const b of batches) await source.commit!(b.checkpoint);
    expect((await readdir(join(root, 'errors'))).sort()).toEqual(['broken.csv', 'broken.csv.error.txt']);
    expect(await readFile(join(root, 'errors', 'broken.csv.error.txt'), 'utf8')).toMatch(/reason: cannot read the file: .*EIO/);
  });
});

describe('file-drop: resume and memory', () => {
  it('resumes mid-file after the last committed record, then finishes and archives the file', async () => {
    await folder();
    await writeFile(inbox('big.csv'), csv(['n', ...Array.from({ length: 35 }, (_, i) => String(i))]));
    const state = new MemoryStateStore();
    const first = await start({ format: { type: 'csv' }, batchSize: 10 }, { state });
    const batches = await readRecords(first, 20, 30_000);
    const committed = batches[0]!.checkpoint;
    expect(committed).toMatchObject({ file: 'big.csv', records: 10, done: false });
    await first.commit!(committed);
    await first.close(); // a crash: the second batch was read but never committed

    const second = await start({ format: { type: 'csv' }, batchSize: 10 }, { from: committed, state });
    const rest = await readAndCommit(second, 25);
    expect(rest.map((r) => r.data.n)).toEqual(Array.from({ length: 25 }, (_, i) => String(i + 10)));
    expect(rest[0]!.changeId).toBe(batches[1]!.records[0]!.changeId);
    expect(await readdir(join(root, 'archive'))).toEqual(['big.csv']);
  });

  it('a checkpoint into a file that changed since is ignored: the new content is read from the start', async () => {
    await folder();
    await writeFile(inbox('f.csv'), csv(['n', '1', '2', '3']));
    const from = { file: 'f.csv', hash: '0'.repeat(64), records: 2, done: false };
    const source = await start({ format: { type: 'csv' } }, { from });
    const records = await readAndCommit(source, 3);
    expect(records.map((r) => r.data.n)).toEqual(['1', '2', '3']);
  });

  it('streams a 200k-row file with bounded heap', async () => {
    await folder();
    const out = createWriteStream(inbox('large.csv'));
    out.write('id;name;city;amount\n');
    for (let i = 0; i < 200_000; i++) {
      if (!out.write(`${i};Name number ${i};Some City ${i % 97};${i},50\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((done) => out.end(() => done()));
    const source = await start({ format: { type: 'csv', delimiter: ';' }, batchSize: 500 });
    // Retained heap, measured after a full GC so that garbage not yet collected does not count.
    const retained = (): number => (collectGarbage(), process.memoryUsage().heapUsed);
    const baseline = retained();
    let peak = baseline;
    let count = 0;
    let batches = 0;
    let lastId = '';
    const controller = new AbortController();
    for await (const batch of source.read(controller.signal)) {
      count += batch.records.length;
      if (batch.records.length) lastId = String(batch.records.at(-1)!.data.id);
      if (++batches % 40 === 0) peak = Math.max(peak, retained());
      await source.commit!(batch.checkpoint);
      if ((batch.checkpoint as { done: boolean }).done) break;
    }
    controller.abort();
    expect(count).toBe(200_000);
    expect(lastId).toBe('199999');
    // Holding the rows would retain well over 100 MB; streaming keeps a few batches and buffers.
    expect(peak - baseline).toBeLessThan(16 * 1024 * 1024);
  }, 300_000);

  it('stops promptly when aborted in the middle of a file', async () => {
    await folder();
    await writeFile(inbox('f.csv'), csv(['n', ...Array.from({ length: 5_000 }, (_, i) => String(i))]));
    const source = await start({ format: { type: 'csv' }, batchSize: 10 });
    const controller = new AbortController();
    const iterator = source.read(controller.signal)[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    const t0 = Date.now();
    await withTimeout(
      (async () => {
        while (!(await iterator.next()).done);
      })(),
      5_000,
      'read after abort',
    );
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe('file-drop: SIGKILL mid-file', () => {
  it('a killed reader restarted from its last stored checkpoint loses no record; repeats carry the same ids', async () => {
    await folder();
    const rows = 20_000;
    await writeFile(inbox('big.csv'), csv(['n', ...Array.from({ length: rows }, (_, i) => String(i))]));
    const out = join(root, 'delivered.txt');
    const cpFile = join(root, 'checkpoint.json');
    const statePath = join(root, 'state.json');
    const script = join(root, 'reader.mjs');
    await writeFile(script, readerScript());
    const run = (env: Record<string, string> = {}): ChildProcess =>
      spawn(process.execPath, [script, root, out, cpFile, statePath], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });

    const paused = join(root, 'paused');
    const first = run({ FERRY_TEST_PAUSE_AT: '3000', FERRY_TEST_PAUSED_FILE: paused });
    // The reader parks itself after delivering a batch it has not yet
    // checkpointed, so the kill lands mid-file and between delivery and commit
    // however fast or loaded the machine is.
    while (!(await stat(paused).catch(() => undefined))) await sleep(20);
    first.kill('SIGKILL');
    await new Promise((done) => first.once('exit', done));
    const before = (await readFile(out, 'utf8')).split('\n').filter(Boolean).length;
    expect(before).toBeGreaterThanOrEqual(3_000);
    expect(before).toBeLessThan(rows);

    const second = run();
    const code = await new Promise((done) => second.once('exit', done));
    expect(code).toBe(0);
    const delivered = (await readFile(out, 'utf8')).split('\n').filter(Boolean);
    const ids = new Set(delivered);
    expect(ids.size).toBe(rows);
    expect([...ids].map((id) => Number(id.split(':')[1])).sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
    // Resumed, not restarted: exactly the batch delivered but not checkpointed came twice.
    expect(delivered.length - rows).toBeGreaterThan(0);
    expect(delivered.length - rows).toBeLessThan(2_000);
    expect(await readdir(join(root, 'archive'))).toEqual(['big.csv']);
  });
});

/**
 * The runtime's loop, cut down, in a child process running the built source:
 * deliver a batch (append its ids to a file), store its checkpoint, commit,
 * and exit once a file is done. A fresh start reads the stored checkpoint.
 */
function readerScript(): string {
  const dist = (p: string): string => JSON.stringify(pathToFileURL(join(process.cwd(), 'dist', p)).href);
  return `
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
const { fileDropSource } = await import(${dist('sources/file-drop/index.js')});
const { createLogger } = await import(${dist('agent/telemetry/logger.js')});
const [root, out, cpFile, statePath] = process.argv.slice(2);
const load = (f) => (existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined);
const save = (f, v) => { writeFileSync(f + '.tmp', JSON.stringify(v)); renameSync(f + '.tmp', f); };
const map = new Map(Object.entries(load(statePath) ?? {}));
const state = {
  get: async (k) => map.get(k),
  set: async (k, v) => { map.set(k, v); save(statePath, Object.fromEntries(map)); },
  delete: async (k) => { map.delete(k); save(statePath, Object.fromEntries(map)); },
};
const source = fileDropSource.create(
  { type: 'file-drop', path: './inbox', format: { type: 'csv' }, complete: { minAgeMs: 50 }, archive: './archive', batchSize: 200 },
  { configDir: root },
);
const from = load(cpFile);
const pauseAt = process.env.FERRY_TEST_PAUSE_AT === undefined ? undefined : Number(process.env.FERRY_TEST_PAUSE_AT);
let delivered = 0;
await source.open(from, { pipeline: 'kill', agentId: 'test', dataDir: root, state, logger: createLogger('silent') });
if (from !== undefined) await source.commit(from);
for await (const batch of source.read(new AbortController().signal)) {
  if (batch.records.length) appendFileSync(out, batch.records.map((r) => r.changeId).join('\\n') + '\\n');
  delivered += batch.records.length;
  if (pauseAt !== undefined && delivered >= pauseAt) {
    // Delivered, not yet checkpointed: wait here to be killed.
    writeFileSync(process.env.FERRY_TEST_PAUSED_FILE, '');
    await new Promise(() => setInterval(() => {}, 1_000));
  }
  save(cpFile, batch.checkpoint);
  await source.commit(batch.checkpoint);
  if (batch.checkpoint.done) break;
}
await source.close();
`;
}
