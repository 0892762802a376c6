import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { show } from './casts.js';
import type { Violation } from './types.js';

// ajv-formats is CommonJS; under NodeNext its default export is the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (ajv: Ajv) => Ajv;

/** A contract compiled once at load time. */
export interface Contract {
  /** The contract and version for people, e.g. `customer/v1`: what dead letters and messages name. */
  readonly id: string;
  /** The event's `dataschema`: an absolute URI (see `contractUri`). */
  readonly uri: string;
  readonly file: string;
  readonly validate: ValidateFunction;
}

/**
 * `customer.v1.schema.json` ⇒ `customer/v1`; a schema's own `$id` wins.
 * Other names drop `.schema.json` / `.json`.
 */
export function contractId(file: string, schema: { $id?: unknown }): string {
  if (typeof schema.$id === 'string' && schema.$id !== '') return schema.$id;
  return nameAndVersion(file).join('/');
}

function nameAndVersion(file: string): string[] {
  const base = path.basename(file).replace(/\.json$/, '').replace(/\.schema$/, '');
  const m = /^(.+)\.(v\d+)$/.exec(base);
  return m ? [m[1]!, m[2]!] : [base];
}

// What `format: uri` in docs/schemas/event.schema.json accepts, so an event
// never fails the schema Ferry publishes for it.
const uriFormat = (() => {
  const ajv = new Ajv({ strict: false });
  addFormats(ajv);
  return ajv.compile({ type: 'string', format: 'uri' });
})();

/**
 * The event's `dataschema`. CloudEvents 1.0 types it as an absolute URI
 * (RFC 3986 section 4.3: a scheme, no fragment), so a bare `customer/v1` is
 * not allowed. The schema's own `$id` when it is one (an empty fragment, as
 * in `https://hub.example/customer.json#`, is dropped); otherwise a URN from
 * the file name, `customer.v1.schema.json` ⇒ `urn:ferry:contract:customer:v1`,
 * which depends on nothing but the name, so every agent gives the same one.
 */
export function contractUri(file: string, schema: { $id?: unknown }): string {
  if (typeof schema.$id === 'string') {
    const id = schema.$id.endsWith('#') ? schema.$id.slice(0, -1) : schema.$id;
    if (!id.includes('#') && uriFormat(id)) return id;
  }
  return `urn:ferry:contract:${nameAndVersion(file).map(encodeURIComponent).join(':')}`;
}

function ajvFor(schema: { $schema?: unknown }): Ajv {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  const options = { allErrors: true, strict: false, validateFormats: true } as const;
  const ajv = dialect.includes('2020-12') ? new Ajv2020(options) : dialect.includes('2019-09') ? new Ajv2019(options) : new Ajv(options);
  addFormats(ajv);
  return ajv;
}

/** Reads and compiles a contract. Throws a plain Error with a user message; the loader locates it. */
export async function loadContract(file: string): Promise<Contract> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `contract file ${file} does not exist — the path is relative to the mapping file's folder` : `cannot read contract ${file}: ${(err as Error).message}`);
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    throw new Error(`contract ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new Error(`contract ${file} must hold a JSON Schema object`);
  try {
    const validate = ajvFor(schema).compile(schema);
    return { id: contractId(file, schema), uri: contractUri(file, schema), file, validate };
  } catch (err) {
    throw new Error(`contract ${file} is not a valid JSON Schema: ${(err as Error).message}`);
  }
}

function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const seg of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}

/** Keywords whose error is about a property that is missing (`params.missingProperty`). */
const MISSING = new Set(['required', 'dependentRequired', 'dependencies']);

/** The field an ajv error is about: `since`, `address.city`. */
function fieldOf(e: ErrorObject): string {
  const base = e.instancePath.split('/').slice(1).join('.');
  const missing = MISSING.has(e.keyword) ? (e.params as { missingProperty: string }).missingProperty : e.keyword === 'additionalProperties' ? (e.params as { additionalProperty: string }).additionalProperty : undefined;
  return missing === undefined ? base : base ? `${base}.${missing}` : missing;
}

/** One ajv error as a violation that names the value and the expectation. */
function describe(e: ErrorObject, data: unknown): Violation {
  const field = fieldOf(e);
  const value = valueAt(data, e.instancePath);
  const p = e.params as Record<string, unknown>;
  let message: string;
  switch (e.keyword) {
    case 'required':
      message = 'is required by the contract but missing';
      break;
    case 'dependentRequired':
    case 'dependencies':
      message = `is required by the contract when ${String(p.property)} is present, but missing`;
      break;
    case 'additionalProperties':
      message = 'is not in the contract (additionalProperties is false)';
      break;
    case 'enum':
      message = `${show(value)} is not one of ${(p.allowedValues as unknown[]).map((v) => show(v)).join(', ')}`;
      break;
    case 'const':
      message = `${show(value)} is not ${show(p.allowedValue)}`;
      break;
    case 'format':
      message = `${show(value)} is not a valid ${String(p.format)}`;
      break;
    case 'pattern':
      message = `${show(value)} does not match the pattern ${String(p.pattern)}`;
      break;
    case 'type':
      message = `${show(value)} is not of type ${String(p.type)}`;
      break;
    default:
      message = `${show(value)} ${e.message ?? 'is not valid'}`;
  }
  return { field, message };
}

/**
 * The violations of the last failed `contract.validate(data)` call (ajv keeps
 * its errors on the function; checking first keeps the valid path free of
 * allocations). Every error is listed (ajv `allErrors`) except those about
 * fields in `skip`, already reported as cast failures, and those that only
 * say a field of `unchanged` is missing: the mapping left it out on purpose
 * (its source value was not sent), and the target keeps the value it has.
 */
export function contractViolations(contract: Contract, data: unknown, skip: ReadonlySet<string> | undefined, out: Violation[], unchanged?: readonly string[]): void {
  for (const e of contract.validate.errors ?? []) {
    if (unchanged !== undefined && missesOnly(e, unchanged)) continue;
    const v = describe(e, data);
    if (skip?.has(v.field.split('.')[0]!)) continue;
    out.push(v);
  }
}

/** A top-level `required` (or `dependentRequired`) error about one of `fields`. */
function missesOnly(e: ErrorObject, fields: readonly string[]): boolean {
  if (e.instancePath !== '' || !MISSING.has(e.keyword)) return false;
  const missing = (e.params as { missingProperty?: unknown }).missingProperty;
  return typeof missing === 'string' && fields.includes(missing);
}
