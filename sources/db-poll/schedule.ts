import { Cron } from 'croner';

/** When the next poll starts; `sleepUntilNextTick` waits for it. */
export interface Schedule {
  /** Milliseconds from `now` until the next tick, given when the previous poll started (undefined before the first). */
  delayMs(now: number, lastStart: number | undefined): number;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** `5s` ⇒ 5000. Returns undefined for anything else. */
export function parseInterval(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

/**
 * A fixed interval measured from the start of the previous poll. A poll that
 * takes longer than the interval is followed immediately by the next one (the
 * missed ticks are not queued up), so polls never overlap and never pile up.
 */
export function intervalSchedule(everyMs: number, jitterMs: number, random: () => number = Math.random): Schedule {
  return {
    delayMs(now, lastStart) {
      const base = lastStart === undefined ? 0 : Math.max(0, lastStart + everyMs - now);
      return base + Math.floor(random() * jitterMs);
    },
  };
}

/** A cron schedule: the next matching time after now (the first poll waits for the first tick too). */
export function cronSchedule(expression: string, jitterMs: number, random: () => number = Math.random): Schedule {
  const cron = new Cron(expression, { paused: true });
  return {
    delayMs(now) {
      const next = cron.nextRun(new Date(now));
      if (!next) return Number.POSITIVE_INFINITY;
      return Math.max(0, next.getTime() - now) + Math.floor(random() * jitterMs);
    },
  };
}

/** Resolves true after `ms`, or early with false when the signal aborts. */
export async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  let left = ms;
  // setTimeout caps at ~24.8 days: a far cron tick is waited for in slices.
  while (left > 0) {
    const slice = Math.min(left, 2_000_000_000);
    if (!(await sleepSlice(slice, signal))) return false;
    left -= slice;
  }
  return !signal.aborted;
}

function sleepSlice(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
