import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, runFerry, tempWorkspace, writeFile } from '../support/agent-process.js';

describe('ferry service install', () => {
  it('writes a systemd unit that runs the agent with its memory flags, drains on SIGTERM and does not restart on bad config', async () => {
    const dir = tempWorkspace('service');
    const config = writeFile(
      join(dir, 'ferry.yaml'),
      `agent: { id: erp-host-1 }
pipelines:
  - name: customers
    source: { type: file-drop, path: ./inbox, format: { type: csv, delimiter: ";" }, complete: { minAgeMs: 500 } }
    mappings: [${join(REPO, 'mappings/customers.yaml')}]
    sinks: [{ name: audit, type: file, path: ./out/customers.jsonl }]
`,
    );
    const r = await runFerry(['service', 'install', '--config', config, '--unit-dir', join(dir, 'units'), '--name', 'ferry-erp', '--user', 'ferry', '--no-enable']);
    expect(r.code, r.stderr).toBe(0);
    const unit = readFileSync(join(dir, 'units/ferry-erp.service'), 'utf8');
    expect(unit).toMatch(new RegExp(`^ExecStart=\\S*node --max-old-space-size=\\d+ --max-semi-space-size=\\d+ ${join(REPO, 'bin/ferry.js')} run --config ${config}$`, 'm'));
    // glibc's per-thread malloc arenas would otherwise hold freed memory of the agent's three threads.
    expect(unit).toMatch(/^Environment=MALLOC_ARENA_MAX=2$/m);
    expect(unit).toMatch(/^User=ferry$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m);
    expect(unit).toMatch(/^EnvironmentFile=-\/etc\/ferry\/ferry-erp\.env$/m);
    expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
  });

  it('refuses a configuration that could not start, writing nothing (exit 2)', async () => {
    const dir = tempWorkspace('service-bad');
    const config = writeFile(join(dir, 'ferry.yaml'), 'agent: { id: x }\npipelines: []\n');
    const r = await runFerry(['service', 'install', '--config', config, '--unit-dir', join(dir, 'units'), '--no-enable']);
    expect(r.code).toBe(2);
    expect(existsSync(join(dir, 'units/ferry.service'))).toBe(false);
  });
});
