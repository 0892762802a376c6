import { CastFailure, compileCast, show } from './casts.js';
import type { FieldSpec } from './schema.js';

/** The source has no value for this field; in a delete the field is left out. */
export const ABSENT: unique symbol = Symbol('absent');

/**
 * One canonical field, compiled: `value(source, isDelete)` gives the canonical
 * value, `ABSENT` (a delete whose before-image lacks it) or a `CastFailure`.
 */
export interface CompiledField {
  readonly name: string;
  /** The source fields it is made from (none for a `const`). */
  readonly from: readonly string[];
  value(source: Record<string, unknown>, isDelete: boolean): unknown;
}

const titleCase = (s: string): string => s.toLowerCase().replace(/(^|[\s\-'])(\p{L})/gu, (_m, p: string, l: string) => p + l.toUpperCase());
const CASES = { lower: (s: string) => s.toLowerCase(), upper: (s: string) => s.toUpperCase(), title: titleCase } as const;

/** Compiles one `fields:` entry. Throws a plain Error with a user message for contradictory options. */
export function compileField(name: string, spec: FieldSpec): CompiledField {
  checkOptions(spec);
  const cast = compileCast(spec);
  const castMapped = spec.type !== undefined;
  // Text needs no cast call: most fields are plain strings.
  const castText = (spec.type ?? 'string') === 'string';
  const sources = spec.from === undefined ? [] : Array.isArray(spec.from) ? spec.from : [spec.from];
  const single = sources.length === 1 ? sources[0]! : undefined;
  const join = spec.join ?? ' ';
  const trim = spec.trim === true;
  const nullIf = spec.nullIf === undefined ? undefined : new Set(Array.isArray(spec.nullIf) ? spec.nullIf : [spec.nullIf]);
  const changeCase = spec.case === undefined ? undefined : CASES[spec.case];
  const table = spec.map === undefined ? undefined : new Map(Object.entries(spec.map));
  const codes = table ? [...table.keys()].join(', ') : '';
  const hasDefault = spec.default !== undefined;
  const fromText = sources.join(' + ');

  const read = (source: Record<string, unknown>): unknown => {
    if (single !== undefined) {
      const v = source[single];
      return trim && typeof v === 'string' ? v.trim() : v;
    }
    let out: string | undefined;
    for (const f of sources) {
      let v = source[f];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string') v = v instanceof Date ? v.toISOString() : String(v);
      const part = trim ? (v as string).trim() : (v as string);
      if (part === '') continue;
      out = out === undefined ? part : out + join + part;
    }
    return out;
  };

  if (spec.const !== undefined) {
    const value = spec.const;
    return { name, from: sources, value: (_s, isDelete) => (isDelete ? ABSENT : value) };
  }

  return {
    name,
    from: sources,
    value(source, isDelete) {
      let v = read(source);
      if (nullIf !== undefined && typeof v === 'string' && nullIf.has(v)) {
        if (isDelete) return ABSENT;
        return spec.required ? new CastFailure(`${show(v)} means no value (nullIf), but the field is required`) : null;
      }
      if (v === undefined || v === null || v === '') {
        if (isDelete) return ABSENT;
        if (hasDefault) return spec.default;
        return spec.required ? new CastFailure(`is required, but ${fromText} is ${v === '' ? 'empty' : 'missing'}`) : null;
      }
      if (changeCase !== undefined && typeof v === 'string') v = changeCase(v);
      if (table === undefined) return castText && typeof v === 'string' ? v : cast(v);
      const key = typeof v === 'string' ? v : String(v);
      const mapped = table.get(key);
      if (mapped !== undefined || table.has(key)) return castMapped && typeof mapped === 'string' ? cast(mapped) : mapped;
      if (hasDefault) return spec.default;
      return new CastFailure(`${show(v)} is not in the code table (${codes}) and the field has no default`);
    },
  };
}

/** Options that contradict each other; the schema alone cannot say it well. */
function checkOptions(spec: FieldSpec): void {
  const type = spec.type ?? 'string';
  if (spec.const !== undefined && spec.from !== undefined) throw new Error('has both const and from; use one');
  if (spec.const === undefined && spec.from === undefined) throw new Error('needs from (the source field) or const (a constant)');
  if (spec.join !== undefined && !Array.isArray(spec.from)) throw new Error('join only applies when from is a list of fields');
  const only = (option: keyof FieldSpec, types: readonly string[]) => {
    if (spec[option] !== undefined && !types.includes(type)) throw new Error(`${option} only applies to type ${types.join(' or ')}, but the type is ${type}`);
  };
  only('format', ['date', 'timestamp']);
  only('timeZone', ['timestamp']);
  only('decimalSeparator', ['decimal']);
  only('thousandsSeparator', ['decimal', 'integer']);
  only('trueValues', ['boolean']);
  only('falseValues', ['boolean']);
}
