import { existsSync, readdirSync, readFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, countLines, deleteRedisPrefix, readJsonLines, runFerry, startAgent, tempWorkspace, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { customersWorkspace, dropCsv, kundenRows, perKeyOrderViolations } from '../support/legacy-csv.js';
import { start as startChaos } from '../support/chaos-webhook-server.js';

/**
 * The backbone end to end, with the real binary: a legacy CSV dropped in a
 * folder → file-drop → customers mapping and contract → batched, partitioned
 * BullMQ queues on the real Redis → file and webhook sinks.
 */

const running: FerryProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill();
});


type Event = { id: string; subject: string; type: string; data: Record<string, string> };

function distinctIds(events: Event[]): number {
  return new Set(events.map((e) => e.id)).size;
}

describe('csv drop → queue → sinks', () => {
  it('delivers a 100,000-row file to the file sink: every row exactly once, per-key order kept', async () => {
    const ws = customersWorkspace('100k');
    dropCsv(join(ws.inbox, 'kunden_big.csv'), kundenRows(100_000, 1000));
    const agent = startAgent(ws.config);
    running.push(agent);
    // Counted, not parsed, while waiting: parsing 100,000 lines four times a second would slow the agent it waits for.
    await waitFor('100,000 events at the file sink', () => countLines(ws.out) >= 100_000 || agent.proc.exitCode !== null, 240_000, 250);
    await waitFor('the file to be archived', () => existsSync(join(ws.dir, 'archive/kunden_big.csv')), 30_000);
    expect(await agent.stop()).toBe(0);
    const events = readJsonLines<Event>(ws.out);
    expect(events.length).toBe(100_000);
    expect(distinctIds(events)).toBe(100_000);
    expect(perKeyOrderViolations(events)).toBe(0);
    expect(events[0]).toMatchObject({ specversion: '1.0', type: 'customer.created', dataschema: 'urn:ferry:contract:customer:v1' });
    await deleteRedisPrefix(ws.prefix);
  }, 300_000); // the waits (240 + 30 s) and the drain

  it('loses nothing when killed with SIGKILL in the middle of a 200,000-row file, and duplicates keep their ids', async () => {
    const ws = customersWorkspace('sigkill');
    dropCsv(join(ws.inbox, 'kunden_huge.csv'), kundenRows(200_000, 5000));
    let agent = startAgent(ws.config);
    running.push(agent);
    // Killed at a moment that is mid-file by construction: 40,000+ rows of it durable in the queue, not all of it
    // (the reader runs ahead of delivery, so counting the sink alone could let the file finish first).
    const redis = new Redis(6379, '127.0.0.1');
    type Stored = { file: string; records: number; done: boolean } | null;
    const stored = async (): Promise<Stored> => JSON.parse((await redis.get(`${ws.prefix}:pipeline:customers:checkpoint`)) ?? 'null') as Stored;
    const atKill = await waitFor('40,000 rows of the file durable, the file not finished', async () => {
      const s = await stored();
      return s !== null && s.file === 'kunden_huge.csv' && !s.done && s.records >= 40_000 ? s : undefined;
    }, 120_000, 10);
    await agent.kill();
    const before = readJsonLines<Event>(ws.out).length;
    expect(before).toBeLessThan(200_000);
    const durable = (await stored())!;
    expect(durable.done, 'the kill must land before the file is finished').toBe(false);
    expect(atKill.records).toBeLessThan(200_000);
    redis.disconnect();
    expect(existsSync(join(ws.inbox, 'kunden_huge.csv'))).toBe(true);
    agent = startAgent(ws.config);
    running.push(agent);
    // Parsed only once there are enough lines: parsing 200,000 lines four times a second would slow the agent it waits for.
    await waitFor('every row at the sink after the restart', () => (countLines(ws.out) >= 200_000 && distinctIds(readJsonLines<Event>(ws.out)) >= 200_000) || agent.proc.exitCode !== null, 240_000, 250);
    await waitFor('the file to be archived', () => existsSync(join(ws.dir, 'archive/kunden_huge.csv')), 30_000);
    expect(await agent.stop()).toBe(0);
    const events = readJsonLines<Event>(ws.out);
    expect(distinctIds(events)).toBe(200_000);
    // A duplicate is the same event again: same id, same content.
    const byId = new Map<string, string>();
    for (const e of events) {
      const s = JSON.stringify(e);
      if (byId.has(e.id)) expect(byId.get(e.id)).toBe(s);
      byId.set(e.id, s);
    }
    // Rows up to the stored position were in the queue before the kill: one comes again only if its batch was
    // being written when the agent died (a batch per partition at most). A restart that ignored the stored
    // position would send every one of them again (row i has balance i).
    const once = new Set<string>();
    let resentDurable = 0;
    for (const e of events) {
      if (once.has(e.id) && Number(e.data.balance) <= durable.records) resentDurable++;
      once.add(e.id);
    }
    expect(resentDurable).toBeLessThanOrEqual(4 * 500);
    await deleteRedisPrefix(ws.prefix);
  }, 420_000); // the waits (120 + 240 + 30 s) and the drain

  it('delivers every event to a webhook that fails 30% with 500, answers 429 Retry-After and times out: all signed, repeats dropped by Idempotency-Key', async () => {
    const secret = 'chaos-secret-not-in-logs';
    const server = await startChaos({ secret, fail500: 0.3, fail429: 0.1, timeoutRate: 0.05, slowMs: 1500, seed: 42 });
    try {
      const ws = customersWorkspace('webhook', {
        sinks: [{ name: 'hub', type: 'webhook', url: server.url, secret: '${env:HUB_SECRET}', timeoutMs: 1000 }],
        delivery: { partitions: 4, batch: { maxEvents: 500, maxWaitMs: 50 }, retry: { attempts: 50, initialMs: 50, maxMs: 500 } },
      });
      dropCsv(join(ws.inbox, 'kunden_web.csv'), kundenRows(5_000, 200));
      const agent = startAgent(ws.config, { env: { HUB_SECRET: secret } });
      running.push(agent);
      // Stopping before every abandoned batch has come back would leave its redelivery untested.
      const abandonedBatchesResent = () => [...server.abandonedKeys].every((key) => server.duplicateKeys.has(key));
      await waitFor('5,000 distinct events at the webhook and every timed-out batch sent again', () => (server.received.size >= 5_000 && abandonedBatchesResent()) || agent.proc.exitCode !== null, 150_000, 250);
      expect(await agent.stop()).toBe(0);
      expect(server.received.size).toBe(5_000);
      expect(server.badRequests).toBe(0);
      // Every delivery was signed, and every signature verified.
      expect(server.badSignatures).toBe(0);
      expect(server.deliveries).toBeGreaterThan(0);
      expect(server.goodSignatures).toBe(server.deliveries);
      // The faults really happened: the run proves nothing otherwise.
      expect(server.statuses[500]).toBeGreaterThan(0);
      expect(server.statuses[429]).toBeGreaterThan(0);
      expect(server.abandoned).toBeGreaterThan(0);
      // Duplicates are certain here, not merely possible: the server accepted each
      // timed-out batch before its slow answer, so the sink's retry repeats it. Each
      // repeat carried the same Idempotency-Key and was dropped by it, and no event
      // reached the server's store twice under another key.
      expect([...server.abandonedKeys].filter((key) => !server.duplicateKeys.has(key))).toEqual([]);
      expect(server.duplicateEvents).toBe(0);
      expect(agent.stderr()).not.toContain(secret);
      const dlq = await runFerry(['dlq', 'list', '--config', ws.config, '--json']);
      expect(dlq.stdout.trim()).toBe('');
      await deleteRedisPrefix(ws.prefix);
    } finally {
      await server.close();
    }
  }, 240_000); // the 150 s wait, the drain and the CLI call

  it('dead-letters rows that break the contract with row number and reason; replay after fixing the mapping delivers them', async () => {
    const mappingDir = tempWorkspace('mapping');
    mkdirSync(join(mappingDir, 'contracts'));
    copyFileSync(join(REPO, 'mappings/contracts/customer.v1.schema.json'), join(mappingDir, 'contracts/customer.v1.schema.json'));
    const original = readFileSync(join(REPO, 'mappings/customers.yaml'), 'utf8');
    writeFile(join(mappingDir, 'customers.yaml'), original);
    const ws = customersWorkspace('violations', { mappingDir });
    dropCsv(join(ws.inbox, 'kunden_bad.csv'), [
      '1;Jürgen;Straßer;j@example.de;1234,50;31.01.2024;A',
      '2;Bad;Date;b@example.de;1,00;31.02.2024;A',
      '3;Unknown;Code;u@example.de;1,00;01.02.2024;P',
      ';Missing;Key;m@example.de;1,00;01.02.2024;A',
      '5;Café;€uro Weiß;c@example.de;5,00;01.02.2024;I',
      '6;Gone;Away;g@example.de;1,00;01.02.2024;D',
    ]);
    const agent = startAgent(ws.config);
    running.push(agent);
    await waitFor('the good rows at the sink', () => readJsonLines(ws.out).length >= 2 || agent.proc.exitCode !== null, 120_000);
    await waitFor('the file to be archived', () => existsSync(join(ws.dir, 'archive/kunden_bad.csv')), 30_000);

    const good = readJsonLines<Event>(ws.out);
    expect(good.map((e) => e.subject).sort()).toEqual(['1', '5']);
    expect(good.find((e) => e.subject === '1')!.data).toMatchObject({ name: 'Jürgen Straßer', balance: '1234.50', since: '2024-01-31', status: 'active', origin: 'legacy-erp' });
    expect(good.find((e) => e.subject === '5')!.data.name).toBe('Café €uro Weiß');

    const list = await runFerry(['dlq', 'list', '--config', ws.config, '--sink', 'mapping', '--json']);
    expect(list.code).toBe(0);
    const entries = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; location: string; reason: string; code: string });
    expect(entries).toHaveLength(3);
    const byLine = (line: number) => entries.find((e) => e.location.endsWith(`:${line}`))!;
    expect(byLine(3).reason).toMatch(/31\.02\.2024/);
    expect(byLine(4).reason).toMatch(/status/);
    expect(byLine(5).reason).toMatch(/id/);
    for (const e of entries) expect(e.code).toBe('FERRY_CONTRACT_VIOLATION');

    const shown = await runFerry(['dlq', 'show', byLine(4).id, '--config', ws.config]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ record: { data: { STATUS: 'P' } } });

    // Fix the mapping for the unknown code; the other two are bad data and stay.
    writeFile(join(mappingDir, 'customers.yaml'), original.replace('{ A: active, I: inactive }', '{ A: active, I: inactive, P: inactive }'));
    const replay = await runFerry(['dlq', 'replay', '--config', ws.config]);
    expect(replay.stderr).toMatch(/replayed 1 entry; 2 still fail/);
    expect(replay.code).toBe(1);
    await waitFor('the replayed row at the sink', () => readJsonLines<Event>(ws.out).some((e) => e.subject === '3'), 60_000);
    const after = await runFerry(['dlq', 'list', '--config', ws.config, '--json']);
    expect(after.stdout.trim().split('\n')).toHaveLength(2);

    const purge = await runFerry(['dlq', 'purge', '--config', ws.config]);
    expect(purge.code).toBe(2);
    expect((await runFerry(['dlq', 'purge', '--config', ws.config, '--yes'])).code).toBe(0);
    expect((await runFerry(['dlq', 'list', '--config', ws.config, '--json'])).stdout.trim()).toBe('');

    const status = await runFerry(['status', '--config', ws.config, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).pipelines[0]).toMatchObject({ name: 'customers', agents: [expect.objectContaining({ agentId: 'test-violations' })] });
    expect(await agent.stop()).toBe(0);
    expect(readdirSync(join(ws.dir, 'archive'))).toContain('kunden_bad.csv');
    await deleteRedisPrefix(ws.prefix);
  }, 300_000); // the waits (120 + 30 + 60 s) and nine CLI runs
});
