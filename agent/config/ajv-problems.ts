import type { ErrorObject } from 'ajv';
import { pointerPath } from './field-path.js';
import { suggest } from './suggest.js';

/** A problem found in a YAML value, before it is located in the file. */
export interface PathProblem {
  path: (string | number)[];
  /** `<what> — <how to fix>`. */
  message: string;
  /** Where to point in the file when not at `path` itself (a missing field: its parent). */
  at?: (string | number)[];
  /** Point at the key rather than the value (unknown keys). */
  atKey?: boolean;
}

type Schema = { description?: string; properties?: Record<string, Schema>; anyOf?: Schema[]; const?: unknown; enum?: unknown[]; type?: string | string[]; pattern?: string };

/**
 * Turns ajv errors (run with `allErrors` and `verbose`) into one message per
 * real problem, in words a user can act on. `prefix` is the path of the
 * validated value inside the whole file; `secretPaths` are strings whose
 * value must never be quoted (they held a secret reference).
 */
export function ajvProblems(errors: readonly ErrorObject[], prefix: readonly (string | number)[], secretPaths: readonly (string | number)[][] = []): PathProblem[] {
  const isSecret = (path: (string | number)[]) => secretPaths.some((s) => s.length === path.length && s.every((seg, i) => seg === path[i]));
  const pathOf = (e: ErrorObject) => [...prefix, ...pointerPath(e.instancePath)];
  const shown = (e: ErrorObject) => (isSecret(pathOf(e)) ? 'the value' : isScalar(e.data) ? JSON.stringify(e.data) : typeName(e.data));

  const convert = (list: readonly ErrorObject[]): PathProblem[] => {
    // A union fails once per branch and once as a whole: the whole decides which branch errors to report.
    const unions = list.filter((e) => e.keyword === 'anyOf');
    const inBranch = (e: ErrorObject, u: ErrorObject) => e !== u && e.schemaPath.startsWith(`${u.schemaPath}/`);
    return list.filter((e) => !unions.some((u) => inBranch(e, u))).flatMap((e) => (e.keyword === 'anyOf' ? union(e, list.filter((x) => inBranch(x, e))) : one(e)));
  };

  const union = (e: ErrorObject, inner: ErrorObject[]): PathProblem[] => {
    const path = pathOf(e);
    const schema = (e.parentSchema ?? {}) as Schema;
    const branches = schema.anyOf ?? [];
    const branchErrors = branches.map((_, i) => inner.filter((x) => x.schemaPath.startsWith(`${e.schemaPath}/${i}/`)));

    const consts = branches.map((b) => b.const);
    if (consts.every((c) => c !== undefined)) return [notAllowed(e, path, consts)];

    // Not even the right kind of value (a string where an object is expected).
    if (branchErrors.every((errs) => errs.some((x) => x.keyword === 'type' && x.instancePath === e.instancePath))) {
      const kinds = [...new Set(branches.flatMap((b) => [b.type ?? 'value'].flat()))];
      return [{ path, message: `expected ${kinds.join(' or ')}, found ${isSecret(path) ? typeof e.data : typeName(e.data)}${describe(schema)}` }];
    }

    // Variants told apart by `type:` (a CSV or a JSON-lines format): report against the variant named.
    const tags = branches.map((b) => b.properties?.type?.const);
    const data = e.data as Record<string, unknown> | null;
    if (tags.every((t) => t !== undefined) && data && typeof data === 'object' && !Array.isArray(data) && 'type' in data) {
      const chosen = tags.indexOf(data.type as never);
      if (chosen < 0) return [notAllowed({ ...e, data: data.type }, [...path, 'type'], tags)];
      return convert(branchErrors[chosen]!);
    }

    // Otherwise the variant the value comes closest to.
    const closest = branchErrors.reduce((best, errs, i) => (errs.length < branchErrors[best]!.length ? i : best), 0);
    return branchErrors[closest]!.length ? convert(branchErrors[closest]!) : [{ path, message: `${shown(e)} matches none of the allowed forms${describe(schema)}` }];
  };

  const notAllowed = (e: ErrorObject, path: (string | number)[], options: unknown[]): PathProblem => {
    const hint = typeof e.data === 'string' && !isSecret(path) ? suggest(e.data, options.map(String)) : '';
    return { path, message: `${shown(e)} is not allowed${hint} — use one of: ${options.map((o) => JSON.stringify(o)).join(', ')}` };
  };

  const one = (e: ErrorObject): PathProblem[] => {
    const path = pathOf(e);
    const schema = (e.parentSchema ?? {}) as Schema;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String((e.params as { additionalProperty: string }).additionalProperty);
        const known = Object.keys(schema.properties ?? {});
        return [{ path: [...path, key], atKey: true, message: `unknown key \`${key}\`${suggest(key, known)} — remove it${known.length ? `; allowed keys: ${known.join(', ')}` : ''}` }];
      }
      case 'required': {
        const key = String((e.params as { missingProperty: string }).missingProperty);
        const about = schema.properties?.[key]?.description;
        return [{ path: [...path, key], at: path, message: `missing required field — add \`${key}:\`${about ? ` (${about})` : ''}` }];
      }
      case 'type':
        return [{ path, message: `expected ${[schema.type].flat().join(' or ')}, found ${isSecret(path) ? typeof e.data : typeName(e.data)}${describe(schema)}` }];
      case 'enum':
        return [notAllowed(e, path, schema.enum ?? [])];
      case 'const':
        return [notAllowed(e, path, [schema.const])];
      case 'pattern':
        return [{ path, message: `${shown(e)} does not match ${schema.pattern ?? (e.params as { pattern: string }).pattern}${describe(schema)}` }];
      default:
        return [{ path, message: `${shown(e)} ${e.message ?? 'is invalid'}${describe(schema)}` }];
    }
  };

  return convert(errors);
}

function describe(s: Schema): string {
  return s.description ? ` — ${s.description}` : '';
}

function isScalar(v: unknown): boolean {
  return v === null || ['string', 'number', 'boolean'].includes(typeof v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}
