import { join } from 'node:path';
import type { Logger } from 'pino';
import { FerryError, RetryableError } from '../../agent/errors/index.js';
import type { Checkpoint, CheckResult, Json, SnapshotBatch, SnapshotRequest, Source, SourceBatch, SourceContext } from '../../agent/plugin/source.js';
import { redactUrl } from '../../agent/telemetry/logger.js';
import type { DbPollConfig, ViewConfig } from './config.js';
import type { Column, Dialect, WriteGrant } from './dialects/dialect.js';
import { connectDialect } from './dialects/connect.js';
import { GenerationStore } from './diff-store.js';
import { pollDiff, type DiffState } from './diff.js';
import { pollIncremental, type IncrementalState } from './incremental.js';
import { abortable, PollAborted, type PollContext, type ResolvedView } from './poll-context.js';
import { sleep, type Schedule } from './schedule.js';
import { snapshotCondition, snapshotTargets, snapshotView } from './snapshot.js';

/**
 * The db-poll checkpoint: per view, the incremental cursor (plus the hashes
 * seen in the look-back window) or the current diff generation (plus how far
 * an unfinished poll got).
 */
export interface DbPollCheckpoint {
  views: Record<string, IncrementalState | DiffState>;
}

/**
 * Polls views of one database on a schedule. One poll at a time: the views
 * are polled one after the other, and the next tick is only waited for once
 * the runtime has pulled every batch of the previous poll.
 */
export class DbPollSource implements Source {
  private dialect: Dialect | undefined;
  private ctx: SourceContext | undefined;
  private state: DbPollCheckpoint = { views: {} };
  private readonly stores = new Map<string, GenerationStore>();

  constructor(
    private readonly config: DbPollConfig,
    private readonly schedule: Schedule,
  ) {}

  private get logger(): Logger | undefined {
    return this.ctx?.logger;
  }

  async open(from: Checkpoint | undefined, ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.state = parseCheckpoint(from);
    this.dialect = await this.connect();
    await this.enforceReadOnly(this.dialect);
    for (const view of this.config.views) {
      if (view.mode !== 'diff') continue;
      const store = new GenerationStore(join(ctx.dataDir, 'db-poll', safeName(ctx.pipeline), safeName(view.name)));
      this.stores.set(view.name, store);
      const { gen, partial } = this.diffState(view);
      await store.resetTo(gen, partial !== undefined);
      if (!(await store.has(gen))) {
        ctx.logger.warn({ view: view.name, gen }, `db-poll: the stored row hashes of ${view.name} (generation ${gen}) are missing from the data directory; the next poll emits every row as created`);
      }
    }
  }

  async *read(signal: AbortSignal): AsyncIterable<SourceBatch> {
    let lastStart: number | undefined;
    for (;;) {
      if (!(await sleep(this.schedule.delayMs(Date.now(), lastStart), signal))) return;
      lastStart = Date.now();
      yield* this.poll(signal, lastStart);
      if (signal.aborted) return;
    }
  }

  /**
   * One poll of every view, now, one view after the other. `read` runs it on
   * each tick; tests may run it directly. A view whose
   * query times out is logged (FERRY_SOURCE_QUERY_TIMEOUT) and skipped until
   * the next poll, its position unchanged; an abort ends the poll quietly.
   */
  async *poll(signal: AbortSignal, startedAt: number = Date.now()): AsyncGenerator<SourceBatch> {
    const poll: Omit<PollContext, 'dialect'> = {
      queryTimeoutMs: this.config.queryTimeoutMs,
      pageSize: this.config.pageSize,
      pollTime: new Date(startedAt).toISOString(),
      logger: this.logger!,
      run: (query) => abortable(query, signal),
    };
    for (const [index, view] of this.config.views.entries()) {
      try {
        yield* this.pollView(view, poll);
      } catch (e) {
        if (e instanceof PollAborted || signal.aborted) return;
        const error = this.translate(e, view, index);
        if (error.code !== 'FERRY_SOURCE_QUERY_TIMEOUT') throw error;
        // Nothing of the unfinished page was yielded and the checkpoint stays put: the next tick retries.
        this.logger?.error({ code: error.code, view: view.name, where: error.where }, error.describe());
      }
    }
  }

  private async *pollView(view: ViewConfig, poll: Omit<PollContext, 'dialect'>): AsyncGenerator<SourceBatch> {
    const dialect = this.requireDialect();
    const ctx: PollContext = { ...poll, dialect };
    const resolved = resolveView(view, await ctx.run(dialect.describe(view.name, ctx.queryTimeoutMs)));
    if (view.mode === 'incremental') {
      const state = (this.state.views[view.name] ??= {}) as IncrementalState;
      for await (const records of pollIncremental(resolved, state, this.config.lookBackMs, ctx)) yield { records, checkpoint: this.checkpoint() };
      return;
    }
    const state = this.diffState(view);
    const current = state.gen;
    const diff = pollDiff(resolved, this.stores.get(view.name)!, state, ctx);
    try {
      for (;;) {
        const step = await diff.next();
        // A poll without a change keeps its generation: nothing to yield, nothing to store.
        if (step.done && state.gen === current) return;
        yield { records: step.value, checkpoint: this.checkpoint() };
        if (step.done) return;
      }
    } finally {
      await diff.return([]);
    }
  }

  /**
   * `ferry snapshot`: every row of the requested views (all by default) that
   * meets `where`, in key order, as op `r`. Runs on a source that was not
   * opened and leaves the cursors and diff generations alone; refuses a
   * writable role when requireReadOnly is set, as `open` does.
   */
  async *snapshot(request: SnapshotRequest, ctx: SourceContext, signal: AbortSignal): AsyncIterable<SnapshotBatch> {
    const targets = snapshotTargets(this.config.views, request.tables);
    const where = snapshotCondition(request.where);
    this.ctx ??= ctx;
    const dialect = (this.dialect ??= await this.connect());
    await this.enforceReadOnly(dialect);
    const poll: PollContext = {
      dialect,
      queryTimeoutMs: this.config.queryTimeoutMs,
      pageSize: this.config.pageSize,
      pollTime: new Date().toISOString(),
      logger: ctx.logger,
      run: (query) => abortable(query, signal),
    };
    for (const [index, view] of targets) {
      let resolved: ResolvedView;
      try {
        resolved = resolveView(view, await poll.run(dialect.describe(view.name, poll.queryTimeoutMs)));
      } catch (e) {
        if (e instanceof PollAborted || signal.aborted) return;
        throw this.translate(e, view, index);
      }
      try {
        const estimate = await poll.run(dialect.estimateRows(view.name, where, poll.queryTimeoutMs));
        yield* snapshotView(resolved, where, request.runId, estimate, poll);
      } catch (e) {
        if (e instanceof PollAborted || signal.aborted) return;
        throw this.translateSnapshot(e, view, index, where);
      }
    }
  }

  /** Idempotent: drops diff generations older than the committed one. */
  async commit(checkpoint: Checkpoint): Promise<void> {
    const cp = parseCheckpoint(checkpoint);
    for (const [name, store] of this.stores) {
      const state = cp.views[name];
      if (state && 'gen' in state) await store.pruneBelow(state.gen);
    }
  }

  async check(): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    let dialect = this.dialect;
    const own = dialect === undefined;
    try {
      dialect ??= await this.connect();
      results.push({ name: 'db-poll connection', ok: true, detail: `connected to ${redactUrl(this.config.connection)}` });
    } catch (e) {
      const error = e as FerryError;
      results.push({ name: 'db-poll connection', ok: false, detail: error.message, fix: error.fix });
      return results;
    }
    if (this.config.lookBackMs === 0 && this.config.views.some((v) => v.mode === 'incremental')) {
      results.push({
        name: 'db-poll look-back',
        ok: false,
        severity: 'warning',
        detail: 'lookBackMs is 0: a row whose transaction commits after a poll already passed its cursor time is never read',
        fix: 'Set lookBackMs to the longest transaction of the legacy application plus clock skew, e.g. 60000.',
      });
    }
    try {
      results.push(await this.checkReadOnly(dialect));
      for (const [index, view] of this.config.views.entries()) {
        try {
          const resolved = resolveView(view, await dialect.describe(view.name, this.config.queryTimeoutMs));
          results.push({ name: `db-poll view ${view.name}`, ok: true, detail: `${resolved.columns.length} columns, ${view.mode}, ordered by ${resolved.orderBy.map((c) => c.name).join(', ')}` });
        } catch (e) {
          const error = this.translate(e, view, index);
          results.push({ name: `db-poll view ${view.name}`, ok: false, detail: error.message, fix: error.fix });
        }
      }
    } finally {
      if (own) await dialect.close();
    }
    return results;
  }

  private async checkReadOnly(dialect: Dialect): Promise<CheckResult> {
    const name = 'db-poll read-only role';
    let grants: WriteGrant[];
    try {
      grants = await dialect.writeGrants(this.config.views.map((v) => v.name), this.config.queryTimeoutMs);
    } catch (e) {
      return { name, ok: false, detail: `could not inspect the role's privileges: ${(e as Error).message}`, fix: 'Check that every view exists and the role may use its schema.' };
    }
    if (grants.length === 0) return { name, ok: true, detail: 'the role has no write privilege on the polled views' };
    return { name, ok: false, severity: this.config.requireReadOnly ? 'error' : 'warning', detail: describeGrants(grants), fix: grants.map((g) => g.fix).join(' ') };
  }

  async close(): Promise<void> {
    const dialect = this.dialect;
    this.dialect = undefined;
    this.stores.clear();
    await dialect?.close();
  }

  private requireDialect(): Dialect {
    if (!this.dialect) throw new RetryableError('db-poll: read() before open()', { code: 'FERRY_SOURCE_UNAVAILABLE' });
    return this.dialect;
  }

  private diffState(view: ViewConfig): DiffState {
    const state = (this.state.views[view.name] ??= { gen: 0 }) as DiffState;
    if (typeof state.gen !== 'number') state.gen = 0;
    return state;
  }

  private checkpoint(): Json {
    return JSON.parse(JSON.stringify(this.state)) as Json;
  }

  private async connect(): Promise<Dialect> {
    try {
      return await connectDialect(this.config.connection);
    } catch (e) {
      const reason = (e as Error).message;
      if (isAuthFailure(e)) {
        // A user error, not an outage: retrying a wrong password only fills the server's log and can lock the account.
        const login = loginOf(this.config.connection);
        throw new FerryError('FERRY_SOURCE_AUTH_FAILED', `db-poll could not log in as ${login}: ${reason}`, {
          where: 'source.connection',
          fix: `Correct the user or password of source.connection (${login}), or let that user connect to the database; Ferry does not retry a rejected login.`,
          cause: e,
        });
      }
      // Also an unknown database: it may be being restored, so it is retried like an outage.
      throw new RetryableError(`db-poll could not connect to ${redactUrl(this.config.connection)}: ${reason}`, { where: 'source.connection', cause: e, code: 'FERRY_SOURCE_UNAVAILABLE' });
    }
  }

  private async enforceReadOnly(dialect: Dialect): Promise<void> {
    const grants = await dialect.writeGrants(this.config.views.map((v) => v.name), this.config.queryTimeoutMs).catch((e: unknown) => {
      const error = this.translate(e, this.config.views[0]!, 0);
      // A slow catalog at start-up is worth another try, not a stopped pipeline.
      throw error.code === 'FERRY_SOURCE_QUERY_TIMEOUT' ? new RetryableError(error.message, { where: error.where, cause: e, code: 'FERRY_SOURCE_UNAVAILABLE' }) : error;
    });
    if (grants.length === 0) return;
    const message = `The database role of source.connection can write to polled views: ${describeGrants(grants)}`;
    const fix = `Revoke them: ${grants.map((g) => g.fix).join(' ')} (or set requireReadOnly: false to only warn).`;
    if (this.config.requireReadOnly) throw new FerryError('FERRY_SOURCE_NOT_READ_ONLY', message, { where: 'source.connection', fix });
    this.logger?.warn({ code: 'FERRY_SOURCE_NOT_READ_ONLY', grants }, `${message}. ${fix}`);
  }

  /** A query with the user's `--where` that the database rejects is a usage error naming it. */
  private translateSnapshot(e: unknown, view: ViewConfig, index: number, where: string | undefined): FerryError {
    const kind = e instanceof FerryError ? undefined : this.dialect?.classify(e);
    if (where === undefined || (kind !== 'other' && kind !== 'missing-object')) return this.translate(e, view, index);
    return new FerryError('FERRY_USAGE', `${view.name} rejected the condition --where "${where}": ${(e as Error).message}`, {
      where: '--where',
      fix: `Write a condition on the columns of ${view.name}, in the SQL of its database.`,
      cause: e,
    });
  }

  /** Database errors as FerryErrors: timeouts and lost connections are expected, the rest is the user's to fix. */
  private translate(e: unknown, view: ViewConfig, index: number): FerryError {
    if (e instanceof FerryError) return e;
    const reason = (e as Error).message;
    const where = `source.views[${index}] (${view.name})`;
    switch (this.dialect?.classify(e) ?? 'connection') {
      case 'timeout':
        return new FerryError('FERRY_SOURCE_QUERY_TIMEOUT', `A query on ${view.name} ran longer than queryTimeoutMs (${this.config.queryTimeoutMs} ms) and was cancelled; the poll of ${view.name} is retried at the next tick from the same position`, {
          where,
          cause: e,
        });
      case 'connection':
        return new RetryableError(`db-poll lost the database connection while polling ${view.name}: ${reason}`, { where, cause: e, code: 'FERRY_SOURCE_UNAVAILABLE' });
      case 'missing-object':
        return new FerryError('FERRY_CONFIG_INVALID', `${view.name}: ${reason}`, { where, fix: 'Check the view name and its cursor/key columns, and that the role may SELECT from it.', cause: e });
      default:
        return new FerryError('FERRY_SOURCE_UNAVAILABLE', `db-poll could not read ${view.name}: ${reason}`, { where, cause: e });
    }
  }
}

/** Binds a view's configured cursor and key columns to the database's columns. */
export function resolveView(view: ViewConfig, columns: Column[]): ResolvedView {
  const pick = (names: readonly string[], field: string): Column[] =>
    names.map((name) => {
      const column = columns.find((c) => c.name === name);
      if (!column) {
        throw new FerryError('FERRY_CONFIG_INVALID', `${view.name} has no column "${name}" (named in ${field}); it has: ${columns.map((c) => c.name).join(', ')}`, {
          where: `source.views (${view.name}).${field}`,
        });
      }
      return column;
    });
  const key = pick(view.key, 'key');
  if (view.mode === 'incremental') {
    if (!view.cursor) throw new FerryError('FERRY_CONFIG_INVALID', `${view.name} is incremental but has no cursor columns`, { where: `source.views (${view.name}).cursor`, fix: 'Add `cursor: [updated_at, <key>]`, or use `mode: diff`.' });
    return { config: view, columns, orderBy: pick(view.cursor, 'cursor'), key };
  }
  return { config: view, columns, orderBy: key, key };
}

function describeGrants(grants: readonly WriteGrant[]): string {
  return grants.map((g) => `${g.privileges.join(', ')} on ${g.view} (${g.grantedBy})`).join('; ');
}

function parseCheckpoint(from: Checkpoint | undefined): DbPollCheckpoint {
  if (from && typeof from === 'object' && !Array.isArray(from) && typeof from.views === 'object' && from.views !== null) {
    return JSON.parse(JSON.stringify(from)) as unknown as DbPollCheckpoint;
  }
  return { views: {} };
}

/** A rejected login: Postgres invalid password / authorization (no such role, no pg_hba line); MySQL access denied (to the server, to the database, without a password). */
function isAuthFailure(e: unknown): boolean {
  const x = e as { code?: string; errno?: number };
  return x.code === '28P01' || x.code === '28000' || x.errno === 1045 || x.errno === 1044 || x.errno === 1698;
}

/** `reader@127.0.0.1:5432/erp`: the login of a connection URL, for messages; never its password. */
export function loginOf(url: string): string {
  try {
    const u = new URL(url);
    const port = u.port || (/^postgres/.test(u.protocol) ? '5432' : '3306');
    return `${decodeURIComponent(u.username) || '(no user)'}@${u.hostname}:${port}/${decodeURIComponent(u.pathname.replace(/^\//, ''))}`;
  } catch {
    return redactUrl(url);
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, (ch) => `%${ch.charCodeAt(0).toString(16)}`);
}
