import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { ConfigError, type ConfigProblem } from '../errors/index.js';
import { compileMapping, type CompiledMapping, type MappingProblem } from './compile-mapping.js';
import { loadContract, type Contract } from './contract.js';
import { didYouMean } from './did-you-mean.js';
import { createMappingSet } from './mapping-set.js';
import { MappingFileSchema, type MappingFile } from './schema.js';
import type { MappingSet } from './types.js';
import { parseLocatedYaml, type LocatedYaml } from './yaml-locate.js';

export interface LoadMappingsContext {
  pipeline: string;
  agentId: string;
  /** The folder `files` are relative to (the configuration file's folder). */
  baseDir: string;
}

const validateFile = new Ajv({ allErrors: true, strict: false, verbose: true }).compile(MappingFileSchema);

/**
 * Loads, validates and compiles a pipeline's mapping files and their contracts.
 * Every problem in every file is collected before one `ConfigError`
 * (`FERRY_MAPPING_INVALID`) is thrown, each located to file:line:column and
 * saying what is wrong and how to fix it. Contracts are shared between
 * mappings that name the same file.
 */
export async function loadMappings(files: readonly string[], ctx: LoadMappingsContext): Promise<MappingSet> {
  const problems: ConfigProblem[] = [];
  const contracts = new Map<string, Promise<Contract | Error>>();
  const compiled: CompiledMapping[] = [];

  for (const file of files) {
    const abs = path.resolve(ctx.baseDir, file);
    let text: string;
    try {
      text = await readFile(abs, 'utf8');
    } catch (err) {
      problems.push({ file, field: '', message: `cannot read the mapping file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}) — check the path in the pipeline's mappings list; it is relative to ${ctx.baseDir}` });
      continue;
    }
    const yaml = parseLocatedYaml(text);
    if (yaml.errors.length > 0) {
      for (const e of yaml.errors) problems.push({ file, line: e.line, column: e.column, field: '', message: `YAML syntax: ${e.message} — fix the syntax at this line` });
      continue;
    }
    const raw = yaml.doc.toJS() as unknown;
    const valid = validateFile(raw);
    if (!valid) problems.push(...schemaProblems(file, yaml, validateFile.errors ?? []));
    // The contract is checked even when the rest of the file is wrong, so one run lists every problem.
    const contractRef = (raw as { contract?: unknown } | null)?.contract;
    if (typeof contractRef !== 'string' || contractRef === '') continue;
    const contractPath = path.resolve(path.dirname(abs), contractRef);
    if (!contracts.has(contractPath)) contracts.set(contractPath, loadContract(contractPath).catch((err: Error) => err));
    const contract = await contracts.get(contractPath)!;
    if (contract instanceof Error) problems.push({ file, ...yaml.locate(['contract']), field: 'contract', message: contract.message });
    if (!valid || contract instanceof Error) continue;
    const mapping = raw as MappingFile;
    const found: MappingProblem[] = [];
    const m = compileMapping(file, mapping, contract, ctx, found);
    for (const p of found) problems.push({ file, ...yaml.locate(p.path), field: dotted(p.path), message: `${p.message} — see docs/mappings.md` });
    if (m) compiled.push(m);
  }
  if (problems.length > 0) throw new ConfigError(problems, 'FERRY_MAPPING_INVALID');
  return createMappingSet(compiled);
}

function dotted(p: readonly (string | number)[]): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function pointerPath(pointer: string): (string | number)[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/**
 * ajv errors as located problems. Errors inside a failed `anyOf` are folded
 * into one (the branches' own errors only confuse), and an unknown key gets
 * a "did you mean" from the keys the schema allows there.
 */
function schemaProblems(file: string, yaml: LocatedYaml, errors: ErrorObject[]): ConfigProblem[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath);
  const out: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (anyOfs.some((s) => e.schemaPath.startsWith(`${s}/`))) continue;
    const at = pointerPath(e.instancePath);
    let field = at;
    let onKey = false;
    let message: string;
    const parent = e.parentSchema as { properties?: Record<string, unknown>; description?: string } | undefined;
    switch (e.keyword) {
      case 'additionalProperties': {
        const extra = (e.params as { additionalProperty: string }).additionalProperty;
        field = [...at, extra];
        onKey = true;
        if (!parent?.properties) {
          message = `name "${extra}" is not allowed — ${parent?.description ?? 'see docs/mappings.md'}`;
          break;
        }
        const allowed = Object.keys(parent.properties);
        const hint = didYouMean(extra, allowed);
        message = `unknown key "${extra}" — ${hint ? `did you mean "${hint}"? ` : ''}allowed here: ${allowed.join(', ')}`;
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        const desc = (parent?.properties?.[missing] as { description?: string } | undefined)?.description;
        message = `"${missing}" is missing — add it${desc ? `: ${desc}` : ''}`;
        break;
      }
      case 'anyOf':
        message = `${e.data === null ? 'null' : JSON.stringify(e.data)} is not allowed here — expected ${describeAnyOf(e.schema as { type?: string }[])}${parent?.description ? ` (${parent.description})` : ''}`;
        break;
      case 'minItems':
        message = `needs at least ${(e.params as { limit: number }).limit} item(s)${parent?.description ? ` — ${parent.description}` : ''}`;
        break;
      case 'minProperties':
      case 'maxProperties':
        message = `${e.message ?? 'wrong number of keys'} — ${parent?.description ?? 'see docs/mappings.md'}`;
        break;
      case 'pattern':
        message = `${JSON.stringify(e.data)} is not allowed — it must match ${(e.params as { pattern: string }).pattern}`;
        field = at;
        break;
      default:
        message = `${e.data === undefined ? '' : `${JSON.stringify(e.data)} `}${e.message ?? 'is not valid'}${parent?.description ? ` — ${parent.description}` : ''}`;
    }
    // patternProperties on `fields` reports the offending key as a property name.
    if (e.keyword === 'pattern' && e.propertyName !== undefined) {
      field = [...at, e.propertyName];
      onKey = true;
      message = `field name "${e.propertyName}" is not allowed — use letters, digits and _ (not starting with a digit)`;
    }
    const id = `${field.join('/')}|${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ file, ...yaml.locate(field, onKey), field: dotted(field), message });
  }
  return out;
}

function describeAnyOf(branches: { type?: string; const?: unknown; items?: { type?: string } }[]): string {
  if (branches.every((b) => b.const !== undefined)) return `one of ${branches.map((b) => String(b.const)).join(', ')}`;
  return [...new Set(branches.map((b) => (b.type === 'array' ? `a list of ${b.items?.type ?? 'values'}` : b.type === undefined ? 'a value' : `a ${b.type}`)))].join(' or ');
}
