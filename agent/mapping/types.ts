import type { FerryEvent } from '../event/cloud-event.js';
import type { SourceRecord } from '../plugin/source.js';

/** One reason a record cannot become a valid event. */
export interface Violation {
  /** The canonical field (or source field) at fault, e.g. `since` or `/balance`. */
  field: string;
  /** What is wrong, for people: `"31.02.2024" is not a valid date in format dd.MM.yyyy`. */
  message: string;
}

/**
 * What applying the mappings to one source record gives:
 * - `event`: a contract-valid event, ready to queue;
 * - `filtered`: the mapping's `filter` says this record is not an event;
 * - `violation`: the record breaks a cast or its contract (or no mapping
 *   matches it); it goes to the dead-letter queue with every violation and
 *   the record itself, so `ferry dlq replay` can map it again.
 */
export type MapOutcome =
  | { kind: 'event'; event: FerryEvent }
  | { kind: 'filtered'; mapping: string }
  | { kind: 'violation'; code: 'FERRY_CONTRACT_VIOLATION' | 'FERRY_MAPPING_NO_MATCH'; mapping?: string; contract?: string; violations: Violation[]; record: SourceRecord };

/** The compiled mappings of one pipeline. Pure and synchronous: no I/O after loading. */
export interface MappingSet {
  /** One outcome per mapping that matches the record; one `violation` when none does. */
  apply(record: SourceRecord): MapOutcome[];
  /** The mapping files, for `ferry check` and docs. */
  readonly files: readonly string[];
}

/** What loading needs to know. */
export interface MappingContext {
  pipeline: string;
  agentId: string;
}
