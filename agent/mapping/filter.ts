import type { FilterSpec } from './schema.js';

/** Says whether a source record is kept (is an event at all). */
export type RecordFilter = (source: Record<string, unknown>) => boolean;

const CONDITIONS = ['in', 'notIn', 'equals', 'notEquals', 'exists', 'matches'] as const;
const COMBINATORS = ['all', 'any', 'not'] as const;

/** Source values compare as text, so `in: [1, 2]` matches the number 1 and the text "1". */
function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Compiles a filter. Throws a plain Error (with `path`, the YAML path of the
 * offending node, relative to the filter) for a filter that is not exactly one
 * condition or one combinator; the loader locates and reports it.
 */
export function compileFilter(spec: FilterSpec, path: (string | number)[] = []): RecordFilter {
  const conditions = CONDITIONS.filter((c) => spec[c] !== undefined);
  const combinators = COMBINATORS.filter((c) => spec[c] !== undefined);
  const fail = (message: string): never => {
    throw Object.assign(new Error(message), { path });
  };
  if (combinators.length > 0) {
    if (combinators.length > 1 || conditions.length > 0 || spec.field !== undefined) fail(`a filter has either one of all/any/not, or field with one condition; this one has ${[...combinators, ...(spec.field ? ['field'] : []), ...conditions].join(', ')}`);
    if (spec.not) {
      const inner = compileFilter(spec.not, [...path, 'not']);
      return (s) => !inner(s);
    }
    const list = (spec.all ?? spec.any)!.map((f, i) => compileFilter(f, [...path, combinators[0]!, i]));
    return spec.all ? (s) => list.every((f) => f(s)) : (s) => list.some((f) => f(s));
  }
  if (spec.field === undefined) fail(`a filter needs field (with one of ${CONDITIONS.join(', ')}) or one of all, any, not`);
  if (conditions.length !== 1) fail(`field ${spec.field} needs exactly one condition of ${CONDITIONS.join(', ')}; found ${conditions.length === 0 ? 'none' : conditions.join(', ')}`);
  const field = spec.field!;
  switch (conditions[0]!) {
    case 'in':
    case 'notIn': {
      const set = new Set((spec.in ?? spec.notIn)!.map(String));
      const keep = spec.in !== undefined;
      return (s) => {
        const v = text(s[field]);
        return v !== undefined && set.has(v) ? keep : !keep;
      };
    }
    case 'equals': {
      const want = String(spec.equals);
      return (s) => text(s[field]) === want;
    }
    case 'notEquals': {
      const want = String(spec.notEquals);
      return (s) => text(s[field]) !== want;
    }
    case 'exists': {
      const want = spec.exists!;
      return (s) => {
        const v = text(s[field]);
        return (v !== undefined && v !== '') === want;
      };
    }
    case 'matches': {
      let re: RegExp;
      try {
        re = new RegExp(spec.matches!);
      } catch (err) {
        return fail(`matches is not a valid regular expression: ${(err as Error).message}`);
      }
      return (s) => {
        const v = text(s[field]);
        return v !== undefined && re.test(v);
      };
    }
  }
}
