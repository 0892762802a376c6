import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric Ferry emits, in one place, with Vector's component names
 * (docs/specs/component.md). Plugins never create counters of their own:
 * they report through these functions, so names and labels stay uniform.
 */
export class Telemetry {
  readonly registry = new Registry();

  private readonly received = new Counter({
    name: 'component_received_events_total',
    help: 'Records read by a source, or events taken from the queue by a sink.',
    labelNames: ['pipeline', 'component_kind', 'component_id'],
    registers: [this.registry],
  });
  private readonly sent = new Counter({
    name: 'component_sent_events_total',
    help: 'Events queued by a pipeline (component_kind=source) or delivered by a sink.',
    labelNames: ['pipeline', 'component_kind', 'component_id'],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'component_errors_total',
    help: 'Errors by type and stage (reading, mapping, enqueueing, delivering).',
    labelNames: ['pipeline', 'component_kind', 'component_id', 'error_type', 'stage'],
    registers: [this.registry],
  });
  private readonly discarded = new Counter({
    name: 'component_discarded_events_total',
    help: 'Records intentionally not sent: dropped by a mapping filter.',
    labelNames: ['pipeline', 'component_kind', 'component_id', 'intentional'],
    registers: [this.registry],
  });
  private readonly violations = new Counter({
    name: 'ferry_contract_violations_total',
    help: 'Records that broke their mapping or contract and went to the dead-letter queue.',
    labelNames: ['pipeline', 'code'],
    registers: [this.registry],
  });
  private readonly deadLettered = new Counter({
    name: 'ferry_dead_lettered_events_total',
    help: 'Events or records written to a dead-letter queue.',
    labelNames: ['pipeline', 'sink'],
    registers: [this.registry],
  });
  private readonly sinkLatency = new Histogram({
    name: 'ferry_sink_write_duration_seconds',
    help: 'Duration of one successful sink write (one batch).',
    labelNames: ['pipeline', 'sink'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly endToEnd = new Histogram({
    name: 'ferry_end_to_end_lag_seconds',
    help: 'From the moment an event was read at the source to its delivery by a sink.',
    labelNames: ['pipeline', 'sink'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'ferry_queue_depth', help: 'Events waiting in the queue per sink (jobs times batch size is an upper bound; this counts jobs).', labelNames: ['pipeline', 'sink'], registers: [this.registry] });
  readonly deadLetterDepth = new Gauge({ name: 'ferry_dead_letter_depth', help: 'Entries in the dead-letter queue.', labelNames: ['pipeline', 'sink'], registers: [this.registry] });
  readonly circuitState = new Gauge({ name: 'ferry_circuit_state', help: 'Circuit breaker per sink: 0 closed, 1 open, 2 half-open.', labelNames: ['pipeline', 'sink'], registers: [this.registry] });
  private readonly lagOf = new Map<string, () => ReadonlyArray<{ unit: string; value: number }> | undefined>();
  // Read at scrape time, not pushed by the status loop: that loop waits on
  // Redis, and a lag frozen while the queue does not answer hides exactly
  // the moment the agent falls behind.
  private readonly sourceLag: Gauge = new Gauge({
    name: 'ferry_source_lag',
    help: 'Source-specific lag (e.g. replication slot lag in bytes, files waiting).',
    labelNames: ['pipeline', 'unit'],
    registers: [this.registry],
    collect: () => {
      this.sourceLag.reset();
      for (const [pipeline, lag] of this.lagOf) for (const l of lag() ?? []) this.sourceLag.set({ pipeline, unit: l.unit }, l.value);
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'ferry_process_' });
  }

  sourceRead(pipeline: string, sourceType: string, n: number): void {
    this.received.inc({ pipeline, component_kind: 'source', component_id: sourceType }, n);
  }
  eventsQueued(pipeline: string, sourceType: string, n: number): void {
    this.sent.inc({ pipeline, component_kind: 'source', component_id: sourceType }, n);
  }
  recordsFiltered(pipeline: string, mapping: string, n = 1): void {
    this.discarded.inc({ pipeline, component_kind: 'mapping', component_id: mapping, intentional: 'true' }, n);
  }
  contractViolation(pipeline: string, code: string): void {
    this.violations.inc({ pipeline, code });
  }
  error(pipeline: string, kind: 'source' | 'sink' | 'mapping' | 'queue', id: string, errorType: string, stage: string): void {
    this.errors.inc({ pipeline, component_kind: kind, component_id: id, error_type: errorType, stage });
  }
  sinkReceived(pipeline: string, sink: string, n: number): void {
    this.received.inc({ pipeline, component_kind: 'sink', component_id: sink }, n);
  }
  sinkDelivered(pipeline: string, sink: string, n: number, seconds: number, queuedAtMs: number | undefined): void {
    this.sent.inc({ pipeline, component_kind: 'sink', component_id: sink }, n);
    this.sinkLatency.observe({ pipeline, sink }, seconds);
    if (queuedAtMs !== undefined) this.endToEnd.observe({ pipeline, sink }, Math.max(0, (Date.now() - queuedAtMs) / 1000));
  }
  deadLetter(pipeline: string, sink: string, n: number): void {
    this.deadLettered.inc({ pipeline, sink }, n);
  }
  /**
   * Where `ferry_source_lag` of `pipeline` comes from: called at every
   * scrape; undefined or empty (the source is not reading, or reports no
   * lag) leaves the pipeline out.
   */
  sourceLagFrom(pipeline: string, lag: () => ReadonlyArray<{ unit: string; value: number }> | undefined): void {
    this.lagOf.set(pipeline, lag);
  }
}
