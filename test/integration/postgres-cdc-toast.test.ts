import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, tempWorkspace, uniquePrefix, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { dropDatabaseAndSlots, pgQuery } from '../support/postgres.js';

/**
 * An update that leaves a TOASTed jsonb column alone, end to end with the
 * real binary: under REPLICA IDENTITY DEFAULT Postgres does not send the big
 * value, and the contract types the field as a required object. The event
 * reaches the file sink without the field and with `ferryunchanged` naming
 * it, instead of dead-lettering every such update; a change that breaks the
 * contract for another reason keeps the list in its dead-letter entry, so
 * `ferry dlq replay` makes the same event the stream would have.
 */

const PIPELINE = 'docs';
const ADMIN = 'postgres://postgres@127.0.0.1:5432/postgres';
const DB = `ferry_pgtoast_${randomBytes(4).toString('hex')}`;
const URL = `postgres://postgres@127.0.0.1:5432/${DB}`;
const running: FerryProcess[] = [];
const prefix = uniquePrefix('pgtoast');

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await dropDatabaseAndSlots(ADMIN, DB);
  await deleteRedisPrefix(prefix);
});

type DocEvent = { id: string; type: string; subject: string; ferryop: string; ferryposition: string; ferrytxid?: string; ferryunchanged?: string; data: Record<string, unknown> };
type DeadLetter = { code: string; reason: string; violations: { field: string; message: string }[]; record: { op: string; data: Record<string, unknown>; unchanged?: string[]; changeId: string } };

/** Random bytes as base64 inside a JSON object: pglz cannot shrink it, so Postgres stores it out of line. */
const bigPayload = (tag: string) => JSON.stringify({ tag, blob: randomBytes(6000).toString('base64') });

/** The contract: payload a required object, status one of `statuses`. */
function contractFor(statuses: string[]): string {
  return JSON.stringify({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    additionalProperties: false,
    required: ['id', 'status', 'payload'],
    properties: {
      id: { type: 'integer' },
      status: { enum: statuses },
      payload: { type: 'object', required: ['tag', 'blob'] },
      note: { type: ['string', 'null'] },
    },
  });
}

function workspace(): { config: string; contract: string; out: string } {
  const dir = tempWorkspace('pg-toast');
  const contract = writeFile(join(dir, 'mappings/contracts/doc.v1.schema.json'), contractFor(['new', 'shipped']));
  writeFile(
    join(dir, 'mappings/docs.yaml'),
    `entity: doc
contract: contracts/doc.v1.schema.json
match: { table: public.docs }
key: [id]
fields:
  id:      { from: id, type: integer, required: true }
  status:  { from: status }
  payload: { from: payload, type: json, required: true }
  note:    { from: note }
`,
  );
  const config = writeFile(
    join(dir, 'ferry.yaml'),
    `agent: { id: pg-toast, dataDir: ./data, logLevel: warn }
queue: { redis: "redis://127.0.0.1:6379", prefix: ${prefix} }
pipelines:
  - name: ${PIPELINE}
    source:
      type: postgres-cdc
      connection: "${URL}"
      publication: ${DB}_pub
      slot: ${DB}_slot
      tables: [public.docs]
      snapshot: initial
      heartbeatMs: 1000
    mappings: [mappings/docs.yaml]
    sinks:
      - { name: audit, type: file, path: ./out/events.jsonl }
    delivery: { partitions: 2, batch: { maxEvents: 100, maxWaitMs: 20 } }
`,
  );
  return { config, contract, out: join(dir, 'out/events.jsonl') };
}

const eventsAt = (out: string) => readJsonLines<DocEvent>(out);

async function waitForEvents(agent: FerryProcess, out: string, n: number, what: string): Promise<DocEvent[]> {
  await waitFor(what, () => eventsAt(out).length >= n || agent.proc.exitCode !== null, 30_000, 100);
  expect(agent.proc.exitCode, agent.stderr()).toBeNull();
  return eventsAt(out);
}

async function deadLetters(config: string): Promise<{ count: number; ids: string[] }> {
  const list = await runFerry(['dlq', 'list', '--config', config]);
  expect(list.code, list.stderr).toBe(0);
  const m = /(\d+) dead-letter entr/.exec(list.stderr);
  expect(m, list.stderr).not.toBeNull();
  return { count: Number(m![1]), ids: list.stdout.trim() === '' ? [] : list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]!) };
}

describe('postgres-cdc: unchanged TOASTed columns through ferry run', () => {
  it('delivers an update that leaves a big jsonb column alone without the field and with ferryunchanged, and keeps the list through the dead-letter queue', async () => {
    await pgQuery(ADMIN, `CREATE DATABASE ${DB}`);
    await pgQuery(URL, `CREATE TABLE public.docs (id integer PRIMARY KEY, status text NOT NULL, payload jsonb NOT NULL, note text)`);
    const seed = bigPayload('seed');
    await pgQuery(URL, `INSERT INTO public.docs VALUES (1, 'new', $1, NULL)`, [seed]);
    // The precondition the test stands on: the value really lives in the TOAST table, not in the row.
    const [stored] = await pgQuery(
      URL,
      `SELECT pg_column_size(payload) AS size, (SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'public.docs'::regclass) AS toast FROM public.docs WHERE id = 1`,
    );
    expect(Number(stored!.size)).toBeGreaterThan(2048);
    expect(Number(stored!.toast)).toBeGreaterThan(0);
    expect((await pgQuery(URL, `SELECT relreplident FROM pg_class WHERE oid = 'public.docs'::regclass`))[0]).toEqual({ relreplident: 'd' });

    const ws = workspace();
    const agent = startAgent(ws.config);
    running.push(agent);
    const [snap] = await waitForEvents(agent, ws.out, 1, 'the seed row from the snapshot');
    expect(snap).toMatchObject({ type: 'doc.snapshot', subject: '1', data: { id: 1, status: 'new', payload: JSON.parse(seed) as unknown, note: null } });

    const second = bigPayload('second');
    const replaced = bigPayload('replaced');
    await pgQuery(URL, `INSERT INTO public.docs VALUES (2, 'new', $1, NULL)`, [second]);
    await pgQuery(URL, `UPDATE public.docs SET status = 'shipped', note = 'left the warehouse' WHERE id = 1`);
    await pgQuery(URL, `UPDATE public.docs SET payload = $1 WHERE id = 2`, [replaced]);
    const events = await waitForEvents(agent, ws.out, 4, 'the insert and both updates');
    // Two partitions: each subject's events keep their order, the two subjects interleave freely.
    const of = (subject: string) => events.filter((e) => e.subject === subject);
    expect(of('1').map((e) => e.type)).toEqual(['doc.snapshot', 'doc.updated']);
    expect(of('2').map((e) => e.type)).toEqual(['doc.created', 'doc.updated']);
    const [created, rewritten] = of('2') as [DocEvent, DocEvent];
    const untouched = of('1')[1]!;
    expect(created.data.payload).toEqual(JSON.parse(second));
    expect(created.ferryunchanged).toBeUndefined();
    // The update that left payload alone: no field, no placeholder, and the attribute that says so.
    expect(untouched.data).toEqual({ id: 1, status: 'shipped', note: 'left the warehouse' });
    expect(untouched.ferryunchanged).toBe('payload');
    expect(JSON.stringify(untouched)).not.toContain('__ferry_unavailable__');
    // An update that changes the big value sends it.
    expect(rewritten.data).toEqual({ id: 2, status: 'new', payload: JSON.parse(replaced), note: null });
    expect(rewritten.ferryunchanged).toBeUndefined();
    expect(await deadLetters(ws.config)).toEqual({ count: 0, ids: [] });

    // A status the contract does not know, payload again unchanged: dead-lettered for the status alone.
    await pgQuery(URL, `UPDATE public.docs SET status = 'lost' WHERE id = 2`);
    const dlq = await waitFor('the entry in the mapping dead-letter queue', async () => {
      const d = await deadLetters(ws.config);
      return d.count === 1 ? d : undefined;
    }, 20_000, 300);
    const shown = await runFerry(['dlq', 'show', dlq.ids[0]!, '--config', ws.config]);
    expect(shown.code, shown.stderr).toBe(0);
    const entry = JSON.parse(shown.stdout) as DeadLetter;
    expect(entry.code).toBe('FERRY_CONTRACT_VIOLATION');
    expect(entry.violations).toEqual([{ field: 'status', message: '"lost" is not one of "new", "shipped"' }]);
    expect(entry.record).toMatchObject({ op: 'u', data: { id: 2, status: 'lost', note: null }, unchanged: ['payload'] });
    expect('payload' in entry.record.data).toBe(false);

    // The contract learns the status; the replay maps the kept record as the stream would have.
    writeFile(ws.contract, contractFor(['new', 'shipped', 'lost']));
    const replay = await runFerry(['dlq', 'replay', '--config', ws.config]);
    expect(replay.stderr).toContain('replayed 1 entry');
    expect(replay.code, replay.stderr).toBe(0);
    const all = await waitForEvents(agent, ws.out, 5, 'the replayed update');
    const lost = all.filter((e) => e.subject === '2')[2]!;
    expect(lost).toMatchObject({ type: 'doc.updated', subject: '2', ferryop: 'u', ferryunchanged: 'payload', data: { id: 2, status: 'lost', note: null } });
    expect('payload' in lost.data).toBe(false);
    expect(await deadLetters(ws.config)).toEqual({ count: 0, ids: [] });
    expect(await agent.stop()).toBe(0);
    expect(eventsAt(ws.out)).toHaveLength(5);
  }, 90_000);
});
