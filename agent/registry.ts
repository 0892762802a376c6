import type { SinkPlugin, SourcePlugin } from './plugin/define.js';

/**
 * Every source and sink type Ferry knows. Adding a plugin is one line here;
 * everything else (config validation, JSON Schema, docs, `ferry --help`)
 * reads this list.
 */
export const SOURCES: readonly SourcePlugin[] = [
];

export const SINKS: readonly SinkPlugin[] = [
];

export function findSource(type: string): SourcePlugin | undefined {
  return SOURCES.find((p) => p.type === type);
}

export function findSink(type: string): SinkPlugin | undefined {
  return SINKS.find((p) => p.type === type);
}
