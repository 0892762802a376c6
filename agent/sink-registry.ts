import type { SinkPlugin } from './plugin/define.js';
import { fileSink } from '../sinks/file/index.js';
import { stdoutSink } from '../sinks/stdout/index.js';
import { webhookSink } from '../sinks/webhook/index.js';

/**
 * Every sink type Ferry knows; adding a sink is one line here. Kept apart
 * from the sources (`registry.ts`) so that the delivery thread, which only
 * delivers, does not load every source's database driver into its heap.
 */
export const SINKS: readonly SinkPlugin[] = [
  fileSink,
  stdoutSink,
  webhookSink,
];

export function findSink(type: string): SinkPlugin | undefined {
  return SINKS.find((p) => p.type === type);
}
