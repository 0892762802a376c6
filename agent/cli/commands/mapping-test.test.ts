import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { eventId } from '../../event/cloud-event.js';

// Runs the built CLI (dist/, built by the vitest global setup) the way a user does.
const repo = path.resolve(import.meta.dirname, '../../..');
const ferry = (...args: string[]) => {
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/ferry.js'), ...args], { cwd: repo, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

async function sample(name: string, content: Buffer | string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ferry-mapping-test-'));
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

const header = 'KUNDE_NR;VORNAME;NACHNAME;EMAIL;SALDO;KUNDE_SEIT;STATUS';

describe('ferry mapping test', () => {
  it('maps a Windows-1252, semicolon CSV: events on stdout, violations with row numbers on stderr, exit 2', async () => {
    const csv = [header, '10001;Jürgen;Straßer; Juergen@Example.DE ;1234,50;31.01.2024;A', '10002;"Bäckerei ""€""";GmbH;info@euro.example;-17,05;31.02.2024;X', '10003;Old;Gone;;0,00;01.01.2001;D', '10004;Zoë;Weiß-€;zoe@example.de;0,00;29.02.2024;I', ''].join('\r\n');
    const input = await sample('kunden_2024-01-31.csv', iconv.encode(csv, 'windows-1252'));
    const r = ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input, '--delimiter', ';', '--encoding', 'windows-1252');
    expect(r.code).toBe(2);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { subject: string; type: string; data: Record<string, unknown>; ferryposition: string });
    expect(events.map((e) => e.subject)).toEqual(['10001', '10004']);
    expect(events[0]).toMatchObject({ type: 'customer.created', ferryposition: 'kunden_2024-01-31.csv#2', data: { name: 'Jürgen Straßer', email: 'juergen@example.de', balance: '1234.50', since: '2024-01-31', status: 'active' } });
    expect(events[1]!.data).toMatchObject({ name: 'Zoë Weiß-€', since: '2024-02-29', status: 'inactive' });
    expect(r.stderr).toContain('row 2 (line 3): FERRY_CONTRACT_VIOLATION since: "31.02.2024" is not a valid date in format dd.MM.yyyy');
    expect(r.stderr).toContain('row 2 (line 3): FERRY_CONTRACT_VIOLATION status: "unknown" is not one of "active", "inactive"');
    expect(r.stderr).toContain('row 3 (line 4): filtered out by mappings/customers.yaml');
    expect(r.stderr).toContain('4 rows: 2 events, 1 filtered, 1 with violations');
    // Same input, same output: ids and everything else are deterministic.
    expect(ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input, '--delimiter', ';', '--encoding', 'windows-1252').stdout).toBe(r.stdout);
  });

  it('gives a CSV sample the ids the agent would, for the pipeline and agent named', async () => {
    const csv = iconv.encode([header, '10001;Jürgen;Straßer;j@example.de;1,50;31.01.2024;A', '10002;Anna;Alt;a@example.de;2,50;01.02.2024;I', ''].join('\r\n'), 'windows-1252');
    const input = await sample('kunden_2024-02-01.csv', csv);
    const r = ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input, '--delimiter', ';', '--encoding', 'windows-1252', '--pipeline', 'customers', '--agent', 'erp-host-1');
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; source: string; ferrypipeline: string });
    // file-drop's change id: the file's sha256 and the row's index.
    const digest = createHash('sha256').update(csv).digest('hex');
    expect(events.map((e) => e.id)).toEqual([eventId('customers', 'customer', `${digest}:0`), eventId('customers', 'customer', `${digest}:1`)]);
    expect(events[0]).toMatchObject({ source: 'ferry://erp-host-1/customers', ferrypipeline: 'customers' });
  });

  it('exits 0 on a clean JSON-lines sample, with deletes and an explicit origin', async () => {
    const lines = [
      { KUNDE_NR: '7', VORNAME: 'Ä', NACHNAME: 'ß', SALDO: '1,5', KUNDE_SEIT: '01.01.2020', STATUS: 'A' },
      { op: 'd', data: {}, before: { KUNDE_NR: '8' } },
    ];
    const input = await sample('rows.jsonl', lines.map((l) => JSON.stringify(l)).join('\n'));
    const r = ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input, '--origin', 'kunden_x.csv');
    expect(r.stderr).toContain('2 rows: 2 events, 0 filtered, 0 with violations');
    expect(r.code).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; data: unknown });
    expect(events.map((e) => e.type)).toEqual(['customer.created', 'customer.deleted']);
    expect(events[1]!.data).toEqual({ id: '8' });
  });

  it('takes the columns a source did not send, and leaves their fields out as the agent does', async () => {
    const row = { op: 'u', data: { KUNDE_NR: '9', NACHNAME: 'Neu', KUNDE_SEIT: '01.01.2020', STATUS: 'A' }, unchanged: ['EMAIL'] };
    const input = await sample('rows.jsonl', JSON.stringify(row));
    const r = ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input, '--origin', 'kunden_x.csv');
    expect(r.stderr).toContain('1 rows: 1 events, 0 filtered, 0 with violations');
    const event = JSON.parse(r.stdout) as { data: Record<string, unknown>; ferryunchanged?: string };
    expect(event.ferryunchanged).toBe('email');
    expect(event.data).not.toHaveProperty('email');
    const bad = await sample('bad.jsonl', JSON.stringify({ ...row, unchanged: 'EMAIL' }));
    expect(ferry('mapping', 'test', 'mappings/customers.yaml', '--input', bad).stderr).toContain('unchanged must be a list of column names');
  });

  it('reports records no mapping matches', async () => {
    const input = await sample('orders.csv', 'ID\n1\n');
    const r = ferry('mapping', 'test', 'mappings/customers.yaml', '--input', input);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('row 1 (line 2): FERRY_MAPPING_NO_MATCH origin: no mapping matches file "orders.csv"');
  });

  it('exits 2 with every located problem of a broken mapping', async () => {
    const mapping = await sample('broken.yaml', 'entity: customer\ncontract: nope.schema.json\nmatch: { file: "*.csv" }\nkey: [id]\nfields:\n  id: { fromm: A }\n');
    const input = await sample('x.csv', 'A\n1\n');
    const r = ferry('mapping', 'test', mapping, '--input', input);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('FERRY_MAPPING_INVALID: 2 problem(s)');
    expect(r.stderr).toMatch(/broken\.yaml:6:9 \(fields\.id\.fromm\): unknown key "fromm" — did you mean "from"\?/);
    expect(r.stderr).toMatch(/broken\.yaml:2:11 \(contract\): contract file .*nope\.schema\.json does not exist/);
    expect(r.stdout).toBe('');
  });
});
