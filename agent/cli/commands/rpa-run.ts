import { notImplemented } from './not-implemented.js';

export async function run(_opts: Record<string, unknown>): Promise<number> {
  notImplemented('rpa run', 'it comes with the `rpa` source, which this version does not have');
}
