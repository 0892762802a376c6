import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Completeness, FileStat } from './completeness.js';

/** A complete file, ready to be read. */
export interface DroppedFile extends FileStat {
  name: string;
  path: string;
}

/** How often the folder is listed again, in case the watcher missed an event (network mounts, overflow). */
const RESCAN_MS = 2_000;

/**
 * The drop folder as a pull queue of complete files, oldest first (mtime,
 * then name). chokidar reports additions, changes and removals; a periodic
 * listing is the fallback. Nothing is read ahead: `next` only decides which
 * file is due.
 */
export class FileQueue {
  private readonly dir: string;
  private readonly files = new Map<string, FileStat>();
  private readonly handled = new Map<string, FileStat>();
  private watcher: FSWatcher | undefined;
  private wake: (() => void) | undefined;
  private lastScan = 0;

  constructor(
    dir: string,
    private readonly completeness: Completeness,
    private readonly accepts: (name: string) => boolean,
  ) {
    this.dir = resolve(dir);
  }

  /** Starts watching; resolves once the files already present are known. */
  async start(): Promise<void> {
    const watcher = watch(this.dir, { depth: 0, ignoreInitial: false, alwaysStat: true, persistent: true });
    this.watcher = watcher;
    const own = (p: string): boolean => dirname(resolve(p)) === this.dir;
    watcher.on('add', (p, s) => own(p) && s && this.saw(basename(p), s));
    watcher.on('change', (p, s) => own(p) && s && this.saw(basename(p), s));
    watcher.on('unlink', (p) => own(p) && this.gone(basename(p)));
    watcher.on('error', () => this.poke());
    await new Promise<void>((ready) => watcher.once('ready', () => ready()));
    await this.rescan();
  }

  /** The next complete file not yet handled, or undefined once `signal` aborts. */
  async next(signal: AbortSignal): Promise<DroppedFile | undefined> {
    while (!signal.aborted) {
      if (Date.now() - this.lastScan >= RESCAN_MS) await this.rescan();
      const { due, waitMs } = this.due();
      if (due) {
        // Trust no cached stat: the file must still be exactly as judged complete.
        const fresh = await stat(due.path).catch(() => undefined);
        if (fresh?.isFile() && fresh.size === due.size && fresh.mtimeMs === due.mtimeMs) return due;
        if (fresh?.isFile()) this.saw(due.name, fresh);
        else this.gone(due.name);
        continue;
      }
      await this.sleep(Math.min(waitMs ?? RESCAN_MS, RESCAN_MS), signal);
    }
    return undefined;
  }

  /** The file was taken (read, or skipped as a duplicate): not due again unless its content changes. */
  markHandled(file: DroppedFile): void {
    this.handled.set(file.name, { size: file.size, mtimeMs: file.mtimeMs });
    this.completeness.forget(file.name);
  }

  async close(): Promise<void> {
    this.poke();
    await this.watcher?.close();
  }

  private due(): { due?: DroppedFile; waitMs?: number } {
    const now = Date.now();
    const names = new Set(this.files.keys());
    const marker = this.completeness.marker;
    let best: DroppedFile | undefined;
    let waitMs: number | undefined;
    for (const [name, s] of this.files) {
      if (name.startsWith('.') || (marker !== undefined && name.endsWith(marker)) || !this.accepts(name)) continue;
      const h = this.handled.get(name);
      if (h && h.size === s.size && h.mtimeMs === s.mtimeMs) continue;
      const verdict = this.completeness.check(name, s, names, now);
      if (!verdict.complete) {
        if (verdict.waitMs !== undefined) waitMs = Math.min(waitMs ?? Infinity, verdict.waitMs);
        continue;
      }
      if (!best || s.mtimeMs < best.mtimeMs || (s.mtimeMs === best.mtimeMs && name < best.name)) {
        best = { name, path: join(this.dir, name), size: s.size, mtimeMs: s.mtimeMs };
      }
    }
    return best ? { due: best } : waitMs === undefined ? {} : { waitMs };
  }

  private async rescan(): Promise<void> {
    this.lastScan = Date.now();
    const entries = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    const present = new Set<string>();
    for (const e of entries) {
      if (!e.isFile() && !e.isSymbolicLink()) continue;
      const s = await stat(join(this.dir, e.name)).catch(() => undefined);
      if (!s?.isFile()) continue;
      present.add(e.name);
      const known = this.files.get(e.name);
      if (!known || known.size !== s.size || known.mtimeMs !== s.mtimeMs) this.files.set(e.name, { size: s.size, mtimeMs: s.mtimeMs });
    }
    for (const name of [...this.files.keys()]) if (!present.has(name)) this.gone(name);
  }

  private saw(name: string, s: FileStat): void {
    this.files.set(name, { size: s.size, mtimeMs: s.mtimeMs });
    this.poke();
  }

  private gone(name: string): void {
    this.files.delete(name);
    this.handled.delete(name);
    this.completeness.forget(name);
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((done) => {
      const finish = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', finish);
        if (this.wake === finish) this.wake = undefined;
        done();
      };
      const timer = setTimeout(finish, Math.max(ms, 10));
      signal.addEventListener('abort', finish, { once: true });
      this.wake = finish;
    });
  }
}
