import { FerryError } from '../../agent/errors/index.js';
import type { Checkpoint, Json } from '../../agent/plugin/source.js';
import { normaliseLsn } from './lsn.js';
import type { SnapshotProgress } from './snapshot.js';

/**
 * The postgres-cdc checkpoint: `lsn` is the slot position before which every
 * change is durable (the end of the last whole transaction, or a heartbeat);
 * `snapshot` is present while the initial snapshot is unfinished.
 */
export interface PgCdcCheckpoint {
  lsn: string;
  snapshot?: SnapshotProgress;
}

export function toCheckpoint(cp: PgCdcCheckpoint): Checkpoint {
  if (!cp.snapshot) return { lsn: cp.lsn };
  const { id, startedAt, tables, lastKey } = cp.snapshot;
  const snapshot: { [key: string]: Json } = { id, startedAt, tables: [...tables] };
  if (lastKey) snapshot.lastKey = [...lastKey];
  return { lsn: cp.lsn, snapshot };
}

export function parseCheckpoint(value: Checkpoint | undefined, where: string): PgCdcCheckpoint | undefined {
  if (value === undefined || value === null) return undefined;
  const v = value as Partial<PgCdcCheckpoint>;
  try {
    if (typeof v !== 'object' || typeof v.lsn !== 'string') throw new Error('no lsn');
    const lsn = normaliseLsn(v.lsn);
    const s = v.snapshot;
    if (s === undefined) return { lsn };
    if (typeof s.id !== 'string' || typeof s.startedAt !== 'string' || !Array.isArray(s.tables)) throw new Error('bad snapshot progress');
    const snapshot: SnapshotProgress = { id: s.id, startedAt: s.startedAt, tables: s.tables.map(String) };
    if (Array.isArray(s.lastKey)) snapshot.lastKey = s.lastKey.map(String);
    return { lsn, snapshot };
  } catch (error) {
    throw new FerryError('FERRY_SOURCE_POSITION_LOST', `stored postgres-cdc checkpoint is unreadable: ${JSON.stringify(value)}`, {
      where,
      cause: error,
      // when_needed cannot help: a position must be readable before it can be judged lost.
      fix:
        'The stored position is not one this source wrote (edited by hand, or left by a pipeline of another source type with the same name). ' +
        'Stop the agent, delete it with redis-cli -u REDIS_URL DEL PREFIX:pipeline:NAME:checkpoint (queue.redis, queue.prefix — default ferry — and the pipeline name) ' +
        'and start the agent with snapshot: initial: it re-reads the tables and streams on from there.',
    });
  }
}
