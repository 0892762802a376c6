import type { Checkpoint } from '../../agent/plugin/source.js';

/**
 * Where file-drop stands: in file `file` (base name) with content `hash`,
 * `records` records have been handed over. `done` once the whole file has
 * been read; `failed` says why when the file turned out unreadable (it then
 * goes to the errors folder).
 */
// A type, not an interface: it must be assignable to Json.
export type FileDropCheckpoint = {
  file: string;
  hash: string;
  records: number;
  done: boolean;
  failed?: string;
};

/** The checkpoint if `cp` has file-drop's shape, else undefined (a foreign or corrupt value is ignored, never trusted). */
export function asFileDropCheckpoint(cp: Checkpoint | undefined): FileDropCheckpoint | undefined {
  if (cp === null || typeof cp !== 'object' || Array.isArray(cp)) return undefined;
  const { file, hash, records, done, failed } = cp;
  if (typeof file !== 'string' || typeof hash !== 'string' || typeof records !== 'number' || typeof done !== 'boolean') return undefined;
  if (failed !== undefined && typeof failed !== 'string') return undefined;
  return failed === undefined ? { file, hash, records, done } : { file, hash, records, done, failed };
}

/** The state key that remembers a content hash as sent (written by `commit` only). */
export function seenKey(hash: string): string {
  return `file-drop:seen:${hash}`;
}
