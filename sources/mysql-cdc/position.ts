import type { Checkpoint, Json } from '../../agent/plugin/source.js';
import { FerryError } from '../../agent/errors/index.js';
import type { StoredColumns } from './column-history.js';

/** A place in the binlog: always the end of a whole transaction (or the start of a file). */
export interface BinlogPosition {
  file: string;
  pos: number;
  /**
   * The GTID position at `pos`, when the server has GTIDs: MariaDB's last
   * `domain-server-seq` per domain (as `BINLOG_GTID_POS(file, pos)`), MySQL's
   * executed GTID set (`uuid:1-100`). See gtid-set.ts.
   */
  gtid?: string;
}

/**
 * What the source stores as its checkpoint.
 * - `stream`: resume the binlog at `file:pos`.
 * - `snapshot`: the initial snapshot is under way; `file:pos` is the binlog
 *   position consistent with it (streaming starts there once it is done),
 *   `table` the index in `tables` being read and `after` the last key read
 *   in it (null: none yet).
 * `columns` is the schema history at `file:pos` (see ColumnHistory), used
 * only when the binlog carries no column names.
 */
export type MysqlCdcCheckpoint =
  | ({ phase: 'stream'; columns?: StoredColumns } & BinlogPosition)
  | ({
      phase: 'snapshot';
      table: number;
      after: Json[] | null;
      startedAt: string;
      /** The first position of this snapshot, which names its records' change ids (absent: `file:pos`, as before resumes moved it). */
      snapshotId?: string;
      columns?: StoredColumns;
    } & BinlogPosition);

/** `mariadb-bin.000003:4711`, the form used in event positions, logs and errors. */
export function formatPosition(p: { file: string; pos: number }): string {
  return `${p.file}:${p.pos}`;
}

/** Orders two positions in the binlog: files by their sequence number (`.000009` < `.000010` < `.1000000`), then offsets. */
export function comparePosition(a: { file: string; pos: number }, b: { file: string; pos: number }): number {
  if (a.file !== b.file) {
    const seq = (f: string) => Number(f.slice(f.lastIndexOf('.') + 1));
    const d = seq(a.file) - seq(b.file);
    return Number.isNaN(d) ? (a.file < b.file ? -1 : 1) : Math.sign(d);
  }
  return Math.sign(a.pos - b.pos);
}

/**
 * Checks a stored checkpoint's shape, so a checkpoint from another source
 * type fails clearly. `pipeline` names the stored position to delete.
 */
export function parseCheckpoint(cp: Checkpoint | undefined, pipeline?: string): MysqlCdcCheckpoint | undefined {
  if (cp === undefined || cp === null) return undefined;
  const o = cp as Record<string, unknown>;
  const ok =
    typeof o === 'object' &&
    typeof o.file === 'string' &&
    typeof o.pos === 'number' &&
    (o.phase === 'stream' || (o.phase === 'snapshot' && typeof o.table === 'number' && typeof o.startedAt === 'string'));
  if (!ok) {
    // Nothing reads it, `snapshot: when_needed` included: only deleting it lets the pipeline start.
    const name = pipeline ?? 'PIPELINE';
    throw new FerryError('FERRY_SOURCE_POSITION_LOST', `stored checkpoint is not a mysql-cdc position: ${JSON.stringify(cp).slice(0, 200)}`, {
      where: `pipeline ${name}, stored position`,
      fix:
        `The pipeline's stored position was written by another source type (the pipeline's source was changed) or by hand. Stop the agent, delete it with redis-cli -u REDIS_URL DEL ferry:pipeline:${name}:checkpoint ` +
        '(REDIS_URL being queue.redis; ferry the default queue.prefix, put yours if you set one) and start the agent with snapshot: initial.',
    });
  }
  return o as unknown as MysqlCdcCheckpoint;
}

/** The checkpoint as plain JSON (drops undefined fields). */
export function toCheckpoint(cp: MysqlCdcCheckpoint): Checkpoint {
  return JSON.parse(JSON.stringify(cp)) as Checkpoint;
}
