import { notImplemented } from './not-implemented.js';

export async function run(_opts: Record<string, unknown>): Promise<number> {
  notImplemented('service install', 'systemd installation is planned');
}
