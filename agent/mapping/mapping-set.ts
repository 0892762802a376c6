import type { CompiledMapping } from './compile-mapping.js';
import type { MapOutcome, MappingSet } from './types.js';

/** The compiled mappings of one pipeline: every mapping whose `match` covers a record applies to it. */
export function createMappingSet(mappings: readonly CompiledMapping[]): MappingSet {
  const files = mappings.map((m) => m.name);
  // Records come in long runs from one origin (a file, a table): match once per run, not per record.
  let lastKind: string | undefined;
  let lastName: string | undefined;
  let matching: readonly CompiledMapping[] = [];
  return {
    files,
    apply(record): MapOutcome[] {
      const { kind, name } = record.origin;
      if (kind !== lastKind || name !== lastName) {
        matching = mappings.filter((m) => m.matches(record.origin));
        lastKind = kind;
        lastName = name;
      }
      const out: MapOutcome[] = [];
      for (const m of matching) out.push(m.apply(record));
      if (out.length > 0) return out;
      return [
        {
          kind: 'violation',
          code: 'FERRY_MAPPING_NO_MATCH',
          violations: [{ field: 'origin', message: `no mapping matches ${record.origin.kind} "${record.origin.name}" (mappings: ${files.join(', ') || 'none'})` }],
          record,
        },
      ];
    },
  };
}
