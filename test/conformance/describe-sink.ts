import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PermanentError } from '../../agent/errors/permanent-error.js';
import { RetryableError } from '../../agent/errors/retryable-error.js';
import { eventId, type FerryEvent } from '../../agent/event/cloud-event.js';
import type { PluginEnv, SinkPlugin } from '../../agent/plugin/define.js';
import type { Sink, SinkContext } from '../../agent/plugin/sink.js';

/** A real target (a file, a server...) prepared for one test, and how to read it back. */
export interface SinkTarget<C> {
  /** A valid `sinks[]` entry pointing at this target. */
  config: C;
  env: PluginEnv;
  /** Every event the target holds, in arrival order; a target that keeps duplicates returns them. */
  readBack(): Promise<Array<Record<string, unknown>>>;
  /**
   * Set when the target itself drops an event whose `id` it already holds (a
   * receiver doing what docs/sinks/webhook.md asks), so a replay leaves no new
   * copies. Unset, the target keeps what it is sent (a file, a stream) and a
   * replay must show up again in full.
   */
  dropsDuplicates?: boolean;
  /**
   * For sinks that send a de-duplication key besides the event ids (the
   * webhook's `Idempotency-Key`): every key the target received, in arrival
   * order, one per request or message. A replay must repeat them.
   */
  dedupeKeys?(): Promise<string[]>;
  cleanup?(): Promise<void>;
}

/** A target that makes `write` fail in a known way, and the error class it must cause. */
export interface SinkFailure<C> {
  name: string;
  expect: 'retryable' | 'permanent';
  /** When set, the RetryableError must carry exactly this retryAfterMs. */
  retryAfterMs?: number;
  target(): Promise<SinkTarget<C>>;
}

export interface SinkHarness<S extends TObject> {
  plugin: SinkPlugin<S>;
  /** A fresh, working target for each test. */
  target(): Promise<SinkTarget<Static<S>>>;
  /** Entries the plugin's schema must reject, keyed by why they are wrong. */
  badConfigs: Record<string, unknown>;
  /** At least one: every way of failing the harness can stage for real. */
  failures: SinkFailure<Static<S>>[];
  /** A target `check()` must report as failing with a fix; required when the plugin has `check()`. */
  unreachable?(): Promise<SinkTarget<Static<S>>>;
  /** A target on which a write stays in flight for seconds, to show an abort ends it promptly. */
  hanging?(): Promise<SinkTarget<Static<S>>>;
  /** Builds the sink; defaults to `plugin.create`. */
  create?(config: Static<S>, env: PluginEnv): Sink;
  /** Most milliseconds open, close and a failing write may take. Default 5000. */
  timeoutMs?: number;
}

/** Events as the pipeline makes them: deterministic ids, one key per event. */
export function sampleEvents(count: number, tag: string = 'conformance'): FerryEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    specversion: '1.0' as const,
    id: eventId(tag, 'customer', `row-${i}`),
    source: `ferry://test/${tag}`,
    type: 'customer.created',
    subject: `K${i}`,
    time: new Date(Date.UTC(2024, 0, 1, 0, 0, i % 60)).toISOString(),
    dataschema: 'urn:ferry:contract:customer:v1',
    datacontenttype: 'application/json' as const,
    data: { id: `K${i}`, name: `Müller ${i} €`, balance: '1234.50' },
    ferryop: 'c' as const,
    ferryposition: `kunden.csv:${i + 2}`,
    ferrypipeline: tag,
  }));
}

/**
 * The suite every sink runs (docs/specs/component.md): schema hygiene, bad
 * config rejected, open/close in time, a real check, a batch read back exactly,
 * a replay that reaches the target with the same ids and bytes (and the same
 * de-duplication keys), failures classified as retryable or permanent, and
 * aborts honoured promptly.
 */
export function describeSink<S extends TObject>(name: string, harness: SinkHarness<S>): void {
  const limit = harness.timeoutMs ?? 5000;
  const create = (t: SinkTarget<Static<S>>): Sink => (harness.create ?? harness.plugin.create)(t.config, t.env);
  const ctx = (): SinkContext => ({ pipeline: 'conformance', sink: name, agentId: 'test', dataDir: '/tmp', logger: pino({ level: 'silent' }) });

  /** Runs body with an open sink on a fresh target, always closing and cleaning up. */
  const withSink = async (target: SinkTarget<Static<S>>, body: (sink: Sink) => Promise<void>): Promise<void> => {
    const sink = create(target);
    try {
      await sink.open(ctx());
      await body(sink);
    } finally {
      await sink.close();
      await target.cleanup?.();
    }
  };

  describe(`sink conformance: ${name}`, () => {
    it('declares a strict schema: type literal, name, no extra keys, every field described', () => {
      const schema = harness.plugin.config;
      expect(schema.additionalProperties).toBe(false);
      expect(schema.required).toEqual(expect.arrayContaining(['name', 'type']));
      expect((schema.properties.type as TSchema).const).toBe(harness.plugin.type);
      for (const [field, prop] of Object.entries(schema.properties)) {
        expect((prop as TSchema).description, `field ${field} has no description`).toBeTruthy();
      }
    });

    it('accepts its working config and rejects bad ones', async () => {
      const validate = new Ajv({ strict: false, allErrors: true }).compile(harness.plugin.config);
      const target = await harness.target();
      await target.cleanup?.();
      expect(validate(target.config), JSON.stringify(validate.errors)).toBe(true);
      const bad = Object.entries(harness.badConfigs);
      expect(bad.length).toBeGreaterThan(0);
      for (const [why, config] of bad) expect(validate(config), `accepted a config that ${why}`).toBe(false);
    });

    it('opens and closes within the time limit, and close is idempotent', async () => {
      const target = await harness.target();
      const sink = create(target);
      await within(limit, sink.open(ctx()), 'open');
      await within(limit, sink.close(), 'close');
      await within(limit, sink.close(), 'second close');
      await target.cleanup?.();
    });

    it('check() does a real operation: passes on a working target, fails with a fix on a broken one', async () => {
      const probeTarget = await harness.target();
      const probe = create(probeTarget);
      const hasCheck = typeof probe.check === 'function';
      await probe.close();
      await probeTarget.cleanup?.();
      if (!hasCheck) return;
      expect(harness.unreachable, 'a sink with check() must give the suite an unreachable target').toBeDefined();
      const good = await harness.target();
      const goodSink = create(good);
      const results = await within(limit, goodSink.check!(), 'check');
      expect(results.length).toBeGreaterThan(0);
      expect(results.filter((r) => !r.ok && r.severity !== 'warning'), JSON.stringify(results)).toEqual([]);
      await goodSink.close();
      await good.cleanup?.();

      const bad = await harness.unreachable!();
      const badSink = create(bad);
      const failed = (await within(limit, badSink.check!(), 'check')).filter((r) => !r.ok);
      expect(failed.length).toBeGreaterThan(0);
      for (const r of failed) expect(r.fix, `${r.name} failed without a fix`).toBeTruthy();
      await badSink.close();
      await bad.cleanup?.();
    });

    it('writes a batch that reads back exactly, in order', async () => {
      const events = sampleEvents(50, `${name}-batch`);
      const target = await harness.target();
      await withSink(target, async (sink) => {
        await sink.write(events, new AbortController().signal);
        expect(await target.readBack()).toEqual(events);
      });
    });

    // At-least-once means the framework writes a batch again after a crash or a
    // retry. What the target then holds must let it drop the copy: the same ids
    // and the same content as the first time, never a partial, reordered or
    // altered replay, and never anything lost from the first write.
    it('is idempotent on replay: the same batch twice reaches the target with the same ids and bytes', async () => {
      const events = sampleEvents(20, `${name}-replay`);
      const target = await harness.target();
      await withSink(target, async (sink) => {
        await sink.write(events, new AbortController().signal);
        const first = await target.readBack();
        const firstKeys = await target.dedupeKeys?.();
        await sink.write(events, new AbortController().signal);
        const all = await target.readBack();

        expect(first, 'the first write').toEqual(events);
        expect(all.slice(0, first.length), 'the replay changed what the target already held').toEqual(first);
        const replayed = all.slice(first.length);
        if (target.dropsDuplicates) expect(replayed, 'the target drops duplicates by id, yet the replay added events').toEqual([]);
        else expect(replayed, 'the replay must reach the target again, complete and in order').toEqual(events);
        // Same bytes, not just equal objects: the copy must serialize exactly like the original.
        expect(replayed.map((e) => JSON.stringify(e))).toEqual(first.slice(0, replayed.length).map((e) => JSON.stringify(e)));
        for (const e of all) expect(typeof e.id === 'string' && e.id !== '', `an event reached the target without its id: ${JSON.stringify(e)}`).toBe(true);
        expect(new Set(all.map((e) => e.id))).toEqual(new Set(events.map((e) => e.id)));

        if (target.dedupeKeys) {
          const keys = await target.dedupeKeys();
          expect(firstKeys!.length, 'the first write sent no de-duplication key').toBeGreaterThan(0);
          for (const k of firstKeys!) expect(k, 'an empty de-duplication key').toBeTruthy();
          expect(keys, 'the replay must repeat the de-duplication keys of the first write').toEqual([...firstKeys!, ...firstKeys!]);
        }
      });
    });

    it('classifies failures as retryable or permanent', async () => {
      expect(harness.failures.length).toBeGreaterThan(0);
      for (const failure of harness.failures) {
        const target = await failure.target();
        await withSink(target, async (sink) => {
          const err = await within(limit, sink.write(sampleEvents(3, `${name}-fail`), new AbortController().signal).then(() => undefined, (e: unknown) => e), failure.name);
          expect(err, `${failure.name}: write succeeded`).toBeInstanceOf(failure.expect === 'retryable' ? RetryableError : PermanentError);
          if (failure.retryAfterMs !== undefined) expect((err as RetryableError).retryAfterMs).toBe(failure.retryAfterMs);
        });
      }
    });

    it('honours an aborted signal promptly and delivers nothing it was told not to', async () => {
      const target = await harness.target();
      await withSink(target, async (sink) => {
        const controller = new AbortController();
        controller.abort();
        const err = await within(1000, sink.write(sampleEvents(5, `${name}-abort`), controller.signal).then(() => undefined, (e: unknown) => e), 'aborted write');
        expect(err).toBeInstanceOf(Error);
        expect(err, 'an abort must never send events to the dead-letter queue').not.toBeInstanceOf(PermanentError);
        expect(await target.readBack()).toEqual([]);
      });
      if (!harness.hanging) return;
      const hanging = await harness.hanging();
      await withSink(hanging, async (sink) => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 100);
        const started = Date.now();
        const err = await within(10_000, sink.write(sampleEvents(5, `${name}-hang`), controller.signal).then(() => undefined, (e: unknown) => e), 'write in flight');
        expect(err).toBeInstanceOf(RetryableError);
        expect(Date.now() - started).toBeLessThan(8000);
      });
    });
  });
}

async function within<T>(ms: number, work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
