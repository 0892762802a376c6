import { access, constants, stat } from 'node:fs/promises';
import { dirname, join, normalize, resolve } from 'node:path';
import type { Logger } from 'pino';
import { FerryError, RetryableError } from '../../agent/errors/index.js';
import { globToRegExp } from '../../agent/mapping/glob.js';
import type { PluginEnv } from '../../agent/plugin/define.js';
import type { Checkpoint, CheckResult, Source, SourceBatch, SourceContext, SourceRecord } from '../../agent/plugin/source.js';
import { asFileDropCheckpoint, seenKey, type FileDropCheckpoint } from './checkpoint.js';
import { Completeness } from './completeness.js';
import type { FileDropConfig } from './config.js';
import { contentHash } from './content-hash.js';
import { openDecoded } from './decode.js';
import { moveOut, removeMarker } from './disposal.js';
import { FileQueue, type DroppedFile } from './file-queue.js';
import { fileDropConfigProblems } from './validate-config.js';
import { rowParser, type ParsedRow, type RowParser } from './formats/index.js';

/** What this source knows of a file it hashed, so `commit` can tell it is still the same content without re-hashing. */
interface Hashed {
  hash: string;
  size: number;
  mtimeMs: number;
}

/**
 * The file-drop source for a local folder. One file at a time, oldest first;
 * each file is hashed (streaming), then parsed as the pipeline pulls. Files
 * leave the folder only in `commit`, i.e. once their records are durable.
 */
export class FileDropSource implements Source {
  private readonly dir: string;
  private readonly shownDir: string;
  private readonly archiveDir: string | undefined;
  private readonly errorsDir: string | undefined;
  private readonly parse: RowParser;
  private readonly completeness: Completeness;
  private readonly batchSize: number;
  private readonly pattern: RegExp | undefined;
  private readonly hashed = new Map<string, Hashed>();
  /** Hashes read in this run, not yet (or just) committed: a second copy dropped meanwhile is a duplicate too. */
  private readonly readThisRun = new Set<string>();
  private queue: FileQueue | undefined;
  private resume: FileDropCheckpoint | undefined;
  private ctx: SourceContext | undefined;
  private log: Logger | undefined;

  constructor(
    private readonly config: FileDropConfig,
    env: PluginEnv,
  ) {
    // The loader has run these checks already (a located problem in ferry.yaml); here for whoever creates the source without it.
    const [problem] = fileDropConfigProblems(config);
    if (problem) throw new FerryError('FERRY_CONFIG_INVALID', problem.message, { where: `source.${problem.path.join('.')}`, ...(problem.fix ? { fix: problem.fix } : {}) });
    this.dir = resolve(env.configDir, config.path);
    this.shownDir = normalize(config.path).replace(/\/+$/, '');
    this.archiveDir = config.archive === undefined ? undefined : resolve(env.configDir, config.archive);
    this.errorsDir = config.errors === undefined ? undefined : resolve(env.configDir, config.errors);
    this.parse = rowParser(config.format);
    this.completeness = new Completeness(config.complete ?? { minAgeMs: 500 });
    this.batchSize = config.batchSize ?? 200;
    // The same glob dialect as a mapping's `match: { file }`, so both select the same names.
    this.pattern = config.pattern === undefined ? undefined : globToRegExp(config.pattern);
  }

  async open(from: Checkpoint | undefined, ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.logger.child({ source: 'file-drop', folder: this.dir });
    const folder = await stat(this.dir).catch(() => undefined);
    if (!folder?.isDirectory()) {
      throw new FerryError('FERRY_SOURCE_UNAVAILABLE', `the drop folder ${this.dir} does not exist`, {
        where: 'source.path',
        fix: `Create the folder (mkdir -p ${this.dir}) or correct source.path (relative to the configuration file).`,
      });
    }
    const cp = asFileDropCheckpoint(from);
    if (from !== undefined && !cp) this.log.warn({ checkpoint: from }, 'ignoring a checkpoint that is not file-drop\'s');
    this.resume = cp && !cp.done ? cp : undefined;
    const pattern = this.pattern;
    this.queue = new FileQueue(this.dir, this.completeness, (name) => !name.endsWith('.error.txt') && (pattern?.test(name) ?? true));
    await this.queue.start();
  }

  async *read(signal: AbortSignal): AsyncIterable<SourceBatch> {
    const queue = this.queue;
    if (!queue) throw new Error('file-drop: read() before open()');
    const resume = this.resume;
    this.resume = undefined;
    if (resume) {
      const s = await stat(join(this.dir, resume.file)).catch(() => undefined);
      if (s?.isFile()) {
        const file = { name: resume.file, path: join(this.dir, resume.file), size: s.size, mtimeMs: s.mtimeMs };
        queue.markHandled(file);
        yield* this.readFile(file, signal, resume);
      } else this.log?.warn({ file: resume.file }, 'the file the checkpoint points into is gone; carrying on with the folder');
    }
    while (!signal.aborted) {
      const file = await queue.next(signal);
      if (!file) return;
      queue.markHandled(file);
      yield* this.readFile(file, signal);
    }
  }

  private async *readFile(file: DroppedFile, signal: AbortSignal, resume?: FileDropCheckpoint): AsyncGenerator<SourceBatch> {
    const log = this.log!;
    let hash: string;
    try {
      hash = await contentHash(file.path, signal);
    } catch (err) {
      if (signal.aborted) return;
      yield this.failed(file.name, '', 0, `cannot read the file: ${(err as Error).message}`);
      return;
    }
    this.hashed.set(file.name, { hash, size: file.size, mtimeMs: file.mtimeMs });
    if (resume && resume.hash !== hash) {
      log.warn({ file: file.name }, 'the file changed since the checkpoint; reading it from the start');
      resume = undefined;
    }
    if (!resume && (this.readThisRun.has(hash) || (await this.wasSent(hash)))) {
      log.info({ file: file.name, hash }, 'duplicate: this content was already sent; not sending it again');
      await this.dispose({ file: file.name, hash, records: 0, done: true });
      return;
    }
    this.readThisRun.add(hash);
    log.info({ file: file.name, hash, resumeAfter: resume?.records }, 'reading file');

    const skip = resume?.records ?? 0;
    // Rounded as fs.Stats#mtime is, so the event time equals what `ls` and stat() report.
    const time = new Date(Math.round(file.mtimeMs)).toISOString();
    // One origin object for the whole file: records share it instead of allocating one each.
    const origin = { kind: 'file', name: file.name } as const;
    const checkpoint = (records: number, done: boolean): FileDropCheckpoint => ({ file: file.name, hash, records, done });
    const encoding = this.config.format.encoding ?? 'utf-8';
    const bom = this.config.format.type !== 'csv' || (this.config.format.bom ?? true);
    let index = 0;
    let records: SourceRecord[] = [];
    try {
      for await (const rows of this.parse(openDecoded(file.path, encoding, bom))) {
        for (const row of rows) {
          const i = index++;
          if (i < skip) continue;
          records.push(this.toRecord(origin, hash, i, row, time));
          if (records.length >= this.batchSize) {
            if (signal.aborted) return;
            yield { records, checkpoint: checkpoint(index, false) };
            records = [];
          }
        }
        if (signal.aborted) return;
      }
    } catch (err) {
      if (signal.aborted) return;
      // Not remembered as sent: once fixed (or read with the right settings) the same content may come again.
      this.readThisRun.delete(hash);
      yield { records, checkpoint: this.failed(file.name, hash, index, (err as Error).message).checkpoint };
      return;
    }
    if (index < skip) log.warn({ file: file.name, records: index, skip }, 'the file has fewer records than the checkpoint says');
    log.info({ file: file.name, records: index }, 'file read');
    yield { records, checkpoint: checkpoint(index, true) };
  }

  private async wasSent(hash: string): Promise<boolean> {
    try {
      return (await this.ctx!.state.get(seenKey(hash))) !== undefined;
    } catch (err) {
      // The state lives in Redis beside the queue: when it is unreachable, so is the queue; reopen later.
      throw new RetryableError('file-drop cannot read its state (the content hashes already sent)', { cause: err, code: 'FERRY_SOURCE_UNAVAILABLE' });
    }
  }

  private toRecord(origin: { kind: 'file'; name: string }, hash: string, index: number, row: ParsedRow, time: string): SourceRecord {
    const { name } = origin;
    const record: SourceRecord = {
      origin,
      op: 'c',
      data: row.data,
      changeId: `${hash}:${index}`,
      time,
      location: `${this.shownDir}/${name}:${row.line}`,
      position: `${name}#${row.line}`,
    };
    if (row.invalid !== undefined) record.invalid = row.invalid;
    return record;
  }

  private failed(file: string, hash: string, records: number, reason: string): SourceBatch {
    this.log?.warn({ file, reason }, 'unreadable file; it goes to the errors folder once what was read before is durable');
    return { records: [], checkpoint: { file, hash, records, done: true, failed: reason } };
  }

  /**
   * When `checkpoint` finishes a file: remember its hash as sent, then move it
   * to the archive (or, when it failed, to the errors folder with its reason).
   * Idempotent: a file already moved, or replaced by different content, is
   * left alone.
   */
  async commit(checkpoint: Checkpoint): Promise<void> {
    const cp = asFileDropCheckpoint(checkpoint);
    if (!cp?.done) return;
    if (cp.failed === undefined) {
      await this.ctx!.state.set(seenKey(cp.hash), JSON.stringify({ file: cp.file, records: cp.records, at: new Date().toISOString() }));
      // The state now answers for this content: the set only covers files in flight, so an agent that
      // runs for months does not hold a hash for every file it ever read.
      this.readThisRun.delete(cp.hash);
    }
    await this.dispose(cp);
  }

  private async dispose(cp: FileDropCheckpoint): Promise<void> {
    const path = join(this.dir, cp.file);
    if (!(await this.stillSame(path, cp))) return;
    const marker = this.completeness.marker;
    const toDir = cp.failed === undefined ? this.archiveDir : this.errorsDir;
    if (toDir === undefined) {
      // It stays; its hash is remembered. Its marker goes, so it is not looked at again.
      if (marker !== undefined && cp.failed === undefined) await removeMarker(path + marker);
      return;
    }
    const errorText =
      cp.failed === undefined
        ? undefined
        : `file: ${cp.file}\nreason: ${cp.failed}\ntime: ${new Date().toISOString()}\nsha256: ${cp.hash || 'unknown (unreadable)'}\nrecords read before the failure: ${cp.records}\n`;
    const target = await moveOut({ from: this.dir, name: cp.file, toDir, hash: cp.hash, ...(marker === undefined ? {} : { marker }), ...(errorText === undefined ? {} : { errorText }) });
    if (target) {
      this.hashed.delete(cp.file);
      this.log?.info({ file: cp.file, to: target }, cp.failed === undefined ? 'file archived' : 'file moved to the errors folder');
    }
  }

  /** Whether the file at `path` is still the content the checkpoint speaks of (a new file of the same name must not be moved). */
  private async stillSame(path: string, cp: FileDropCheckpoint): Promise<boolean> {
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) return false;
    if (cp.hash === '') return true;
    const known = this.hashed.get(cp.file);
    if (known && known.hash === cp.hash && known.size === s.size && known.mtimeMs === s.mtimeMs) return true;
    const hash = await contentHash(path).catch(() => undefined);
    return hash === cp.hash;
  }

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [await canUse(this.dir, 'drop folder', constants.R_OK | constants.W_OK)];
    if (this.archiveDir) results.push(await canUse(this.archiveDir, 'archive folder', constants.W_OK));
    if (this.errorsDir) results.push(await canUse(this.errorsDir, 'errors folder', constants.W_OK));
    return results;
  }

  async close(): Promise<void> {
    await this.queue?.close();
    this.queue = undefined;
  }
}

/** Whether `dir` (or, for a folder created on first use, its nearest existing parent) allows `mode`. Changes nothing. */
async function canUse(dir: string, what: string, mode: number): Promise<CheckResult> {
  let probe = dir;
  while (!(await stat(probe).then(() => true, () => false)) && dirname(probe) !== probe) probe = dirname(probe);
  try {
    await access(probe, mode);
    const detail = probe === dir ? `${dir} is usable` : `${dir} will be created in ${probe}`;
    return { name: what, ok: true, detail };
  } catch (err) {
    return { name: what, ok: false, detail: `${probe}: ${(err as Error).message}`, fix: `Create ${dir} and give the Ferry service user read and write access to it.` };
  }
}
