import type { Static, TObject } from '@sinclair/typebox';
import type { Source } from './source.js';
import type { Sink } from './sink.js';

/**
 * A source type: its name (`source.type` in ferry.yaml), a one-line summary
 * for docs and `ferry --help`, and its config schema. The schema describes the
 * whole `source:` object including `type`; every field has a description
 * (docs are generated from it). `create` gets the config already validated
 * and with secrets resolved, plus the folder of the config file for relative
 * paths.
 *
 * `validate`, when present, finds what the schema cannot say (an encoding
 * name, a cron expression, two fields that exclude each other) without I/O.
 * The configuration loader runs it, and then a trial `create` + `close`, for
 * every entry that passed the schema, so `ferry check --offline`, `ferry
 * check` and `ferry run` all report such a mistake as a configuration
 * problem at its line in ferry.yaml (exit 2).
 */
export interface SourcePlugin<S extends TObject = TObject> {
  kind: 'source';
  type: string;
  summary: string;
  config: S;
  validate?(config: Static<S>, env: PluginEnv): PluginConfigProblem[];
  create(config: Static<S>, env: PluginEnv): Source;
}

/** A sink type; see SourcePlugin. The schema describes one `sinks[]` entry including `name` and `type`. */
export interface SinkPlugin<S extends TObject = TObject> {
  kind: 'sink';
  type: string;
  summary: string;
  config: S;
  validate?(config: Static<S>, env: PluginEnv): PluginConfigProblem[];
  create(config: Static<S>, env: PluginEnv): Sink;
}

/**
 * One mistake in a plugin's own config entry, found by its `validate`. The
 * loader turns it into `ferry.yaml:LINE  pipelines[N].source.<path>: message`.
 */
export interface PluginConfigProblem {
  /** Path inside the entry, e.g. `['format', 'encoding']`; `[]` for the entry as a whole. */
  path: (string | number)[];
  /** What is wrong; never a secret. */
  message: string;
  /** How to fix it. */
  fix?: string;
}

/** Facts a plugin may need when it is created. */
export interface PluginEnv {
  /** Folder of the configuration file: relative paths in plugin config are resolved against it. */
  configDir: string;
}

export function defineSource<S extends TObject>(plugin: Omit<SourcePlugin<S>, 'kind'>): SourcePlugin<S> {
  return { kind: 'source', ...plugin };
}

export function defineSink<S extends TObject>(plugin: Omit<SinkPlugin<S>, 'kind'>): SinkPlugin<S> {
  return { kind: 'sink', ...plugin };
}
