import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

type Schema = TSchema & { default?: unknown; anyOf?: TSchema[]; properties?: Record<string, TSchema>; items?: TSchema; type?: unknown };

/**
 * Fills in `default`s, in place where it can, and returns the value.
 *
 * ajv's `useDefaults` skips defaults inside union branches (a CSV format's
 * `delimiter`, say), and TypeBox's `Value.Default` merges a union's own
 * default object into the value (`complete: { marker }` would gain the
 * default `minAgeMs`). Here a union's default is used only when the value is
 * absent, and a present value takes the defaults of the first branch it
 * matches once they are applied.
 */
export function applyDefaults(schema: TSchema, value: unknown): unknown {
  const s = schema as Schema;
  if (value === undefined) {
    if (s.default === undefined) return undefined;
    value = structuredClone(s.default);
  }
  if (s.anyOf) {
    for (const branch of s.anyOf) {
      const candidate = applyDefaults(branch, structuredClone(value));
      if (matches(branch, candidate)) return candidate;
    }
    return value;
  }
  if (s.properties && isObject(value)) {
    for (const [key, prop] of Object.entries(s.properties)) {
      const v = applyDefaults(prop, value[key]);
      if (v !== undefined) value[key] = v;
    }
    return value;
  }
  if (s.items && Array.isArray(value)) return value.map((v) => applyDefaults(s.items!, v));
  return value;
}

function matches(schema: TSchema, value: unknown): boolean {
  try {
    return Value.Check(schema, value);
  } catch {
    return false; // a schema Value.Check cannot evaluate alone (a recursive reference): let ajv decide
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
