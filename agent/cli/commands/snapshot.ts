import { notImplemented } from './not-implemented.js';

export async function run(_opts: Record<string, unknown>): Promise<number> {
  notImplemented('snapshot', 'snapshots come with the CDC and poll sources');
}
