import { notImplemented } from './not-implemented.js';

export async function run(_opts: Record<string, unknown>): Promise<number> {
  notImplemented('status', 'status comes with the admin server');
}
