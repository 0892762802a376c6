import type { FileDropConfig } from './config.js';

/** What the folder scan saw of a file. */
export interface FileStat {
  size: number;
  mtimeMs: number;
}

/**
 * Decides when a dropped file is completely written.
 *
 * - `minAgeMs`: the file's size and modification time have not changed for
 *   that long, as observed by us (not judged by the mtime alone: a copy that
 *   keeps an old mtime is still being written while its size grows).
 * - `marker`: the file `X` is complete when `X<marker>` exists.
 */
export class Completeness {
  private readonly observed = new Map<string, FileStat & { since: number }>();

  constructor(private readonly rule: FileDropConfig['complete']) {}

  /** The marker suffix, when completeness is marker-based. */
  get marker(): string | undefined {
    return 'marker' in this.rule ? this.rule.marker : undefined;
  }

  /**
   * Whether `name` is complete now. `names` is the set of file names in the
   * folder (for markers). Returns the milliseconds still to wait when a
   * quiet period is running, so the caller knows when to look again.
   */
  check(name: string, stat: FileStat, names: ReadonlySet<string>, now: number): { complete: boolean; waitMs?: number } {
    const marker = this.marker;
    if (marker !== undefined) return { complete: names.has(name + marker) };
    const minAgeMs = 'minAgeMs' in this.rule ? this.rule.minAgeMs : 500;
    const seen = this.observed.get(name);
    if (!seen || seen.size !== stat.size || seen.mtimeMs !== stat.mtimeMs) {
      this.observed.set(name, { ...stat, since: now });
      return minAgeMs === 0 ? { complete: true } : { complete: false, waitMs: minAgeMs };
    }
    const waited = now - seen.since;
    return waited >= minAgeMs ? { complete: true } : { complete: false, waitMs: minAgeMs - waited };
  }

  /** Drops what was observed of a file (it was processed or removed). */
  forget(name: string): void {
    this.observed.delete(name);
  }
}
