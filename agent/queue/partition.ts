/**
 * The partition of a key: FNV-1a over the subject, so the same key always
 * lands in the same partition (and so in order) across restarts and agents.
 */
export function partitionOf(subject: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < subject.length; i++) {
    h ^= subject.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
