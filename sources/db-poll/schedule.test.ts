import { describe, expect, it } from 'vitest';
import { cronSchedule, intervalSchedule, parseInterval, sleep } from './schedule.js';

describe('db-poll schedule', () => {
  it('parses intervals', () => {
    expect(parseInterval('5s')).toBe(5000);
    expect(parseInterval('1m')).toBe(60_000);
    expect(parseInterval('250ms')).toBe(250);
    expect(parseInterval('1.5h')).toBe(5_400_000);
    expect(parseInterval('5 minutes')).toBeUndefined();
  });

  it('polls at once, then every interval from the previous start; a slow poll is followed at once, never overlapped', () => {
    const s = intervalSchedule(5000, 0);
    expect(s.delayMs(1_000, undefined)).toBe(0);
    expect(s.delayMs(2_000, 1_000)).toBe(4000);
    expect(s.delayMs(20_000, 1_000)).toBe(0);
  });

  it('adds up to jitterMs of random delay', () => {
    expect(intervalSchedule(5000, 1000, () => 0.5).delayMs(2_000, 1_000)).toBe(4500);
  });

  it('waits for the next cron tick', () => {
    const now = Date.parse('2024-01-31T10:02:30');
    expect(cronSchedule('*/5 * * * *', 0).delayMs(now, undefined)).toBe(150_000);
  });

  it('adds up to jitterMs of random delay to a cron tick, and waits for the tick after a poll that ran past one', () => {
    const now = Date.parse('2024-01-31T10:02:30');
    expect(cronSchedule('*/5 * * * *', 2000, () => 0.25).delayMs(now, undefined)).toBe(150_500);
    expect(cronSchedule('*/5 * * * *', 2000, () => 0.9999).delayMs(now, undefined)).toBe(151_999);
    // A poll that started at 10:00 and ended at 10:05:10 missed the 10:05 tick: the next is 10:10, not at once.
    const late = Date.parse('2024-01-31T10:05:10');
    expect(cronSchedule('*/5 * * * *', 2000, () => 0).delayMs(late, Date.parse('2024-01-31T10:00:00'))).toBe(290_000);
  });

  it('sleep ends early, with false, when aborted', async () => {
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 20);
    expect(await sleep(60_000, abort.signal)).toBe(false);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
