import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadConfig } from '../../config/load-config.js';
import { FerryError } from '../../errors/index.js';
import { binNodeEnv, binNodeFlags, FERRY_BIN } from '../bin-node-flags.js';

interface ServiceInstallOptions {
  config: string;
  name?: string;
  user?: string;
  unitDir?: string;
  enable?: boolean;
}


/**
 * `ferry service install --config FILE`: writes a systemd unit that runs
 * `ferry run` for that config, then `systemctl daemon-reload` and
 * `systemctl enable` it. The config is validated first, so a unit never
 * points at a file that cannot start.
 */
export async function run(opts: ServiceInstallOptions): Promise<number> {
  const config = await loadConfig(opts.config);
  const name = opts.name ?? 'ferry';
  if (!/^[A-Za-z0-9@._-]+$/.test(name)) throw new FerryError('FERRY_USAGE', `"${name}" is not a valid systemd unit name`, { fix: 'Use letters, digits, @ . _ and - only.' });
  const unitDir = opts.unitDir ?? '/etc/systemd/system';
  const unitFile = join(unitDir, `${name}.service`);
  mkdirSync(unitDir, { recursive: true });
  writeFileSync(unitFile, unitText({ name, agentId: config.agent.id, configFile: config.file, workDir: config.dir, user: opts.user }));
  process.stderr.write(`wrote ${unitFile}\n`);
  if (opts.enable === false) {
    process.stderr.write(`not enabled (--no-enable); to start it: systemctl daemon-reload && systemctl enable --now ${name}\n`);
    return 0;
  }
  try {
    execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' });
    execFileSync('systemctl', ['enable', name], { stdio: 'inherit' });
  } catch (err) {
    throw new FerryError('FERRY_PREFLIGHT_FAILED', `the unit is written but systemctl could not enable it: ${(err as Error).message}`, {
      fix: `Run \`systemctl daemon-reload && systemctl enable --now ${name}\` as root on a host that runs systemd.`,
    });
  }
  process.stderr.write(`enabled ${name}; start it with: systemctl start ${name}\n`);
  return 0;
}


function unitText(u: { name: string; agentId: string; configFile: string; workDir: string; user?: string }): string {
  const exec = [process.execPath, ...binNodeFlags(), FERRY_BIN, 'run', '--config', u.configFile].join(' ');
  return `# Written by \`ferry service install\`. Secrets for \${env:...} references go in
# /etc/ferry/${u.name}.env (KEY=value lines, readable by root only), not here.
[Unit]
Description=Ferry agent ${u.agentId} (${u.configFile})
Documentation=file://${resolve(dirname(FERRY_BIN), '../docs/operations.md')}
After=network-online.target redis-server.service postgresql.service mariadb.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=${exec}
${Object.entries(binNodeEnv()).map(([k, v]) => `Environment=${k}=${v}\n`).join('')}WorkingDirectory=${u.workDir}
${u.user ? `User=${u.user}\n` : ''}EnvironmentFile=-/etc/ferry/${u.name}.env
# SIGTERM drains: reading stops, in-flight batches are queued, positions committed, exit 0.
KillSignal=SIGTERM
TimeoutStopSec=60
# Exit 1 is a runtime failure worth a restart; exit 2 is a bad configuration that a restart cannot fix.
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}
