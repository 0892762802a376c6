import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointTracker } from '../../agent/checkpoint/tracker.js';
import { MemoryStateStore, type StateStore } from '../../agent/checkpoint/state-store.js';
import type { PluginEnv, SourcePlugin } from '../../agent/plugin/define.js';
import type { Checkpoint, Source, SourceBatch, SourceContext } from '../../agent/plugin/source.js';

/**
 * One isolated copy of the system a source reads (a temp folder, a database
 * with a unique name, a fresh slot...), created by the harness for one test.
 */
export interface SourceFixture {
  /** A config that is valid for this fixture. Must make batches small (a few records), so that N records span several batches. */
  config: Record<string, unknown>;
  env: PluginEnv;
  /** The source's state store; kept across re-opens within the test. Defaults to a fresh MemoryStateStore. */
  state?: StateStore;
  /**
   * Makes `count` new records appear in the underlying system (rows inserted,
   * a file dropped...). Called after `open`, so change-capture sources see them.
   */
  produce(count: number): Promise<void>;
  /** Removes everything the fixture created. */
  teardown(): Promise<void>;
}

/** What a source plugin gives the conformance suite. */
export interface SourceHarness {
  plugin: SourcePlugin;
  /** Creates a fresh fixture (called once per test). */
  fixture(): Promise<SourceFixture>;
  /** Configs the plugin schema must reject, each with why it is wrong. */
  invalidConfigs: Array<{ why: string; config: unknown }>;
  /** Records produced per test; the fixture's batch size must be well below it. Default 25. */
  records?: number;
  /** How long the source may take to deliver the produced records. Default 10 s. */
  deliverWithinMs?: number;
}

// Catches an open or close that hangs, not a slow one: opening postgres-cdc
// creates a logical slot, which waits for every transaction running on the
// server, and other test files hold long ones.
const OPEN_CLOSE_TIMEOUT_MS = 30_000;
// Generous on purpose: a loaded two-core CI box stalls the event loop for
// hundreds of ms; a source that ignores the signal hangs far longer.
const ABORT_WITHIN_MS = 3_000;

/**
 * The suite every source runs (test/integration/NAME.source.test.ts):
 * config is validated by the plugin's own schema, the source opens and closes
 * promptly, yields every produced record with a complete SourceRecord, resumes
 * after a committed checkpoint re-emitting exactly what was not committed,
 * never moves past a checkpoint the tracker did not release, gives the same
 * changeIds on a re-read, and stops promptly when aborted.
 */
export function describeSource(name: string, harness: SourceHarness): void {
  const total = harness.records ?? 25;
  const deliverWithinMs = harness.deliverWithinMs ?? 10_000;

  describe(`source conformance: ${name}`, () => {
    let fixture: SourceFixture;
    let state: StateStore;
    const opened: Source[] = [];

    beforeEach(async () => {
      fixture = await harness.fixture();
      state = fixture.state ?? new MemoryStateStore();
    });

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await fixture.teardown();
    });

    /** Creates a source from the fixture's config as the config loader hands it over: validated, defaults filled in. */
    function create(): Source {
      const config = structuredClone(fixture.config);
      schemaValidator(harness.plugin)(config);
      const source = harness.plugin.create(config as never, fixture.env);
      opened.push(source);
      return source;
    }

    /** Creates and opens a source the way the runtime does: open, then re-commit the stored checkpoint. */
    async function start(from?: Checkpoint): Promise<Source> {
      const source = create();
      await withTimeout(source.open(from, context(name, state)), OPEN_CLOSE_TIMEOUT_MS, 'open');
      if (from !== undefined) await source.commit?.(from);
      return source;
    }

    async function stop(source: Source): Promise<void> {
      opened.splice(opened.indexOf(source), 1);
      await withTimeout(source.close(), OPEN_CLOSE_TIMEOUT_MS, 'close');
    }

    it('validates config with the plugin schema', () => {
      const validate = schemaValidator(harness.plugin);
      expect(validate(fixture.config), JSON.stringify(validate.errors)).toBe(true);
      expect(harness.invalidConfigs.length).toBeGreaterThan(0);
      for (const bad of harness.invalidConfigs) {
        expect(validate(bad.config), `should reject: ${bad.why}`).toBe(false);
      }
    });

    it('declares a description on every config field', () => {
      for (const [field, schema] of Object.entries(harness.plugin.config.properties)) {
        expect((schema as { description?: string }).description, `config field ${field}`).toBeTruthy();
      }
    });

    it('opens and closes within a timeout', async () => {
      const source = await start();
      await stop(source);
    });

    it('check(), where there is one, reports findings without throwing', async () => {
      const source = create();
      if (!source.check) return;
      const results = await withTimeout(source.check(), OPEN_CLOSE_TIMEOUT_MS, 'check');
      expect(results.length).toBeGreaterThan(0);
      for (const r of results) {
        expect(r.name).toBeTruthy();
        expect(r.detail).toBeTruthy();
        if (!r.ok && r.severity !== 'warning') expect(r.fix, `a failed check says how to fix it: ${r.name}`).toBeTruthy();
      }
    });

    it('yields every produced record, each complete and with a unique changeId', async () => {
      const source = await start();
      await fixture.produce(total);
      const batches = await readRecords(source, total, deliverWithinMs);
      const records = batches.flatMap((b) => b.records);
      expect(records).toHaveLength(total);
      expect(new Set(records.map((r) => r.changeId)).size).toBe(total);
      for (const r of records) {
        expect(r.origin.name).toBeTruthy();
        expect(['c', 'u', 'd', 'r', 't']).toContain(r.op);
        expect(typeof r.data).toBe('object');
        expect(Number.isNaN(Date.parse(r.time)), `time ${r.time}`).toBe(false);
        expect(r.location).toBeTruthy();
        expect(r.position).toBeTruthy();
        expect(r.invalid).toBeUndefined();
      }
      for (const b of batches) expect(JSON.parse(JSON.stringify(b.checkpoint))).toEqual(b.checkpoint);
      await stop(source);
    });

    it('resumes after a committed checkpoint: nothing before it again, everything after it', async () => {
      const first = await start();
      await fixture.produce(total);
      const batches = await readRecords(first, total, deliverWithinMs);
      const withRecords = batches.filter((b) => b.records.length > 0);
      expect(withRecords.length, 'the fixture must make several batches').toBeGreaterThanOrEqual(2);
      const committed = withRecords[0]!;
      await first.commit?.(committed.checkpoint);
      await stop(first);

      const upTo = batches.indexOf(committed);
      const before = new Set(batches.slice(0, upTo + 1).flatMap((b) => b.records.map((r) => r.changeId)));
      const after = batches.slice(upTo + 1).flatMap((b) => b.records.map((r) => r.changeId));

      const second = await start(committed.checkpoint);
      const again = (await readRecords(second, after.length, deliverWithinMs)).flatMap((b) => b.records);
      const ids = again.map((r) => r.changeId);
      expect(ids.filter((id) => before.has(id)), 're-emitted committed records').toEqual([]);
      expect(ids).toEqual(after);
      await stop(second);
    });

    it('never moves past a checkpoint the tracker did not release (out-of-order acks)', async () => {
      const first = await start();
      await fixture.produce(total);
      const batches = (await readRecords(first, total, deliverWithinMs)).filter((b) => b.records.length > 0);
      expect(batches.length).toBeGreaterThanOrEqual(2);
      const tracker = new CheckpointTracker();
      const seqs = batches.map((b) => tracker.track(b.checkpoint));
      // Every batch but the second becomes durable; the second never does (a crash).
      let lastReleased: Checkpoint | undefined;
      for (const seq of [...seqs].reverse()) {
        if (seq === seqs[1]) continue;
        for (const cp of tracker.complete(seq)) {
          await first.commit?.(cp);
          lastReleased = cp;
        }
      }
      expect(lastReleased).toEqual(batches[0]!.checkpoint);
      await stop(first);

      const lost = batches.slice(1).flatMap((b) => b.records.map((r) => r.changeId));
      const second = await start(lastReleased);
      const again = (await readRecords(second, lost.length, deliverWithinMs)).flatMap((b) => b.records.map((r) => r.changeId));
      expect(again).toEqual(lost);
      await stop(second);
    });

    it('gives the same changeIds when the same records are read again', async () => {
      const first = await start();
      await fixture.produce(total);
      const ids1 = (await readRecords(first, total, deliverWithinMs)).flatMap((b) => b.records.map((r) => r.changeId));
      await stop(first);
      const second = await start();
      const ids2 = (await readRecords(second, total, deliverWithinMs)).flatMap((b) => b.records.map((r) => r.changeId));
      expect(ids2).toEqual(ids1);
      await stop(second);
    });

    it('stops promptly when the signal aborts while idle', async () => {
      const source = await start();
      const controller = new AbortController();
      const iterator = source.read(controller.signal)[Symbol.asyncIterator]();
      const pending = iterator.next();
      await sleep(200);
      const abortedAt = Date.now();
      controller.abort();
      // An idle source may still hand over record-less batches that only move
      // its position (a shared binlog or WAL carries other tables' traffic);
      // what matters is that none carries a record and that the read then ends.
      const ended = (async () => {
        for (let r = await pending; !r.done; r = await iterator.next()) expect(r.value.records).toEqual([]);
      })();
      await withTimeout(ended, ABORT_WITHIN_MS * 2, 'read after abort');
      expect(Date.now() - abortedAt).toBeLessThan(ABORT_WITHIN_MS);
      await stop(source);
    });

    it('stops promptly when the signal aborts mid-stream', async () => {
      const source = await start();
      await fixture.produce(total);
      const controller = new AbortController();
      const iterator = source.read(controller.signal)[Symbol.asyncIterator]();
      const firstBatch = await withTimeout(nextWithRecords(iterator), deliverWithinMs, 'first batch');
      expect(firstBatch.records.length).toBeGreaterThan(0);
      const abortedAt = Date.now();
      controller.abort();
      // It may hand over what it already holds, but must then end on its own.
      await withTimeout(drain(iterator), ABORT_WITHIN_MS * 2, 'drain after abort');
      expect(Date.now() - abortedAt).toBeLessThan(ABORT_WITHIN_MS);
      await stop(source);
    });
  });
}

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/** An ajv validator for the plugin's config schema, set up as agent/config/load-config.ts does (strict, defaults, formats). */
export function schemaValidator(plugin: SourcePlugin): ReturnType<Ajv['compile']> {
  const ajv = addFormats(new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }));
  return ajv.compile(plugin.config);
}

/** A SourceContext for tests: a silent logger and the given state. */
export function context(pipeline: string, state: StateStore): SourceContext {
  return { pipeline, agentId: 'conformance', dataDir: '/tmp', state, logger: pino({ level: 'silent' }) };
}

/**
 * Pulls batches until `count` records arrived (or the time is up), then
 * aborts the read and returns every batch pulled, empty ones included.
 */
export async function readRecords(source: Source, count: number, withinMs: number): Promise<SourceBatch[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), withinMs);
  const batches: SourceBatch[] = [];
  let seen = 0;
  try {
    if (count > 0) {
      for await (const batch of source.read(controller.signal)) {
        batches.push(batch);
        seen += batch.records.length;
        if (seen >= count) break;
      }
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (seen < count) throw new Error(`expected ${count} records within ${withinMs} ms, got ${seen}`);
  return batches;
}

async function nextWithRecords(iterator: AsyncIterator<SourceBatch>): Promise<SourceBatch> {
  for (;;) {
    const r = await iterator.next();
    if (r.done) throw new Error('read ended before yielding a record');
    if (r.value.records.length > 0) return r.value;
  }
}

async function drain(iterator: AsyncIterator<SourceBatch>): Promise<void> {
  for (;;) if ((await iterator.next()).done) return;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
