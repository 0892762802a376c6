import { loadConfig, secretValues } from '../../config/load-config.js';
import { FerryError } from '../../errors/index.js';
import { loadMappings } from '../../mapping/load-mappings.js';
import { RedisStateStore } from '../../checkpoint/state-store.js';
import type { SnapshotBatch } from '../../plugin/source.js';
import { mapRecords } from '../../pipeline/map-records.js';
import { DeadLetterQueue, MAPPING_DLQ } from '../../queue/dead-letter-queue.js';
import { PartitionedEnqueuer } from '../../queue/partitioned-enqueuer.js';
import { sourceStateKey } from '../../queue/queue-names.js';
import { findSource } from '../../registry.js';
import { openQueueConnection } from '../../runtime/queue-connection.js';
import { createLogger } from '../../telemetry/logger.js';
import { createLocated, rethrowLocated } from '../../config/plugin-problems.js';

interface SnapshotOptions {
  args: string[];
  config: string;
  table?: string[];
  where?: string;
}

/**
 * `ferry snapshot PIPELINE [-t TABLE...] [-w WHERE]`: reads the current rows
 * of a CDC or poll source again (op `r`), maps them and queues them for every
 * sink of the pipeline, with a progress bar on stderr. The pipeline's stored
 * position is not touched: a running agent keeps streaming meanwhile.
 */
export async function run(opts: SnapshotOptions): Promise<number> {
  const name = opts.args[0]!;
  const config = await loadConfig(opts.config);
  const pipeline = config.pipelines.find((p) => p.name === name);
  if (!pipeline) {
    throw new FerryError('FERRY_USAGE', `no pipeline named "${name}" in ${config.file}`, { fix: `Use one of: ${config.pipelines.map((p) => p.name).join(', ')}.` });
  }
  const plugin = findSource(pipeline.source.type)!;
  // The source names its config mistakes relative to its entry: say which file, line and pipeline, as `ferry run` does.
  const at = ['pipelines', config.pipelines.indexOf(pipeline), 'source'];
  const source = createLocated(config, at, () => plugin.create(pipeline.source as never, { configDir: config.dir }));
  if (!source.snapshot) {
    throw new FerryError('FERRY_USAGE', `a ${pipeline.source.type} source cannot be snapshotted`, { fix: 'ferry snapshot works on postgres-cdc, mysql-cdc and db-poll pipelines.' });
  }
  const logger = createLogger('warn', 2, secretValues(config));
  const conn = await openQueueConnection(config, logger, 'ferry:snapshot');
  const mappings = await loadMappings(pipeline.mappings, { pipeline: name, agentId: config.agent.id, baseDir: config.dir });
  const mappingDlq = new DeadLetterQueue(conn.redis, conn.prefix, name, MAPPING_DLQ);
  const enqueuer = new PartitionedEnqueuer({
    connection: conn.redis,
    prefix: conn.prefix,
    pipeline: name,
    sinks: pipeline.sinks.map((s) => s.name),
    delivery: pipeline.delivery,
    logger,
    onDurable: () => {},
  });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const bar = new ProgressBar();
  const totals = { rows: 0, events: 0, filtered: 0, dead: 0 };
  const deadWrites: Promise<void>[] = [];
  let seq = 0;
  try {
    const ctx = { pipeline: name, agentId: config.agent.id, dataDir: config.agent.dataDir, state: new RedisStateStore(conn.redis, sourceStateKey(conn.prefix, name)), logger };
    const request = { tables: opts.table, where: opts.where, runId: Date.now().toString(36) };
    for await (const batch of source.snapshot(request, ctx, stop.signal)) {
      await enqueuer.waitForRoom();
      const s = seq++;
      enqueuer.open(s);
      const dead = mapRecords(
        batch.records,
        mappings,
        name,
        (event) => {
          enqueuer.add(event, s);
          totals.events++;
        },
        () => totals.filtered++,
      );
      if (dead.length) {
        totals.dead += dead.length;
        deadWrites.push(mappingDlq.add(dead));
      }
      enqueuer.seal(s);
      totals.rows += batch.records.length;
      bar.update(batch);
    }
    await enqueuer.flushAll();
    await Promise.all(deadWrites);
  } catch (err) {
    rethrowLocated(config, at)(err);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    bar.done();
    await enqueuer.close().catch(() => {});
    await mappingDlq.close().catch(() => {});
    await source.close().catch(() => {});
    await conn.close();
  }
  process.stderr.write(
    `${stop.signal.aborted ? 'snapshot interrupted' : 'snapshot done'}: ${totals.rows} rows read, ${totals.events} events queued for ${pipeline.sinks.map((s) => s.name).join(', ')}, ${totals.filtered} filtered, ${totals.dead} dead-lettered\n`,
  );
  return stop.signal.aborted ? 1 : 0;
}

/** One line per table on stderr; redrawn in place on a terminal, printed every 10% otherwise. */
class ProgressBar {
  private table = '';
  private lastPercent = -1;
  private readonly tty = process.stderr.isTTY === true;

  update(batch: SnapshotBatch): void {
    const { table, rowsDone, rowsTotal } = batch.progress;
    if (table !== this.table) {
      if (this.table) this.finishLine();
      this.table = table;
      this.lastPercent = -1;
    }
    const percent = rowsTotal ? Math.min(100, Math.floor((rowsDone / rowsTotal) * 100)) : undefined;
    const width = 30;
    const filled = percent === undefined ? 0 : Math.round((percent / 100) * width);
    const line = `${table} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${rowsDone.toLocaleString('en')}${rowsTotal ? `/${rowsTotal.toLocaleString('en')} rows (${percent}%)` : ' rows'}`;
    if (this.tty) {
      process.stderr.write(`\r${line}`);
    } else if (percent === undefined || Math.floor(percent / 10) > Math.floor(this.lastPercent / 10)) {
      process.stderr.write(`${line}\n`);
    }
    this.lastPercent = percent ?? this.lastPercent;
  }

  done(): void {
    if (this.table) this.finishLine();
  }

  private finishLine(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
