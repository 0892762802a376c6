import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, readJsonLines, runFerry, startFerry, tempWorkspace, waitFor, type FerryProcess } from '../support/agent-process.js';
import { signatureValid } from '../support/chaos-webhook-server.js';
import { dropCsv, kundenRows } from '../support/legacy-csv.js';

/**
 * Issue 2's reference configuration, run exactly as written: the same text,
 * the same relative paths, the shared Redis on 6379 with prefix `ferry`, the
 * webhook at http://127.0.0.1:8080/events and its secret from HUB_SECRET.
 * Nothing is swapped in, so the prefix and the port are fixed: the test
 * owns port 8080 while it runs and checks that no live agent uses `ferry`.
 */

/** Verbatim from issue 2 ("Reference configuration (must work as written)"). */
const REFERENCE = `agent:
  id: demo-host
  dataDir: ./.ferry
queue:
  redis: "redis://127.0.0.1:6379"     # omit this line for the embedded default
  prefix: ferry
pipelines:
  - name: customers
    source:
      type: file-drop
      path: ./inbox
      format: { type: csv, delimiter: ";", header: true, encoding: windows-1252 }
      complete: { minAgeMs: 500 }
      archive: ./archive
      errors: ./errors
    mappings: [mappings/customers.yaml]
    sinks:
      - { name: hub, type: webhook, url: "http://127.0.0.1:8080/events", secret: "\${env:HUB_SECRET}" }
      - { name: audit, type: file, path: ./out/customers.jsonl }
    delivery:
      partitions: 4
      batch: { maxEvents: 500, maxWaitMs: 50 }
      retry: { attempts: 8, initialMs: 100, maxMs: 5000 }
`;

const PREFIX = 'ferry';
const HUB_SECRET = 'reference-hub-secret-7f3a';

interface Delivery {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

type Event = { id: string; subject: string; type: string; data: Record<string, string> };

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The receiver at the reference URL: records every request and accepts it. */
async function listenOn8080(deliveries: Delivery[]): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      deliveries.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error('port 8080 on 127.0.0.1 is taken: the reference configuration sends to http://127.0.0.1:8080/events as written, so this test needs that port. Find the holder with `ss -ltnp | grep :8080`, stop it, and run the test again.')
          : err,
      ),
    );
    server.listen(8080, '127.0.0.1', resolve);
  });
  return server;
}

/**
 * The reference prefix is shared by everything that runs the reference
 * configuration against 6379. With port 8080 held (only one such test at a
 * time), what is left under `ferry:` with no live agent is the residue of
 * an earlier run, and goes, so that the assertions below count only this run.
 */
async function claimReferencePrefix(redis: Redis): Promise<void> {
  for (const key of await redis.keys(`${PREFIX}:agent:*:status`)) {
    const status = JSON.parse((await redis.get(key)) ?? '{}') as { agentId?: string; pid?: number };
    if (status.pid !== undefined && processAlive(status.pid)) {
      throw new Error(`a live ferry agent (${status.agentId}, pid ${status.pid}) uses the Redis prefix "${PREFIX}" on 127.0.0.1:6379; the reference configuration would share its queues. Stop it and run the test again.`);
    }
  }
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What the receiver of docs/sinks/webhook.md computes: sha256 of the batch's event ids joined by "\n". */
function expectedIdempotencyKey(events: readonly { id: string }[]): string {
  return createHash('sha256').update(events.map((e) => e.id).join('\n')).digest('hex');
}

describe('the reference configuration of issue 2', () => {
  it('runs as written: a Windows-1252 drop reaches the signed webhook and the audit file, is archived, and SIGTERM exits 0', async () => {
    expect(readFileSync(join(REPO, 'test/fixtures/reference/ferry.yaml'), 'utf8'), 'the fixture other tests use drifted from the issue').toBe(REFERENCE);

    const deliveries: Delivery[] = [];
    const server = await listenOn8080(deliveries);
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const redis = new Redis(6379, '127.0.0.1');
    cleanups.push(() => void redis.disconnect());
    await claimReferencePrefix(redis);
    cleanups.push(async () => {
      const keys = await redis.keys(`${PREFIX}:*`);
      if (keys.length) await redis.del(...keys);
    });

    const dir = tempWorkspace('reference');
    writeFileSync(join(dir, 'ferry.yaml'), REFERENCE);
    mkdirSync(join(dir, 'mappings/contracts'), { recursive: true });
    copyFileSync(join(REPO, 'mappings/customers.yaml'), join(dir, 'mappings/customers.yaml'));
    copyFileSync(join(REPO, 'mappings/contracts/customer.v1.schema.json'), join(dir, 'mappings/contracts/customer.v1.schema.json'));
    mkdirSync(join(dir, 'inbox'));

    // As an operator starts it: from the config's folder, the secret only in the environment.
    const agent: FerryProcess = startFerry(['run', '--config', 'ferry.yaml'], { cwd: dir, env: { HUB_SECRET } });
    cleanups.push(async () => {
      if (agent.proc.exitCode === null && agent.proc.signalCode === null) await agent.kill();
    });
    await waitFor('the agent to run', () => agent.stderr().includes('ferry agent running') || agent.proc.exitCode !== null, 120_000);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();

    const goodRows = kundenRows(1_200, 300);
    dropCsv(join(dir, 'inbox/kunden_2024-03-01.csv'), [
      ...goodRows,
      'X1;Bäckerei;€uro-Shop Weiß;X1@Example.DE ;1234,50;31.01.2024;A',
      'X2;Gone;Away;g@example.de;1,00;01.02.2024;D', // filtered: not an event at all
      'X3;Bad;Date;b@example.de;1,00;31.02.2024;A', // a contract violation: dead-lettered
    ]);
    const good = goodRows.length + 1;

    const webhookEvents = (): Event[] => deliveries.flatMap((d) => JSON.parse(d.body.toString('utf8')) as Event[]);
    const out = join(dir, 'out/customers.jsonl');
    await waitFor(
      'every good row at the webhook and in ./out/customers.jsonl',
      () => (new Set(webhookEvents().map((e) => e.id)).size >= good && readJsonLines(out).length >= good) || agent.proc.exitCode !== null,
      120_000,
      100,
    );
    await waitFor('the file to move to ./archive', () => existsSync(join(dir, 'archive/kunden_2024-03-01.csv')) || agent.proc.exitCode !== null, 30_000);
    expect(agent.proc.exitCode, agent.stderr()).toBeNull();
    expect(readdirSync(join(dir, 'inbox'))).toEqual([]);

    const dlq = await runFerry(['dlq', 'list', '--config', 'ferry.yaml', '--json'], { cwd: dir, env: { HUB_SECRET } });
    expect(dlq.code, dlq.stderr).toBe(0);
    expect(dlq.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { location: string }).location)).toEqual(['inbox/kunden_2024-03-01.csv:1204']);

    expect(await agent.stop()).toBe(0);

    // Every request is a signed POST to /events whose Idempotency-Key is the receiver-computable batch key.
    expect(deliveries.length).toBeGreaterThan(0);
    for (const d of deliveries) {
      expect(d.method).toBe('POST');
      expect(d.url).toBe('/events');
      expect(d.headers['x-ferry-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(signatureValid(d.body, d.headers['x-ferry-signature'] as string, HUB_SECRET), 'X-Ferry-Signature must be the HMAC-SHA256 of the body with HUB_SECRET').toBe(true);
      const batch = JSON.parse(d.body.toString('utf8')) as Event[];
      expect(d.headers['idempotency-key']).toBe(expectedIdempotencyKey(batch));
      expect(d.headers['x-ferry-event-count']).toBe(String(batch.length));
    }

    const atHub = webhookEvents();
    const inAudit = readJsonLines<Event>(out);
    // A healthy receiver answered every request at once: no retry, so no duplicate either.
    expect(atHub.length).toBe(good);
    expect(inAudit.length).toBe(good);
    expect(new Set(inAudit.map((e) => e.id))).toEqual(new Set(atHub.map((e) => e.id)));
    const subjects = new Set(atHub.map((e) => e.subject));
    expect(subjects.has('X1')).toBe(true);
    expect(subjects.has('X2') || subjects.has('X3')).toBe(false);
    expect(subjects.size).toBe(301);

    // Windows-1252 decoded before parsing: ä, €, ß and ü come through as written.
    const x1 = atHub.find((e) => e.subject === 'X1')!;
    expect(x1).toMatchObject({ specversion: '1.0', type: 'customer.created', source: 'ferry://demo-host/customers' });
    expect(x1.data).toEqual({ id: 'X1', name: 'Bäckerei €uro-Shop Weiß', email: 'x1@example.de', balance: '1234.50', since: '2024-01-31', status: 'active', origin: 'legacy-erp' });
    expect(atHub.find((e) => e.subject === 'K1')!.data.name).toMatch(/^Jürgen Straße \d+$/);

    expect(agent.stderr(), 'the webhook secret must never be logged').not.toContain(HUB_SECRET);
  }, 300_000); // the waits (120 + 120 + 30 s), a CLI run and the drain
});
