import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix, readJsonLines, runFerry, startAgent, uniquePrefix, waitFor, type FerryProcess } from '../support/agent-process.js';
import { rowPipelineWorkspace } from '../support/change-ledger.js';
import { uniqueServerId, useFixture } from './mysql-cdc.helpers.js';

// Moves the whole server to time_zone +02:00: a fault test, run alone after
// the suite, and it puts the old zone back.
const [fx, t] = useFixture('tz');
const prefix = uniquePrefix('mytz');
const running: FerryProcess[] = [];

afterAll(async () => {
  for (const p of running) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.kill();
  await deleteRedisPrefix(prefix);
});

type StampEvent = { type: string; data: { id: number; happened: string | null; happened_at: string | null; stamped: string | null } };

/** A pipeline of `stamps` whose mapping passes both columns through, and reads DATETIME once more in the zone the application wrote it in. */
function workspace(): { config: string; out: string } {
  return rowPipelineWorkspace({
    name: 'my-tz',
    prefix,
    logLevel: 'warn',
    contract: {
      name: 'stamp',
      properties: { id: { type: 'integer' }, happened: { type: ['string', 'null'] }, happened_at: { type: ['string', 'null'] }, stamped: { type: ['string', 'null'] } },
    },
    tables: [
      {
        mapping: 'stamps',
        entity: 'stamp',
        table: t('stamps'),
        fields: `  id:          { from: id, type: integer, required: true }
  happened:    { from: happened }
  # "Map it with an explicit zone" (docs/sources/mysql-cdc.md): Etc/GMT-2 is UTC+02:00.
  happened_at: { from: happened, type: timestamp, timeZone: Etc/GMT-2 }
  stamped:     { from: stamped }
`,
      },
    ],
    source: `      type: mysql-cdc
      connection: "${fx.url}"
      serverId: ${uniqueServerId()}
      tables: [${t('stamps')}]
      snapshot: initial`,
  });
}

describe('mysql-cdc on a server whose time_zone is not UTC', () => {
  it('sends the instant of a TIMESTAMP in UTC and the wall-clock DATETIME as written, in the snapshot and in the stream', async () => {
    await fx.root.query(`CREATE TABLE ${t('stamps')} (id INT PRIMARY KEY, happened DATETIME(3), stamped TIMESTAMP(6) NULL)`);
    const [[before]] = await fx.root.query<RowDataPacket[]>('SELECT @@GLOBAL.time_zone AS zone');
    await fx.root.query(`SET GLOBAL time_zone = '+02:00'`);
    // The application's sessions (and Ferry's) start in the server's zone from here on.
    const app = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', dateStrings: true });
    try {
      const [[zone]] = await app.query<RowDataPacket[]>('SELECT @@SESSION.time_zone AS zone');
      expect(zone!.zone).toBe('+02:00');
      await app.query(`INSERT INTO ${t('stamps')} VALUES (1, '2024-03-31 02:30:00.125', '2024-03-31 02:30:00.123456')`);

      const ws = workspace();
      const check = await runFerry(['check', '--config', ws.config, '--json']);
      const findings = (JSON.parse(check.stdout) as { checks: Array<{ name: string; detail: string }> }).checks;
      expect(findings.find((c) => c.name === 'time_zone')?.detail).toMatch(/^server time zone \+02:00: DATETIME values are wall-clock times in it; TIMESTAMP values are sent in UTC$/);

      const agent = startAgent(ws.config);
      running.push(agent);
      const events = () => readJsonLines<StampEvent>(ws.out);
      await waitFor('the snapshot row', () => events().length >= 1 || agent.proc.exitCode !== null, 120_000, 200);
      expect(agent.proc.exitCode, agent.stderr()).toBeNull();

      // Across midnight and the new year in UTC, so a shift of the zone offset changes the date too.
      await app.query(`INSERT INTO ${t('stamps')} VALUES (2, '2024-12-31 23:59:59.999', '2025-01-01 01:00:00')`);
      await app.query(`UPDATE ${t('stamps')} SET stamped = FROM_UNIXTIME(1700000000.5) WHERE id = 1`);
      await waitFor('the streamed changes', () => events().length >= 3 || agent.proc.exitCode !== null, 120_000, 200);
      expect(await agent.stop()).toBe(0);

      const byKind = new Map(events().map((e) => [`${e.type}/${e.data.id}`, e.data]));
      expect(byKind.get('stamp.snapshot/1')).toEqual({ id: 1, happened: '2024-03-31T02:30:00.125', happened_at: '2024-03-31T00:30:00.125Z', stamped: '2024-03-31T00:30:00.123456Z' });
      expect(byKind.get('stamp.created/2')).toEqual({ id: 2, happened: '2024-12-31T23:59:59.999', happened_at: '2024-12-31T21:59:59.999Z', stamped: '2024-12-31T23:00:00.000000Z' });
      expect(byKind.get('stamp.updated/1')).toMatchObject({ id: 1, stamped: '2023-11-14T22:13:20.500000Z' });

      // The same instants as the server computes them, whatever its zone.
      const [rows] = await app.query<RowDataPacket[]>(`SELECT id, UNIX_TIMESTAMP(stamped) AS epoch FROM ${t('stamps')} ORDER BY id`);
      expect(rows.map((r) => Number(r.epoch) * 1000)).toEqual([Date.parse(byKind.get('stamp.updated/1')!.stamped!), Date.parse(byKind.get('stamp.created/2')!.stamped!)]);
    } finally {
      await app.end();
      await fx.root.query(`SET GLOBAL time_zone = ?`, [String(before!.zone)]);
    }
  }, 300_000); // the two waits for the sink add up to 240 s; the rest is `ferry check` and the agent's stop
});
