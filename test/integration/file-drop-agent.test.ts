import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, countLines, deleteRedisPrefix, readJsonLines, runFerry, startAgent, tempWorkspace, waitFor, writeFile, type FerryProcess } from '../support/agent-process.js';
import { customersWorkspace, dropCsv, type CustomersWorkspace, kundenCsv, kundenRows } from '../support/legacy-csv.js';

/**
 * file-drop promises (docs/sources/file-drop.md) held by the real agent,
 * `ferry run` from dist/, with the customers mapping and its contract, the
 * shared Redis and a file sink: what file-drop.source.test.ts shows for the
 * source alone, here through queue, mapping, sink and `ferry dlq`.
 */

const running: FerryProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null) await p.kill();
});


function agentFor(ws: CustomersWorkspace): FerryProcess {
  const agent = startAgent(ws.config);
  running.push(agent);
  return agent;
}

type Event = { id: string; subject: string; time: string; ferryposition: string; data: Record<string, string | null> };
type LogLine = { time: string; level: number; msg: string; file?: string; hash?: string };

/** The agent's JSON log lines (stderr). */
function logLines(agent: FerryProcess): LogLine[] {
  return agent.stderr().split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The id the stream gives a record: SHA-256 of `pipeline \0 entity \0 changeId`,
 * its first 16 bytes laid out as a UUID v8 (agent/event/cloud-event.ts).
 * Written out here rather than imported, and checked against the ids of rows
 * the stream delivered itself before it is trusted for replayed ones.
 */
function streamEventId(pipeline: string, entity: string, changeId: string): string {
  const h = createHash('sha256').update(`${pipeline}\0${entity}\0${changeId}`, 'utf8').digest().subarray(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function dlqEntries(ws: CustomersWorkspace): Promise<Array<{ id: string; code: string; location: string; reason: string }>> {
  const list = await runFerry(['dlq', 'list', '--config', ws.config, '--sink', 'mapping', '--json']);
  expect(list.code, list.stderr).toBe(0);
  return list.stdout.trim() === '' ? [] : list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; code: string; location: string; reason: string });
}

describe('file-drop through the agent', () => {
  it('reads a file written in place in pieces only after it went quiet for minAgeMs: no event while it grows, every row once after', async () => {
    // The agent runs in its own process, but this test's writes may stall on a loaded machine: a quiet period well
    // above the pause between writes leaves room for that, and the guards below report a stall that still exceeds
    // it instead of blaming the agent.
    const minAgeMs = 3000;
    const pauseMs = 400;
    const ws = customersWorkspace('growing', { minAgeMs, logLevel: 'info' });
    const agent = agentFor(ws);
    // A row at the sink first proves the agent watches the folder, so an empty sink while the file grows means something.
    dropCsv(join(ws.inbox, 'kunden_warm.csv'), ['W1;Warm;Up;w@example.de;0,00;01.01.2024;A']);
    await waitFor('the warm-up row at the sink', () => countLines(ws.out) >= 1 || agent.proc.exitCode !== null, 120_000);
    expect(countLines(ws.out)).toBe(1);

    const rows = kundenRows(600, 50);
    const bytes = kundenCsv(rows);
    const file = join(ws.inbox, 'kunden_growing.csv');
    // Cut at even byte offsets, not at line ends: a read between two writes would meet half a row.
    const pieces = 12;
    const firstWrite = Date.now();
    let lastWrite = firstWrite;
    for (let p = 0; p < pieces; p++) {
      // Taken before the write: the agent cannot see this size any earlier.
      const now = Date.now();
      expect(now - lastWrite, 'the test itself stalled longer than minAgeMs between two writes').toBeLessThan(minAgeMs);
      lastWrite = now;
      appendFileSync(file, bytes.subarray(Math.floor((bytes.length * p) / pieces), Math.floor((bytes.length * (p + 1)) / pieces)));
      await sleep(pauseMs);
      // Until lastWrite + minAgeMs the file has not been quiet for minAgeMs, so no event of it may be at the sink by now.
      expect(Date.now() - lastWrite, 'the test itself stalled longer than minAgeMs after a write').toBeLessThan(minAgeMs);
      expect(countLines(ws.out), `an event reached the sink while the file was still growing (after write ${p + 1} of ${pieces})`).toBe(1);
    }
    expect(lastWrite - firstWrite, 'the file must grow for longer than the quiet period').toBeGreaterThan(minAgeMs);
    expect(readFileSync(file)).toEqual(bytes);

    await waitFor('the 600 rows at the sink', () => countLines(ws.out) >= 601 || agent.proc.exitCode !== null, 60_000);
    await waitFor('the file to be archived', () => existsSync(join(ws.archive, 'kunden_growing.csv')), 30_000);
    expect(await agent.stop()).toBe(0);

    const events = readJsonLines<Event>(ws.out).filter((e) => e.subject !== 'W1');
    // Row i has balance i: each row once, none lost, none torn.
    expect(events.map((e) => Number(e.data.balance)).sort((a, b) => a - b)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e.id)).size).toBe(600);
    expect(readFileSync(join(ws.archive, 'kunden_growing.csv'))).toEqual(bytes);
    expect(await dlqEntries(ws)).toEqual([]);
    // Read once, and not before it had been quiet for minAgeMs after the last write.
    const reads = logLines(agent).filter((l) => l.msg === 'reading file' && l.file === 'kunden_growing.csv');
    expect(reads).toHaveLength(1);
    expect(Date.parse(reads[0]!.time)).toBeGreaterThanOrEqual(lastWrite + minAgeMs);
    await deleteRedisPrefix(ws.prefix);
  }, 240_000); // the waits (120 + 60 + 30 s) and the writes

  it('a re-dropped identical file under another name sends nothing, is archived and logged as a duplicate, also after a restart', async () => {
    const ws = customersWorkspace('duplicate', { logLevel: 'info' });
    const rows = kundenRows(40, 8);
    const bytes = kundenCsv(rows);
    const hash = sha256(bytes);
    // A later file with the same eight keys: one key's events reach the sink in queue order, so once its rows
    // are there, any event queued for a copy dropped before it would be there too.
    const later = (n: number): string[] => Array.from({ length: 8 }, (_, k) => `K${k};Later;Drop ${n};l${k}@example.de;9${n},00;01.03.2024;A`);
    let agent = agentFor(ws);
    dropCsv(join(ws.inbox, 'kunden_a.csv'), rows);
    await waitFor('40 events at the sink', () => countLines(ws.out) >= 40 || agent.proc.exitCode !== null, 120_000);
    await waitFor('the first file to be archived', () => existsSync(join(ws.archive, 'kunden_a.csv')), 30_000);
    expect(readFileSync(join(ws.archive, 'kunden_a.csv'))).toEqual(bytes);

    dropCsv(join(ws.inbox, 'kunden_a_copy.csv'), rows);
    await waitFor('the copy to be archived', () => existsSync(join(ws.archive, 'kunden_a_copy.csv')), 30_000);
    dropCsv(join(ws.inbox, 'kunden_later_1.csv'), later(1));
    await waitFor('the later file at the sink', () => countLines(ws.out) >= 48 || agent.proc.exitCode !== null, 60_000);
    expect(await agent.stop()).toBe(0);
    expect(readJsonLines<Event>(ws.out).filter((e) => !e.data.name!.startsWith('Later'))).toHaveLength(40);
    expect(countLines(ws.out)).toBe(48);
    expect(readFileSync(join(ws.archive, 'kunden_a_copy.csv'))).toEqual(bytes);
    let log = logLines(agent);
    expect(log.filter((l) => l.msg.startsWith('duplicate') && l.file === 'kunden_a_copy.csv').map((l) => l.hash)).toEqual([hash]);
    expect(log.filter((l) => l.msg === 'reading file').map((l) => l.file)).toEqual(['kunden_a.csv', 'kunden_later_1.csv']);

    // The hashes sent live in Redis, not in the agent's memory: a copy dropped while it is down is a duplicate too.
    dropCsv(join(ws.inbox, 'kunden_a_again.csv'), rows);
    agent = agentFor(ws);
    await waitFor('the second copy to be archived', () => existsSync(join(ws.archive, 'kunden_a_again.csv')) || agent.proc.exitCode !== null, 120_000);
    dropCsv(join(ws.inbox, 'kunden_later_2.csv'), later(2));
    await waitFor('the second later file at the sink', () => countLines(ws.out) >= 56 || agent.proc.exitCode !== null, 60_000);
    expect(await agent.stop()).toBe(0);

    const events = readJsonLines<Event>(ws.out);
    expect(events).toHaveLength(56);
    expect(new Set(events.map((e) => e.id)).size).toBe(56);
    expect(events.filter((e) => !e.data.name!.startsWith('Later'))).toHaveLength(40);
    expect(readdirSync(ws.inbox)).toEqual([]);
    expect(readdirSync(ws.archive).sort()).toEqual(['kunden_a.csv', 'kunden_a_again.csv', 'kunden_a_copy.csv', 'kunden_later_1.csv', 'kunden_later_2.csv']);
    expect(readFileSync(join(ws.archive, 'kunden_a_again.csv'))).toEqual(bytes);
    log = logLines(agent);
    expect(log.filter((l) => l.msg.startsWith('duplicate') && l.file === 'kunden_a_again.csv').map((l) => l.hash)).toEqual([hash]);
    expect(log.filter((l) => l.msg === 'reading file').map((l) => l.file)).toEqual(['kunden_later_2.csv']);
    await deleteRedisPrefix(ws.prefix);
  }, 480_000); // the waits (120 + 30 + 30 + 60 + 120 + 60 s) and two drains

  it('Windows-1252 ä, ö, ü, ß, €, „“ and – in key, name and both name parts reach the sink as the same characters in UTF-8, byte for byte', async () => {
    const ws = customersWorkspace('cp1252');
    const rows = [
      'Ä1;Jürgen;Öztürk-Weiß;juergen@example.de;1,00;01.02.2024;A',
      'Ü2;Bärbel;„Bäckerei“ – 5 € Straße;baerbel@example.de;2,50;02.02.2024;I',
      'ß3;ÄÖÜ äöü;Müßiggang €€ ß;oemer@example.de;3,00;03.02.2024;A',
    ];
    const bytes = kundenCsv(rows);
    // The file really is Windows-1252: € is 0x80 (a control character in latin1), „ 0x84, – 0x96, ä 0xE4.
    for (const b of [0x80, 0x84, 0x96, 0xe4, 0xdf]) expect(bytes.includes(b)).toBe(true);
    expect(bytes.includes(Buffer.from('ä', 'utf8'))).toBe(false);
    dropCsv(join(ws.inbox, 'kunden_umlaute.csv'), rows);
    const agent = agentFor(ws);
    await waitFor('3 events at the sink', () => countLines(ws.out) >= 3 || agent.proc.exitCode !== null, 120_000);
    expect(await agent.stop()).toBe(0);

    const sink = readFileSync(ws.out);
    // Valid UTF-8 throughout, and the characters written as themselves, not as \u escapes.
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(sink)).not.toThrow();
    expect(sink.includes(Buffer.from('\\u', 'latin1'))).toBe(false);
    const expected = [
      { id: 'Ä1', name: 'Jürgen Öztürk-Weiß', email: 'juergen@example.de', balance: '1.00', since: '2024-02-01', status: 'active', origin: 'legacy-erp' },
      { id: 'Ü2', name: 'Bärbel „Bäckerei“ – 5 € Straße', email: 'baerbel@example.de', balance: '2.50', since: '2024-02-02', status: 'inactive', origin: 'legacy-erp' },
      { id: 'ß3', name: 'ÄÖÜ äöü Müßiggang €€ ß', email: 'oemer@example.de', balance: '3.00', since: '2024-02-03', status: 'active', origin: 'legacy-erp' },
    ];
    const lines = sink.toString('utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const data of expected) {
      const line = Buffer.from(lines.find((l) => (JSON.parse(l) as Event).subject === data.id) ?? '', 'utf8');
      expect(line.includes(Buffer.from(`"subject":${JSON.stringify(data.id)},`, 'utf8')), `subject ${data.id}`).toBe(true);
      expect(line.includes(Buffer.from(`"data":${JSON.stringify(data)},`, 'utf8')), `data of ${data.id} in ${line.toString('utf8')}`).toBe(true);
    }
    // What decoding the file as latin1, or encoding the output twice, would leave behind.
    const text = sink.toString('utf8');
    expect(text).not.toMatch(/[\u0080-\u009f\ufffd]|Ã|â‚¬/);
    await deleteRedisPrefix(ws.prefix);
  }, 180_000);

  it('dead-letters each kind of violation with file, line and reason; replay after fixing the mapping delivers the fixable ones under the stream\'s ids; purge removes the rest', async () => {
    const mappingDir = tempWorkspace('fd-mapping');
    mkdirSync(join(mappingDir, 'contracts'));
    copyFileSync(join(REPO, 'mappings/contracts/customer.v1.schema.json'), join(mappingDir, 'contracts/customer.v1.schema.json'));
    const original = readFileSync(join(REPO, 'mappings/customers.yaml'), 'utf8');
    writeFile(join(mappingDir, 'customers.yaml'), original);
    const ws = customersWorkspace('violations', { mappingDir });
    // Line numbers in the file: the header is line 1.
    const rows = [
      '101;Anna;Gut;anna@example.de;10,00;01.02.2024;A', //          2 good
      '102;Bad;Date;b@example.de;1,00;31.02.2024;A', //              3 no such day: bad data, no mapping can fix it
      '103;Short;Date;s@example.de;1,00;1.2.2024;A', //              4 day and month without zeros: a date rule that accepts both
      '104;Null;Date;n@example.de;1,00;00.00.0000;I', //             5 the legacy "no date": nullIf
      ';Missing;Key;m@example.de;1,00;01.02.2024;A', //              6 empty key: no identity, stays
      '106;Lower;Code;l@example.de;1,00;01.02.2024;a', //            7 a known code in lower case: case: upper
      '107;Other;Code;o@example.de;1,00;01.02.2024;Z', //            8 a code nobody knows: stays
      '108;Thousands;Sep;t@example.de;1.234,50;01.02.2024;A', //     9 grouped digits: thousandsSeparator
      '109;No;Mail;-;1,00;01.02.2024;A', //                         10 "-" for no e-mail: nullIf
      '110;Extra;Field;e@example.de;1,00;01.02.2024;A;oops', //     11 a malformed row: no mapping can read it
      '111;Gone;Away;g@example.de;1,00;01.02.2024;D', //            12 filtered: neither event nor dead letter
      '112;Café;Weiß;c@example.de;2,00;01.02.2024;I', //            13 good
    ];
    const bytes = kundenCsv(rows);
    const hash = sha256(bytes);
    dropCsv(join(ws.inbox, 'kunden_bad.csv'), rows);
    const mtime = new Date(Math.round(statSync(join(ws.inbox, 'kunden_bad.csv')).mtimeMs)).toISOString();
    const agent = agentFor(ws);
    await waitFor('the file to be archived', () => existsSync(join(ws.archive, 'kunden_bad.csv')) || agent.proc.exitCode !== null, 120_000);
    await waitFor('the good rows at the sink', () => countLines(ws.out) >= 2 || agent.proc.exitCode !== null, 30_000);

    // Record index = line - 2 (one header line, no quoted line breaks): the change id is `<sha256>:<index>`.
    const idOfLine = (line: number): string => streamEventId('customers', 'customer', `${hash}:${line - 2}`);
    const good = readJsonLines<Event>(ws.out);
    expect(good.map((e) => [e.subject, e.id])).toEqual(expect.arrayContaining([['101', idOfLine(2)], ['112', idOfLine(13)]]));
    expect(good).toHaveLength(2);

    const entries = await dlqEntries(ws);
    const at = (line: number) => {
      const found = entries.filter((e) => e.location === `inbox/kunden_bad.csv:${line}`);
      expect(found, `one dead letter for line ${line}`).toHaveLength(1);
      return found[0]!;
    };
    const expectedReasons: Array<[number, string, RegExp]> = [
      [3, 'FERRY_CONTRACT_VIOLATION', /^since: "31\.02\.2024" is not a valid date in format dd\.MM\.yyyy$/],
      [4, 'FERRY_CONTRACT_VIOLATION', /^since: "1\.2\.2024" is not a valid date in format dd\.MM\.yyyy$/],
      [5, 'FERRY_CONTRACT_VIOLATION', /^since: "00\.00\.0000" is not a valid date/],
      [6, 'FERRY_CONTRACT_VIOLATION', /^id: .*KUNDE_NR is empty/],
      [7, 'FERRY_CONTRACT_VIOLATION', /^status: "unknown" is not one of "active", "inactive"$/],
      [8, 'FERRY_CONTRACT_VIOLATION', /^status: "unknown" is not one of "active", "inactive"$/],
      [9, 'FERRY_CONTRACT_VIOLATION', /^balance: "1\.234,50" is not a decimal number/],
      [10, 'FERRY_CONTRACT_VIOLATION', /^email: "-" is not a valid email$/],
      [11, 'FERRY_RECORD_MALFORMED', /column|field/i],
    ];
    expect(entries).toHaveLength(expectedReasons.length);
    for (const [line, code, reason] of expectedReasons) {
      expect(at(line).code, `code of line ${line}`).toBe(code);
      expect(at(line).reason, `reason of line ${line}`).toMatch(reason);
    }
    // The status reason names only the mapped value: the entry's record keeps the code the file had.
    const shown = await runFerry(['dlq', 'show', at(7).id, '--config', ws.config]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ location: 'inbox/kunden_bad.csv:7', record: { data: { STATUS: 'a' }, changeId: `${hash}:5`, position: 'kunden_bad.csv#7' } });

    // What an operator would change, kind by kind; the rest is bad data and stays for the purge.
    const fixed = original
      .replace('email:   { from: EMAIL, trim: true, case: lower }', 'email:   { from: EMAIL, trim: true, case: lower, nullIf: ["-"] }')
      .replace('decimalSeparator: "," }', 'decimalSeparator: ",", thousandsSeparator: "." }')
      .replace('format: "dd.MM.yyyy" }', 'format: "d.M.yyyy", nullIf: ["00.00.0000"] }')
      .replace('status:  { from: STATUS, map:', 'status:  { from: STATUS, case: upper, map:');
    expect(fixed.split('\n').filter((l, i) => l !== original.split('\n')[i])).toHaveLength(4);
    writeFile(join(mappingDir, 'customers.yaml'), fixed);
    const replay = await runFerry(['dlq', 'replay', '--config', ws.config]);
    expect(replay.stderr).toMatch(/replayed 5 entries; 4 still fail/);
    expect(replay.code).toBe(1);
    for (const line of [3, 6, 8, 11]) expect(replay.stderr).toContain(`still failing: ${at(line).id} inbox/kunden_bad.csv:${line}`);

    await waitFor('the replayed rows at the sink', () => countLines(ws.out) >= 7 || agent.proc.exitCode !== null, 60_000);
    const events = readJsonLines<Event>(ws.out);
    expect(events).toHaveLength(7);
    const bySubject = (s: string): Event => events.find((e) => e.subject === s)!;
    const replayed: Array<[string, number, Record<string, string | null>]> = [
      ['103', 4, { since: '2024-02-01' }],
      ['104', 5, { since: null, status: 'inactive' }],
      ['106', 7, { status: 'active' }],
      ['108', 9, { balance: '1234.50' }],
      ['109', 10, { email: null }],
    ];
    for (const [subject, line, data] of replayed) {
      // The id, time and position the stream would have given the row with the fixed mapping.
      expect(bySubject(subject), `replayed ${subject}`).toMatchObject({ id: idOfLine(line), time: mtime, ferryposition: `kunden_bad.csv#${line}`, data: { id: subject, ...data } });
    }
    expect(bySubject('101').time).toBe(mtime);

    const left = await dlqEntries(ws);
    expect(left.map((e) => e.location).sort()).toEqual([3, 6, 8, 11].map((l) => `inbox/kunden_bad.csv:${l}`).sort());
    const purge = await runFerry(['dlq', 'purge', ...left.map((e) => e.id), '--config', ws.config]);
    expect(purge.code, purge.stderr).toBe(0);
    expect(purge.stderr).toMatch(/purged 4 entries/);
    expect(await dlqEntries(ws)).toEqual([]);
    expect(await agent.stop()).toBe(0);
    expect(readJsonLines(ws.out)).toHaveLength(7);
    await deleteRedisPrefix(ws.prefix);
  }, 300_000); // the waits (120 + 30 + 60 s) and eight CLI runs
});
