import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { ConfigError, FerryError, formatLocation, type ConfigProblem } from '../errors/index.js';
import { parseLocatedYaml, type LocatedYaml } from '../mapping/yaml-locate.js';
import type { PluginConfigProblem, PluginEnv, SinkPlugin, SourcePlugin } from '../plugin/define.js';
import { fieldName } from './field-path.js';
import type { FerryConfig } from './schema.js';

type Path = (string | number)[];

/** Where a loaded configuration came from, so errors raised later can point into it. */
interface ConfigText {
  /** The file as the user named it (`--config`), the way every other problem names it. */
  file: string;
  yaml: LocatedYaml;
}

const texts = new WeakMap<FerryConfig, ConfigText>();

/** Called by the loader: later plugin errors about `config` are located in this text. */
export function rememberConfigText(config: FerryConfig, file: string, yaml: LocatedYaml): void {
  texts.set(config, { file, yaml });
}

/**
 * What a plugin finds wrong in an entry that passed its schema, without any
 * I/O: its `validate`, and, when that finds nothing, a trial `create` +
 * `close`, since `create` does no I/O (docs/specs/component.md) and some
 * plugins check their config only in their constructor. Paths are inside
 * the entry.
 */
export async function pluginEntryProblems(plugin: SourcePlugin | SinkPlugin, entry: Record<string, unknown>, env: PluginEnv): Promise<PluginConfigProblem[]> {
  const found = plugin.validate?.(entry as never, env) ?? [];
  if (found.length) return found;
  let instance: { close(): Promise<void> };
  try {
    instance = plugin.create(entry as never, env);
  } catch (err) {
    // Anything else is a bug in the plugin, not a mistake in the file: the real create reports it.
    return err instanceof FerryError ? entryProblems(err, entry) : [];
  }
  await instance.close().catch(() => undefined);
  return [];
}

/**
 * A plugin's error about its own configuration (a `ConfigError` naming
 * `ferry.yaml` or a field such as `source.tables`, a `FERRY_CONFIG_INVALID`
 * whose `where` is `source.format.encoding`) located in the real file: its
 * path as given, the line of the field and the full path
 * `pipelines[N].source.tables[1]`. `at` is the entry's path in the file.
 * Other errors come back unchanged.
 */
export function locatePluginError(config: FerryConfig, err: unknown, at: Path): unknown {
  if (!(err instanceof FerryError)) return err;
  const entry = valueAt(config, at);
  const text = configText(config);
  const locate = (path: Path) => ({ file: text.file, ...text.yaml.locate([...at, ...path]), field: fieldName([...at, ...path]) });

  if (err instanceof ConfigError) {
    let changed = false;
    const problems = err.problems.map((p): ConfigProblem => {
      if (!aboutThisFile(p, config)) return p;
      changed = true;
      const [found] = entryProblems(new ConfigError([p]), entry);
      return { ...locate(found!.path), message: found!.message };
    });
    return changed ? new ConfigError(problems, err.code as ConstructorParameters<typeof ConfigError>[1]) : err;
  }
  if (err.code === 'FERRY_CONFIG_INVALID') {
    return new ConfigError(entryProblems(err, entry).map((p) => ({ ...locate(p.path), message: p.message })));
  }
  // Other mistakes a plugin names by field (`where: 'source.connection'`) keep their code and get the line.
  const path = err.where === undefined || err.constructor !== FerryError ? undefined : entryPath(err.where, entry, true);
  if (path === undefined) return err;
  return new FerryError(err.code, err.message, { where: formatLocation({ ...locate(path), message: err.message }), ...(err.fix === undefined ? {} : { fix: err.fix }), cause: err });
}

/** For `.catch`: rethrows a plugin's error located in the config (locatePluginError) at the entry `at`. */
export function rethrowLocated(config: FerryConfig, at: Path): (err: unknown) => never {
  return (err) => {
    throw locatePluginError(config, err, at);
  };
}

/** `make()` (a plugin's `create`), its config mistakes located in the file at the entry `at`. */
export function createLocated<T>(config: FerryConfig, at: Path, make: () => T): T {
  try {
    return make();
  } catch (err) {
    throw locatePluginError(config, err, at);
  }
}

/** A plugin error as problems inside its entry; a location that names no field of it points at the entry itself. */
function entryProblems(err: FerryError, entry: unknown): PluginConfigProblem[] {
  const fix = err.fix && !(err instanceof ConfigError) ? ` — ${err.fix}` : '';
  const raw = err instanceof ConfigError ? err.problems.map((p) => ({ where: p.field, message: p.message })) : [{ where: err.where ?? '', message: `${err.message}${fix}` }];
  return raw.map(({ where, message }) => {
    const path = entryPath(where, entry, false);
    if (path === undefined) return { path: [], message: where ? `${message} (at ${where})` : message };
    return { path: narrowToItem(path, entry, message), message };
  });
}

/** A problem a plugin could only place as "ferry.yaml" or relative to its entry (no line), not in a file of its own. */
function aboutThisFile(p: ConfigProblem, config: FerryConfig): boolean {
  if (p.line !== undefined) return false;
  return p.file === '' || p.file === 'ferry.yaml' || resolve(config.dir, p.file) === config.file;
}

const SEGMENT = /([A-Za-z_$][\w$-]*)|\[(\d+)\]|\s*\(([^()]+)\)|(\.)/y;

/**
 * The path inside a plugin's entry that a location names: `source.format.encoding`,
 * `pipelines[0].source.views[1].cursor`, `sink.url`, `views (orders_v).cursor`
 * (an item by its `name`) or, unless `strict`, a bare `tables` or a sentence
 * ending with a field of the entry (`postgres://db slot s tables`).
 * Undefined when it names none.
 */
export function entryPath(where: string, entry: unknown, strict: boolean): Path | undefined {
  const text = where.trim();
  const prefix = /^(?:pipelines\[\d+\]\.)?(?:source|sink|sinks\[\d+\])(?=\.|$)\.?/.exec(text);
  const rest = text.slice(prefix?.[0].length ?? 0);
  const path = parsePath(rest, entry);
  if (path !== undefined && (prefix || (!strict && path.length > 0 && isKeyOf(entry, path[0]!)))) return path;
  if (strict) return undefined;
  const last = /([A-Za-z_$][\w$-]*)$/.exec(text)?.[1];
  return last !== undefined && /\s/.test(text) && isKeyOf(entry, last) ? [last] : undefined;
}

function parsePath(text: string, entry: unknown): Path | undefined {
  const path: Path = [];
  let value = entry;
  let expectName = true;
  SEGMENT.lastIndex = 0;
  while (SEGMENT.lastIndex < text.length) {
    const m = SEGMENT.exec(text);
    if (!m) return undefined;
    const [, name, index, itemName, dot] = m;
    if (dot !== undefined) {
      if (expectName) return undefined;
      expectName = true;
      continue;
    }
    if (name !== undefined) {
      if (!expectName) return undefined;
      expectName = false;
      path.push(name);
      value = isObject(value) ? value[name] : undefined;
    } else if (expectName) return undefined;
    else if (index !== undefined) {
      path.push(Number(index));
      value = Array.isArray(value) ? value[Number(index)] : undefined;
    } else {
      const i = Array.isArray(value) ? value.findIndex((v) => v === itemName || (isObject(v) && v.name === itemName)) : -1;
      if (i < 0) return path; // the list as a whole, then
      path.push(i);
      value = (value as unknown[])[i];
    }
  }
  return expectName && path.length > 0 ? undefined : path;
}

/** `tables` → `tables[1]` when the message names exactly one of the list's items (`table shop.nope does not exist`). */
function narrowToItem(path: Path, entry: unknown, message: string): Path {
  const value = valueAt(entry, path);
  if (!Array.isArray(value)) return path;
  const named = value.flatMap((v, i) => (typeof v === 'string' && v && new RegExp(`(^|[^\\w.])${escape(v)}([^\\w.]|$)`).test(message) ? [i] : []));
  return named.length === 1 ? [...path, named[0]!] : path;
}

/** The text of a loaded config; in a worker thread (a structured clone), read again from the file. */
function configText(config: FerryConfig): ConfigText {
  const known = texts.get(config);
  if (known) return known;
  let text = '';
  try {
    text = readFileSync(config.file, 'utf8');
  } catch {
    // Without the file there is no line to give; the path still names the field.
  }
  const shown = relative(process.cwd(), config.file);
  const parsed = { file: shown.startsWith('..') || isAbsolute(shown) ? config.file : shown, yaml: parseLocatedYaml(text) };
  texts.set(config, parsed);
  return parsed;
}

function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const seg of path) v = Array.isArray(v) ? v[Number(seg)] : isObject(v) ? v[String(seg)] : undefined;
  return v;
}

function isKeyOf(entry: unknown, key: string | number): boolean {
  return isObject(entry) && typeof key === 'string' && key in entry;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
