import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TObject } from '@sinclair/typebox';
import { ConfigError, type ConfigProblem } from '../errors/index.js';
import { SINKS, SOURCES, findSink, findSource } from '../registry.js';
import { ajvProblems, type PathProblem } from './ajv-problems.js';
import { applyDefaults } from './apply-defaults.js';
import { suggest } from './suggest.js';
import { resolveSecrets } from './resolve-secrets.js';
import { FerryConfigSchema, type FerryConfig } from './schema.js';
import { parseLocatedYaml } from '../mapping/yaml-locate.js';
import { fieldName } from './field-path.js';
import { pluginEntryProblems, rememberConfigText } from './plugin-problems.js';
import type { SinkPlugin, SourcePlugin } from '../plugin/define.js';
import { secretRedactor } from '../telemetry/logger.js';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

// Strict, except that a `default` ajv cannot apply (inside a union branch) is
// allowed: applyDefaults fills those in before ajv runs.
const quiet = { log: () => {}, warn: () => {}, error: (...args: unknown[]) => console.error(...args) };
const ajv = addFormats(new Ajv({ allErrors: true, useDefaults: true, strict: true, strictSchema: 'log', logger: quiet, verbose: true, allowUnionTypes: true }));
const validateRoot = ajv.compile(FerryConfigSchema);
const pluginValidators = new WeakMap<TObject, ValidateFunction>();
const secretsOf = new WeakMap<FerryConfig, readonly string[]>();

/**
 * Reads, validates and resolves a ferry.yaml.
 *
 * Collects every problem (YAML syntax, unknown or missing keys, wrong types,
 * unknown plugin types, plugin fields, what a plugin's own `validate` or
 * constructor refuses, duplicate names, unresolvable secrets)
 * and throws them together as one `ConfigError`, each located to
 * `file:line:col` and a field path such as `pipelines[0].sinks[1].url`.
 *
 * The result has defaults applied, `${env:NAME}` / `${file:PATH}` references
 * replaced by their values (see `secretValues`), `agent.id` defaulted to the
 * host name and `agent.dataDir` absolute. Paths inside plugin configs stay as
 * written: plugins resolve them against `PluginEnv.configDir` (= `dir`).
 *
 * @throws ConfigError FERRY_CONFIG_NOT_FOUND, FERRY_CONFIG_YAML, FERRY_CONFIG_INVALID,
 *   FERRY_SECRET_UNRESOLVED or FERRY_PLUGIN_UNKNOWN (exit code 2).
 */
export async function loadConfig(file: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<FerryConfig> {
  const abs = resolve(file);
  const dir = dirname(abs);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot be read (${code ?? String(err)})`;
    // A relative name (the default ferry.yaml) alone does not say which folder was searched.
    const shown = abs === file ? what : `${what} (${abs})`;
    throw new ConfigError([{ file, field: '', message: `${shown} — pass an existing configuration with --config FILE` }], 'FERRY_CONFIG_NOT_FOUND');
  }

  const yaml = parseLocatedYaml(text);
  if (yaml.errors.length) {
    // After the first syntax error the parser's further errors are mostly its confusion: report the first.
    throw new ConfigError(yaml.errors.slice(0, 1).map((e) => ({ file, line: e.line, column: e.column, field: '', message: `${e.message} — fix the YAML syntax here` })), 'FERRY_CONFIG_YAML');
  }
  const value: unknown = yaml.doc.toJS({ maxAliasCount: 100 }) ?? {};
  const problems: (PathProblem & { code?: 'FERRY_SECRET_UNRESOLVED' | 'FERRY_PLUGIN_UNKNOWN' })[] = [];
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([{ file, line: 1, column: 1, field: '', message: 'the file must be a mapping with `agent`, `queue` and `pipelines` — see docs/configuration.md' }]);
  }

  const secrets = resolveSecrets(value, opts.env ?? process.env, dir);
  for (const p of secrets.problems) problems.push({ ...p, code: 'FERRY_SECRET_UNRESOLVED' });

  applyDefaults(FerryConfigSchema, value);
  if (!validateRoot(value)) problems.push(...ajvProblems(validateRoot.errors ?? [], [], secrets.paths));
  const pipelines = Array.isArray((value as { pipelines?: unknown }).pipelines) ? ((value as { pipelines: unknown[] }).pipelines) : [];
  const entries: { plugin: SourcePlugin | SinkPlugin; entry: Record<string, unknown>; path: (string | number)[] }[] = [];
  const check = (kind: 'source' | 'sink', entry: unknown, path: (string | number)[]) => {
    const found = checkPlugin(kind, entry, path, secrets.paths);
    problems.push(...found);
    if (!found.length && isObject(entry)) {
      const plugin = kind === 'source' ? findSource(String(entry.type)) : findSink(String(entry.type));
      if (plugin) entries.push({ plugin, entry, path });
    }
  };
  pipelines.forEach((pipeline, i) => {
    if (!isObject(pipeline)) return;
    check('source', pipeline.source, ['pipelines', i, 'source']);
    if (Array.isArray(pipeline.sinks)) pipeline.sinks.forEach((sink, j) => check('sink', sink, ['pipelines', i, 'sinks', j]));
    problems.push(...duplicates(Array.isArray(pipeline.sinks) ? pipeline.sinks : [], ['pipelines', i, 'sinks'], 'sink', 'within this pipeline'));
  });
  problems.push(...duplicates(pipelines, ['pipelines'], 'pipeline', 'in this file'));

  // What only the plugin can judge (an encoding name, a cron expression), for entries that passed their schema and
  // whose secrets resolved: otherwise the plugin would judge a value the user did not write.
  const redact = secretRedactor(secrets.values) ?? ((s: string) => s);
  for (const { plugin, entry, path } of entries) {
    if (problems.some((p) => startsWith(p.path, path))) continue;
    for (const p of await pluginEntryProblems(plugin, entry, { configDir: dir })) problems.push({ path: [...path, ...p.path], message: redact(p.fix ? `${p.message} — ${p.fix}` : p.message) });
  }

  if (problems.length) {
    const located: ConfigProblem[] = problems
      .map((p) => ({ file, ...yaml.locate(p.at ?? p.path, p.atKey ?? false), field: fieldName(p.path), message: p.message }))
      .sort((a, b) => a.line - b.line || a.column - b.column);
    const codes = new Set(problems.map((p) => p.code ?? 'FERRY_CONFIG_INVALID'));
    throw new ConfigError(located, codes.size === 1 ? [...codes][0] : 'FERRY_CONFIG_INVALID');
  }

  const config = value as FerryConfig;
  config.file = abs;
  config.dir = dir;
  config.agent.id ??= hostname();
  config.agent.dataDir = resolve(dir, config.agent.dataDir);
  secretsOf.set(config, [...new Set(secrets.values)]);
  rememberConfigText(config, file, yaml);
  return config;
}

/**
 * The values `${env:...}` and `${file:...}` references resolved to in this
 * configuration: give them to `createLogger` so no log line ever carries one.
 */
export function secretValues(config: FerryConfig): readonly string[] {
  return secretsOf.get(config) ?? [];
}

/** `file:line:col  field: what — how to fix`, the way `ferry check` prints a problem. */
export function formatProblem(p: ConfigProblem): string {
  const pos = p.line === undefined ? p.file : `${p.file}:${p.line}${p.column === undefined ? '' : `:${p.column}`}`;
  return `${pos}  ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

function checkPlugin(kind: 'source' | 'sink', entry: unknown, path: (string | number)[], secretPaths: (string | number)[][]): (PathProblem & { code?: 'FERRY_PLUGIN_UNKNOWN' })[] {
  if (!isObject(entry) || typeof entry.type !== 'string') return []; // the root schema already said so
  const plugin = kind === 'source' ? findSource(entry.type) : findSink(entry.type);
  if (!plugin) {
    const known = (kind === 'source' ? SOURCES : SINKS).map((p) => p.type);
    return [
      {
        path: [...path, 'type'],
        code: 'FERRY_PLUGIN_UNKNOWN',
        message: `unknown ${kind} type \`${entry.type}\`${suggest(entry.type, known)} — ${known.length ? `known ${kind} types: ${known.join(', ')}` : `this build has no ${kind} types registered`}`,
      },
    ];
  }
  let validate = pluginValidators.get(plugin.config);
  if (!validate) pluginValidators.set(plugin.config, (validate = ajv.compile(plugin.config)));
  applyDefaults(plugin.config, entry);
  return validate(entry) ? [] : ajvProblems(validate.errors ?? [], path, secretPaths);
}

function duplicates(items: unknown[], path: (string | number)[], what: string, scope: string): PathProblem[] {
  const seen = new Map<string, number>();
  const problems: PathProblem[] = [];
  items.forEach((item, i) => {
    if (!isObject(item) || typeof item.name !== 'string') return;
    const first = seen.get(item.name);
    if (first === undefined) seen.set(item.name, i);
    else problems.push({ path: [...path, i, 'name'], message: `${what} name \`${item.name}\` is already used by ${fieldName([...path, first])} — names must be unique ${scope}` });
  });
  return problems;
}

function startsWith(path: readonly (string | number)[], prefix: readonly (string | number)[]): boolean {
  return prefix.every((seg, i) => path[i] === seg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
