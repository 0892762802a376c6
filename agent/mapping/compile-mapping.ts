import path from 'node:path';
import { eventId, eventType, subjectOf, subjectOfKey, type FerryEvent } from '../event/cloud-event.js';
import type { RecordOrigin, SourceRecord } from '../plugin/source.js';
import { CastFailure } from './casts.js';
import { contractViolations, type Contract } from './contract.js';
import { ABSENT, compileField, type CompiledField } from './field.js';
import { compileFilter, type RecordFilter } from './filter.js';
import { globToRegExp } from './glob.js';
import type { FilterSpec, MappingFile } from './schema.js';
import type { MapOutcome, Violation } from './types.js';

/** One mapping file, compiled: everything that can be decided at load time is. */
export interface CompiledMapping {
  /** The mapping file as named in the configuration. */
  readonly name: string;
  matches(origin: RecordOrigin): boolean;
  apply(record: SourceRecord): MapOutcome;
}

/** A problem found while compiling, at a YAML path of the mapping file. */
export class MappingProblem extends Error {
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message);
  }
}

export interface CompileContext {
  pipeline: string;
  agentId: string;
}

/** The source fields a filter reads. */
function filterFields(spec: FilterSpec, out = new Set<string>()): Set<string> {
  if (spec.field !== undefined) out.add(spec.field);
  for (const inner of [...(spec.all ?? []), ...(spec.any ?? []), ...(spec.not ? [spec.not] : [])]) filterFields(inner, out);
  return out;
}

function compileMatch(match: MappingFile['match']): (origin: RecordOrigin) => boolean {
  const [kind, glob] = Object.entries(match)[0] as [RecordOrigin['kind'], string];
  let re: RegExp;
  try {
    re = globToRegExp(glob);
  } catch (err) {
    throw new MappingProblem(['match', kind], (err as Error).message);
  }
  // Files match on their base name: sources may report a path.
  return kind === 'file' ? (o) => o.kind === 'file' && re.test(path.basename(o.name)) : (o) => o.kind === kind && re.test(o.name);
}

/**
 * Compiles a validated mapping file. Throws a `MappingProblem` for the first
 * problem of each part (fields are all checked, so several may be collected
 * by the caller through `problems`).
 */
export function compileMapping(name: string, file: MappingFile, contract: Contract, ctx: CompileContext, problems: MappingProblem[]): CompiledMapping | undefined {
  const before = problems.length;
  const attempt = <T>(fn: () => T, at: (string | number)[]): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof MappingProblem) problems.push(err);
      else problems.push(new MappingProblem([...at, ...(((err as { path?: (string | number)[] }).path) ?? [])], (err as Error).message));
      return undefined;
    }
  };
  const matches = attempt(() => compileMatch(file.match), ['match']);
  const filter: RecordFilter | undefined = file.filter ? attempt(() => compileFilter(file.filter!), ['filter']) : undefined;
  const fields: CompiledField[] = [];
  for (const [fieldName, spec] of Object.entries(file.fields)) {
    const f = attempt(() => compileField(fieldName, spec), ['fields', fieldName]);
    if (f) fields.push(f);
  }
  file.key.forEach((k, i) => {
    if (!(k in file.fields)) problems.push(new MappingProblem(['key', i], `key field "${k}" is not one of the fields (${Object.keys(file.fields).join(', ')})`));
  });
  if (problems.length > before || !matches) return undefined;

  const entity = file.entity;
  const keyFields = file.key;
  const keySet = new Set(keyFields);
  const singleKey = keyFields.length === 1 ? keyFields[0] : undefined;
  // CloudEvents wants a URI-reference: host names pass unchanged, any other agent id is percent-encoded.
  const source = `ferry://${encodeURIComponent(ctx.agentId)}/${ctx.pipeline}`;
  const types = { c: eventType(entity, 'c'), u: eventType(entity, 'u'), d: eventType(entity, 'd'), r: eventType(entity, 'r'), t: eventType(entity, 't') };
  const violation = (record: SourceRecord, violations: Violation[]): MapOutcome => ({ kind: 'violation', code: 'FERRY_CONTRACT_VIOLATION', mapping: name, contract: contract.id, violations, record });
  const filterReads = file.filter ? [...filterFields(file.filter)] : [];
  const notSent = (columns: readonly string[]) =>
    `the source did not send ${columns.join(' and ')} (unchanged, and not in its change log: for Postgres a TOASTed value, which REPLICA IDENTITY FULL sends)`;

  const event = (record: SourceRecord, subject: string, data: Record<string, unknown>, unchanged?: string[]): MapOutcome => {
    const e: FerryEvent = {
      specversion: '1.0',
      id: eventId(ctx.pipeline, entity, record.changeId),
      source,
      type: types[record.op],
      subject,
      time: record.time,
      dataschema: contract.uri,
      datacontenttype: 'application/json',
      data,
      ferryop: record.op,
      ferryposition: record.position,
      ferrypipeline: ctx.pipeline,
    };
    if (record.txid !== undefined) e.ferrytxid = record.txid;
    if (unchanged !== undefined) e.ferryunchanged = unchanged.join(',');
    return { kind: 'event', event: e };
  };

  return {
    name,
    matches,
    apply(record) {
      if (record.invalid !== undefined) return violation(record, [{ field: '_record', message: `the source could not read this record: ${record.invalid}` }]);
      // A truncate empties the whole table: there is no row to map or check.
      if (record.op === 't') return event(record, record.origin.name, {});
      const isDelete = record.op === 'd';
      const src = (isDelete ? (record.before ?? record.data) : record.data) ?? {};
      // Columns whose value the target already has; a delete is mapped from its before-image, where none is missing.
      const notInRecord = isDelete ? undefined : record.unchanged;
      if (notInRecord !== undefined) {
        // A filter cannot decide on a value it does not have: neither dropping nor passing the change would be true.
        const unknown = filterReads.filter((c) => notInRecord.includes(c));
        if (unknown.length > 0) return violation(record, [{ field: '_filter', message: `the filter reads ${unknown.join(' and ')}, but ${notSent(unknown)}` }]);
      }
      if (filter && !filter(src)) return { kind: 'filtered', mapping: name };

      const data: Record<string, unknown> = {};
      let violations: Violation[] | undefined;
      let failed: Set<string> | undefined;
      let leftOut: string[] | undefined;
      for (const f of fields) {
        if (notInRecord !== undefined) {
          const missing = f.from.filter((c) => notInRecord.includes(c));
          // Any one column missing makes the field's value unknown: better left out than built from part of its sources.
          if (missing.length > 0) {
            if (keySet.has(f.name)) {
              (violations ??= []).push({ field: f.name, message: `key field: ${notSent(missing)}` });
              (failed ??= new Set()).add(f.name);
            } else (leftOut ??= []).push(f.name);
            continue;
          }
        }
        const v = f.value(src, isDelete);
        if (v === ABSENT) continue;
        if (v instanceof CastFailure) {
          // A delete carries what exists; only its key must be sound.
          if (isDelete && !keySet.has(f.name)) continue;
          (violations ??= []).push({ field: f.name, message: v.message });
          (failed ??= new Set()).add(f.name);
          continue;
        }
        data[f.name] = v;
      }
      for (const k of keyFields) {
        const v = data[k];
        if ((v === undefined || v === null || v === '') && !failed?.has(k)) {
          (violations ??= []).push({ field: k, message: isDelete ? 'key field is missing from the delete (no before-image value)' : 'key field is empty' });
          (failed ??= new Set()).add(k);
        }
      }
      if (!isDelete && !contract.validate(data)) contractViolations(contract, data, failed, (violations ??= []), leftOut);
      if (violations !== undefined && violations.length > 0) return violation(record, violations);
      return event(record, singleKey === undefined ? subjectOf(keyFields.map((k) => data[k])) : subjectOfKey(data[singleKey]), data, leftOut);
    },
  };
}
