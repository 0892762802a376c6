export type { Json, Checkpoint, Operation, RecordOrigin, SourceRecord, SourceBatch, SourceContext, CheckResult, Source } from './source.js';
export type { SinkContext, Sink } from './sink.js';
export { defineSource, defineSink, type SourcePlugin, type SinkPlugin, type PluginEnv, type PluginConfigProblem } from './define.js';
