import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { FerryError } from '../../errors/index.js';
import { loadMappings } from '../../mapping/load-mappings.js';
import type { Operation, SourceRecord } from '../../plugin/source.js';

export interface MappingTestOptions {
  /** The mapping file (positional). */
  args: string[];
  input: string;
  delimiter?: string;
  encoding?: string;
  /** The file, table or script name records come from; default: the input's file name. */
  origin?: string;
  /** The pipeline and agent the events are made for (their `id`, `source` and `ferrypipeline`); default: mapping-test. */
  pipeline?: string;
  agent?: string;
}

interface SampleRow {
  line: number;
  data: Record<string, unknown>;
  op?: Operation;
  before?: Record<string, unknown>;
  /** Columns the source did not send (a Postgres update's unchanged TOASTed values). */
  unchanged?: string[];
}

/**
 * `ferry mapping test MAPPING --input SAMPLE`: maps sample rows exactly as the
 * agent would and prints each event as a JSON line on stdout and each
 * violation on stderr with its row. Exit 0 when every row maps cleanly, 2 when
 * any has a violation (so CI can hold a mapping against its samples).
 */
export async function run(opts: MappingTestOptions): Promise<number> {
  const mappingFile = opts.args[0];
  if (!mappingFile) throw new FerryError('FERRY_USAGE', 'name the mapping file: ferry mapping test MAPPING --input SAMPLE');
  const set = await loadMappings([mappingFile], { pipeline: opts.pipeline ?? 'mapping-test', agentId: opts.agent ?? 'mapping-test', baseDir: process.cwd() });
  const input = path.resolve(opts.input);
  const [buffer, info] = await Promise.all([readFile(input), stat(input)]).catch((err: NodeJS.ErrnoException) => {
    throw new FerryError('FERRY_USAGE', `cannot read the sample ${opts.input} (${err.code ?? err.message})`, { where: opts.input });
  });
  const encoding = opts.encoding ?? 'utf-8';
  if (!iconv.encodingExists(encoding)) throw new FerryError('FERRY_USAGE', `unknown encoding "${encoding}"`, { fix: 'Pass an iconv-lite encoding name such as utf-8, windows-1252, latin1, cp850.' });
  const text = iconv.decode(buffer, encoding);
  const json = /\.jsonl?$/i.test(input);
  const rows = json ? jsonRows(text, opts.input) : csvRows(text, opts.delimiter ?? ',', opts.input);
  // A CSV sample is a dropped file: its rows get the change ids file-drop gives them (the content's
  // sha256 and the row's index), so with --pipeline and --agent the ids are the agent's own.
  const fileHash = json ? undefined : createHash('sha256').update(buffer).digest('hex');
  const { kind, name } = originOf(opts.origin ?? path.basename(input));
  const time = info.mtime.toISOString();

  let events = 0;
  let filtered = 0;
  let bad = 0;
  rows.forEach((row, i) => {
    const n = i + 1;
    const record: SourceRecord = {
      origin: { kind, name },
      op: row.op ?? 'c',
      data: row.data,
      ...(row.before ? { before: row.before } : {}),
      ...(row.unchanged ? { unchanged: row.unchanged } : {}),
      changeId: fileHash === undefined ? `${name}:${row.line}` : `${fileHash}:${i}`,
      time,
      location: `${name} line ${row.line}`,
      position: `${name}#${row.line}`,
    };
    for (const outcome of set.apply(record)) {
      if (outcome.kind === 'event') {
        events++;
        process.stdout.write(`${JSON.stringify(outcome.event)}\n`);
      } else if (outcome.kind === 'filtered') {
        filtered++;
        process.stderr.write(`row ${n} (line ${row.line}): filtered out by ${outcome.mapping}\n`);
      } else {
        bad++;
        for (const v of outcome.violations) process.stderr.write(`row ${n} (line ${row.line}): ${outcome.code} ${v.field}: ${v.message}\n`);
      }
    }
  });
  process.stderr.write(`${rows.length} rows: ${events} events, ${filtered} filtered, ${bad} with violations\n`);
  return bad > 0 ? 2 : 0;
}

/** `table:public.kunden`, `script:legacy-orders`, `file:kunden_1.csv`, or a bare name: a file unless it looks like schema.table. */
function originOf(text: string): SourceRecord['origin'] {
  const m = /^(table|file|script):(.+)$/.exec(text);
  if (m) return { kind: m[1] as SourceRecord['origin']['kind'], name: m[2]! };
  return /\.(csv|txt|tsv|jsonl?|xml|dat)$/i.test(text) || !text.includes('.') ? { kind: 'file', name: text } : { kind: 'table', name: text };
}

function csvRows(text: string, delimiter: string, file: string): SampleRow[] {
  try {
    const parsed = parse(text, { columns: true, delimiter, bom: true, skip_empty_lines: true, info: true }) as { record: Record<string, string>; info: { lines: number } }[];
    return parsed.map((r) => ({ line: r.info.lines, data: r.record }));
  } catch (err) {
    throw new FerryError('FERRY_USAGE', `the sample is not CSV with delimiter "${delimiter}" and a header row: ${(err as Error).message}`, { where: file, fix: 'Pass --delimiter and --encoding to match the file.' });
  }
}

/**
 * JSON lines, or one JSON array. A row is either the record's fields, or a
 * record with `data` (and optionally `op`, `before` and `unchanged`) to try
 * updates and deletes.
 */
function jsonRows(text: string, file: string): SampleRow[] {
  const trimmed = text.trim();
  let items: { line: number; value: unknown }[];
  try {
    items = trimmed.startsWith('[')
      ? (JSON.parse(trimmed) as unknown[]).map((value, i) => ({ line: i + 1, value }))
      : text.split('\n').flatMap((l, i) => (l.trim() === '' ? [] : [{ line: i + 1, value: JSON.parse(l) as unknown }]));
  } catch (err) {
    throw new FerryError('FERRY_USAGE', `the sample is not JSON lines or a JSON array: ${(err as Error).message}`, { where: file });
  }
  return items.map(({ line, value }) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FerryError('FERRY_USAGE', `row at line ${line} is not a JSON object`, { where: `${file}:${line}` });
    const v = value as Record<string, unknown>;
    if (v.data !== null && typeof v.data === 'object' && (v.op === undefined || typeof v.op === 'string')) {
      if (v.unchanged !== undefined && (!Array.isArray(v.unchanged) || v.unchanged.some((c) => typeof c !== 'string'))) {
        throw new FerryError('FERRY_USAGE', `row at line ${line}: unchanged must be a list of column names`, { where: `${file}:${line}` });
      }
      const unchanged = v.unchanged as string[] | undefined;
      return { line, data: v.data as Record<string, unknown>, op: v.op as Operation | undefined, before: v.before as Record<string, unknown> | undefined, ...(unchanged ? { unchanged } : {}) };
    }
    return { line, data: v };
  });
}
