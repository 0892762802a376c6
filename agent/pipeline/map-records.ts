import type { Violation, MappingSet } from '../mapping/types.js';
import type { FerryEvent } from '../event/cloud-event.js';
import type { SourceRecord } from '../plugin/source.js';
import type { DeadLetterEntry } from '../queue/dead-letter-queue.js';
// Not from dead-letter-queue.js: that loads BullMQ, which the mapping thread has no use for.
import { MAPPING_DLQ } from '../queue/queue-names.js';
import { partitionOf } from '../queue/partition.js';
import { MappedBatchBuilder, type MappedBatch } from './mapped-batch.js';

/** Violations as one line for a dead-letter entry or a terminal: `since: "31.02.2024" is not a valid date…; id: …`. */
export function violationReason(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.field}: ${v.message}`).join('; ');
}

/**
 * Maps a source batch: each event goes to `onEvent`, each record a filter
 * drops to `onFiltered`, and every record that cannot become an event (the
 * source could not parse it, it breaks its contract, no mapping matches, or
 * the mapping itself failed) comes back as a `_mapping` dead-letter entry
 * holding the record, so nothing is lost and `ferry dlq replay` can map it again.
 */
export function mapRecords(
  records: readonly SourceRecord[],
  mappings: MappingSet,
  pipeline: string,
  onEvent: (event: FerryEvent) => void,
  onFiltered: (mapping: string) => void = () => {},
): DeadLetterEntry[] {
  const dead: DeadLetterEntry[] = [];
  const at = new Date().toISOString();
  for (const record of records) {
    if (record.invalid !== undefined) {
      dead.push({ pipeline, sink: MAPPING_DLQ, code: 'FERRY_RECORD_MALFORMED', reason: record.invalid, location: record.location, record, at });
      continue;
    }
    let outcomes;
    try {
      outcomes = mappings.apply(record);
    } catch (err) {
      // A mapping bug must not lose the record or stall the position.
      dead.push({ pipeline, sink: MAPPING_DLQ, code: 'FERRY_CONTRACT_VIOLATION', reason: `mapping failed: ${(err as Error).message}`, location: record.location, record, at });
      continue;
    }
    for (const outcome of outcomes) {
      if (outcome.kind === 'event') onEvent(outcome.event);
      else if (outcome.kind === 'filtered') onFiltered(outcome.mapping);
      else dead.push({ pipeline, sink: MAPPING_DLQ, code: outcome.code, reason: violationReason(outcome.violations), violations: outcome.violations, location: record.location, record, mappingKey: outcome.mapping, at });
    }
  }
  return dead;
}

/** Maps and serializes a source batch (see MappedBatch). */
export function mapBatch(records: readonly SourceRecord[], mappings: MappingSet, pipeline: string, partitions: number): MappedBatch {
  const out = new MappedBatchBuilder();
  const filtered: Record<string, number> = {};
  const dead = mapRecords(
    records,
    mappings,
    pipeline,
    (event) => out.add(JSON.stringify(event), event.id, partitionOf(event.subject, partitions)),
    (mapping) => {
      filtered[mapping] = (filtered[mapping] ?? 0) + 1;
    },
  );
  return out.finish(dead, filtered);
}
