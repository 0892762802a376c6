import { mkdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import iconv from 'iconv-lite';
import type { AgentConfig, DeliveryConfig } from '../../agent/config/schema.js';
import { REPO, tempWorkspace, uniquePrefix, writeFile } from './agent-process.js';

export const KUNDEN_HEADER = 'KUNDE_NR;VORNAME;NACHNAME;EMAIL;SALDO;KUNDE_SEIT;STATUS';

/**
 * A legacy customer export as the reference mapping expects it:
 * semicolon-delimited, Windows-1252, CRLF, dd.MM.yyyy dates. Row i has key
 * `K{i % keys}` and balance `i,00`, so the order of one key's events at the
 * sink shows whether per-key order held.
 */
export function kundenRows(rows: number, keys: number): string[] {
  const out: string[] = [];
  for (let i = 1; i <= rows; i++) {
    const day = String((i % 28) + 1).padStart(2, '0');
    out.push(`K${i % keys};Jürgen;Straße ${i};k${i}@example.de;${i},00;${day}.01.2024;${i % 2 ? 'A' : 'I'}`);
  }
  return out;
}

/**
 * Events of `kundenRows` rows that arrived after a later row of the same key:
 * the balance is the row number, so one key's balances must rise in the order
 * they reach the sink.
 */
export function perKeyOrderViolations(events: readonly { subject: string; data: Record<string, string> }[]): number {
  const last = new Map<string, number>();
  let bad = 0;
  for (const e of events) {
    const n = Number(e.data.balance);
    if ((last.get(e.subject) ?? 0) > n) bad++;
    last.set(e.subject, n);
  }
  return bad;
}

/** Writes the file under a temporary name and renames it into place, as a careful legacy job does. */
export function dropCsv(path: string, lines: readonly string[], header = KUNDEN_HEADER): void {
  // Outside the watched folder: the source must only ever see the finished file.
  const tmp = join(tmpdir(), `${process.pid}-${Date.now()}-${basename(path)}`);
  writeFile(tmp, kundenCsv(lines, header));
  mkdirSync(dirname(path), { recursive: true });
  renameSync(tmp, path);
}

/** A `sinks:` entry: the sink's name and type, and its own fields. */
export type SinkEntry = { name: string; type: string } & Record<string, unknown>;

/** The file sink most tests read back: `./out/customers.jsonl` in the workspace. */
export const AUDIT_SINK: SinkEntry = { name: 'audit', type: 'file', path: './out/customers.jsonl' };

export interface CustomersPipelineOptions {
  /** `agent.id`. */
  id: string;
  logLevel: AgentConfig['logLevel'];
  /** `agent.admin`; none: no admin server. */
  admin?: { listen: string; token?: string };
  /**
   * Where the queues live: under `prefix` on the shared Redis on 6379 (or on
   * `redis`), or `'embedded'`: no `queue:` section, so the agent starts its
   * own redis-server.
   */
  queue: { prefix: string; redis?: string } | 'embedded';
  /** How long a dropped file must be unchanged before it is read. */
  minAgeMs: number;
  /** Move files that cannot be read to `./errors`; otherwise they stay in the inbox. */
  errors?: boolean;
  /** The folder of `customers.yaml` and its contract; default: the repository's `mappings/`. */
  mappingDir?: string;
  /** Default: the audit file sink alone. */
  sinks?: readonly SinkEntry[];
  /** The pipeline's `delivery:`; what is left out takes the config's default. */
  delivery?: Partial<DeliveryConfig>;
}

/**
 * Writes `dir/ferry.yaml` for the pipeline `customers`: a drop folder
 * `./inbox` (created here) of legacy customer exports, archived to
 * `./archive` once read, mapped by `customers.yaml`. Returns the config's path.
 */
export function customersPipelineConfig(dir: string, opts: CustomersPipelineOptions): string {
  // Structured values go in as JSON, which YAML reads as flow mappings.
  const admin = opts.admin ? `  admin: ${JSON.stringify(opts.admin)}\n` : '';
  const queue = opts.queue === 'embedded' ? '' : `queue:\n  redis: ${opts.queue.redis ?? 'redis://127.0.0.1:6379'}\n  prefix: ${opts.queue.prefix}\n`;
  const errors = opts.errors ? '      errors: ./errors\n' : '';
  const sinks = (opts.sinks ?? [AUDIT_SINK]).map((sink) => `      - ${JSON.stringify(sink)}\n`).join('');
  const delivery = opts.delivery ? `    delivery: ${JSON.stringify(opts.delivery)}\n` : '';
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent:
  id: ${opts.id}
  dataDir: ./data
  logLevel: ${opts.logLevel}
${admin}${queue}pipelines:
  - name: customers
    source:
      type: file-drop
      path: ./inbox
      format: { type: csv, delimiter: ";", header: true, encoding: windows-1252 }
      complete: { minAgeMs: ${opts.minAgeMs} }
      archive: ./archive
${errors}    mappings: [${join(opts.mappingDir ?? join(REPO, 'mappings'), 'customers.yaml')}]
    sinks:
${sinks}${delivery}`,
  );
  mkdirSync(join(dir, 'inbox'), { recursive: true });
  return config;
}

/** A temp folder holding a customers pipeline (`customersPipelineConfig`) with its queues under a fresh prefix on the shared Redis. */
export interface CustomersWorkspace {
  dir: string;
  config: string;
  inbox: string;
  archive: string;
  out: string;
  prefix: string;
}

/**
 * The customers pipeline of the file-drop end-to-end tests: agent id
 * `test-NAME`, warn logs, a 300 ms quiet period, unreadable files moved to
 * `./errors`, four partitions of 500-event batches with eight attempts; any
 * of it overridden by `opts` (an undefined value keeps the default).
 */
export function customersWorkspace(name: string, opts: Partial<Omit<CustomersPipelineOptions, 'queue'>> = {}): CustomersWorkspace {
  const dir = tempWorkspace(name);
  const prefix = uniquePrefix(name);
  const defaults: CustomersPipelineOptions = {
    id: `test-${name}`,
    logLevel: 'warn',
    queue: { prefix },
    minAgeMs: 300,
    errors: true,
    delivery: { partitions: 4, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 8, initialMs: 100, maxMs: 5000 } },
  };
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const config = customersPipelineConfig(dir, { ...defaults, ...given });
  return { dir, config, inbox: join(dir, 'inbox'), archive: join(dir, 'archive'), out: join(dir, 'out/customers.jsonl'), prefix };
}

/** The bytes `dropCsv` writes for `lines`: a legacy export, Windows-1252, CRLF, a line break after the last row. */
export function kundenCsv(lines: readonly string[], header = KUNDEN_HEADER): Buffer {
  return iconv.encode([header, ...lines, ''].join('\r\n'), 'win1252');
}
