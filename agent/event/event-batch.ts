import type { FerryEvent } from './cloud-event.js';
import type { Sink } from '../plugin/sink.js';

/**
 * Events as JSON lines: one `JSON.stringify(event)` per line (JSON never holds
 * a raw line break, so splitting on `\n` is exact). Replayed jobs carry their
 * batch in this form, inline in the job.
 */
export function encodeEventLines(lines: readonly string[]): string {
  return lines.join('\n');
}

/**
 * A batch of events as a sink receives it: held in the form it was queued in
 * (the stored bytes, JSON lines text, or objects) and turned into another form
 * only when something asks for it. A sink that writes JSON lines anyway
 * (`JsonLinesSink`) gets the stored bytes and never pays for a parse.
 */
export class EventBatch {
  private parsed: FerryEvent[] | undefined;
  private text: string[] | undefined;
  /** UTF-8, every line followed by `\n`. */
  private utf8: Buffer | undefined;

  private constructor(
    readonly size: number,
    forms: { lines?: string[]; events?: FerryEvent[]; utf8?: Buffer },
  ) {
    this.text = forms.lines;
    this.parsed = forms.events;
    this.utf8 = forms.utf8;
  }

  /** From a job's inline `events`: `encodeEventLines` text, or an array (jobs queued by earlier versions). */
  static fromJob(events: string | FerryEvent[]): EventBatch {
    if (typeof events !== 'string') return new EventBatch(events.length, { events });
    const lines = events === '' ? [] : events.split('\n');
    return new EventBatch(lines.length, { lines });
  }

  /** From a stored batch payload: `count` lines in UTF-8, each followed by `\n`. */
  static fromPayload(bytes: Buffer, count: number): EventBatch {
    return new EventBatch(count, { utf8: bytes });
  }

  static of(events: FerryEvent[]): EventBatch {
    return new EventBatch(events.length, { events });
  }

  get events(): FerryEvent[] {
    return (this.parsed ??= this.lines.map((line) => JSON.parse(line) as FerryEvent));
  }

  /** Each event's JSON text, exactly as `JSON.stringify(event)` gives it. */
  get lines(): readonly string[] {
    if (this.text === undefined) {
      if (this.utf8 !== undefined) this.text = this.size === 0 ? [] : this.utf8.toString('utf8', 0, this.utf8.length - 1).split('\n');
      else this.text = this.parsed!.map((e) => JSON.stringify(e));
    }
    return this.text;
  }

  /** The batch as UTF-8 JSON lines, each followed by `\n`: what a JSON-lines file holds. */
  get jsonLines(): Buffer {
    return (this.utf8 ??= Buffer.from(this.size === 0 ? '' : `${this.lines.join('\n')}\n`, 'utf8'));
  }

  /** Events `start` (inclusive) to `end` (exclusive). */
  slice(start: number, end?: number): EventBatch {
    if (this.parsed !== undefined) {
      const events = this.parsed.slice(start, end);
      return new EventBatch(events.length, { events, ...(this.text === undefined ? {} : { lines: this.text.slice(start, end) }) });
    }
    const lines = this.lines.slice(start, end);
    return new EventBatch(lines.length, { lines });
  }
}

/**
 * An optional fast path a sink may offer next to `Sink.write`: the same
 * batch, the same contract (deliver all or throw; `PermanentError` bisects),
 * given as UTF-8 JSON lines (each followed by `\n`, `count` of them), for
 * sinks that would serialize each event to exactly those bytes anyway. The
 * framework uses it when present; `write` stays the contract every sink
 * implements.
 */
export interface JsonLinesSink {
  writeJsonLines(jsonLines: Buffer, count: number, signal: AbortSignal): Promise<void>;
}

export function writesJsonLines(sink: Sink): sink is Sink & JsonLinesSink {
  return typeof (sink as Partial<JsonLinesSink>).writeJsonLines === 'function';
}
