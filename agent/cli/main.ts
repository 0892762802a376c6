// First: catch a stop of `ferry run` before anything heavy loads.
import './early-stop.js';
import { Command, CommanderError, Help, Option } from 'commander';
import { FerryError } from '../errors/index.js';
import { ERROR_CODES } from '../errors/codes.js';
import { SINKS, SOURCES } from '../registry.js';

/**
 * The `ferry` command line. Each verb lives in `commands/NAME.ts` and is
 * loaded only when used, so `ferry --help` stays fast and a verb's
 * dependencies (Playwright, database drivers) load only for that verb.
 * Every verb resolves to an exit code: 0 ok, 1 runtime failure, 2 bad input.
 */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('ferry')
    .description('Turns legacy systems into contract-checked event streams.')
    .version(process.env.npm_package_version ?? '0.1.0')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // Commander's own usage errors read like Ferry's (`ferry: CODE: what`, then `fix:`, see usageHints).
      outputError: (s, write) => write(`ferry: FERRY_USAGE: ${s.replace(/^error: /, '')}`),
    })
    .addHelpText(
      'after',
      `\nSources: ${SOURCES.map((s) => s.type).join(', ') || '(none)'}\nSinks:   ${SINKS.map((s) => s.type).join(', ') || '(none)'}\n\nExit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.`,
    );

  const config = () => new Option('-c, --config <file>', 'the agent configuration').default('ferry.yaml');
  const run = (load: () => Promise<{ run: (opts: any) => Promise<number> }>) => async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const opts = { ...cmd.opts(), args: cmd.args };
    exitCode = await (await load()).run(opts);
  };

  program
    .command('run')
    .description('run the agent in the foreground (what the service manager starts)')
    .addOption(config())
    .addOption(new Option('--role <role>', 'all: read and deliver; read: only read sources; deliver: only run sink workers').choices(['all', 'read', 'deliver']).default('all'))
    .action(run(() => import('./commands/run.js')));

  program
    .command('check')
    .description('validate config, mappings and contracts, then preflight every source and sink')
    .addOption(config())
    .option('--offline', 'only validate files; do not contact sources and sinks')
    .option('--json', 'print the problems and check results as JSON')
    .action(run(() => import('./commands/check.js')));

  const mapping = program.command('mapping').description('work with mapping files');
  mapping
    .command('test <mapping>')
    .description('dry-run a mapping on sample records and print the events and contract violations')
    .requiredOption('-i, --input <file>', 'sample records: CSV (with header), JSON array or JSON lines')
    .option('--delimiter <char>', 'CSV delimiter', ',')
    .option('--encoding <name>', 'input encoding (any iconv-lite name)', 'utf-8')
    .option('--origin <name>', 'file, table or script name the records come from (for match); default: the input file name')
    .option('--pipeline <name>', 'pipeline the events are made for (their id, source and ferrypipeline)', 'mapping-test')
    .option('--agent <id>', 'agent id the events are made for (their source)', 'mapping-test')
    .action(run(() => import('./commands/mapping-test.js')));

  const dlq = program.command('dlq').description('work the dead-letter queues');
  for (const [verb, summary] of [
    ['list', 'list dead-letter entries of every pipeline and sink'],
    ['show', 'show one entry in full: the events or record, the reason, the source location'],
    ['replay', 'map (again) and queue dead-letter entries for delivery, then remove them'],
    ['purge', 'delete dead-letter entries'],
  ] as const) {
    const c = dlq.command(verb).description(summary).addOption(config()).option('-p, --pipeline <name>', 'only this pipeline').option('-s, --sink <name>', 'only this sink (or "mapping" for contract violations)');
    if (verb === 'show') c.argument('<id>', 'entry id from `ferry dlq list`');
    if (verb === 'replay' || verb === 'purge') c.argument('[id...]', 'entry ids; all matching entries when omitted').option('--yes', 'purge without asking');
    if (verb === 'list') c.option('--json', 'print JSON lines');
    c.action(run(async () => {
      const m = await import('./commands/dlq.js');
      return { run: (opts: any) => m.run({ ...opts, verb }) };
    }));
  }

  program
    .command('status')
    .description('pipelines, lag, throughput, queue and dead-letter depth, circuit state')
    .addOption(config())
    .option('--json', 'print JSON')
    .action(run(() => import('./commands/status.js')));

  program
    .command('snapshot <pipeline>')
    .description('(re)snapshot a CDC or poll source, with a progress bar')
    .addOption(config())
    .option('-t, --table <name...>', 'only these tables')
    .option('-w, --where <sql>', 'only rows matching this condition')
    .action(run(() => import('./commands/snapshot.js')));

  const rpa = program.command('rpa').description('RPA scripts');
  rpa
    .command('run <script>')
    .description('run one RPA script once and print what it emits (not implemented yet)')
    .action(run(() => import('./commands/rpa-run.js')));

  const service = program.command('service').description('the system service');
  service
    .command('install')
    .description('write and enable a systemd unit for the agent')
    .addOption(config())
    .option('--name <name>', 'unit name', 'ferry')
    .option('--user <user>', 'system user the agent runs as (default: root)')
    .option('--unit-dir <dir>', 'where to write the unit', '/etc/systemd/system')
    .option('--no-enable', 'only write the unit; do not run systemctl')
    .action(run(() => import('./commands/service-install.js')));

  listNestedVerbs(program);
  usageHints(program);

  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    return reportError(err);
  }
}

/**
 * `ferry --help` lists the verbs as they are typed (`mapping test`, `dlq
 * list`, `service install`), as PRODUCT.md's command table does, instead of
 * bare group names that hide them. Set after the verbs are added, so only
 * the top-level help flattens; a group's own help lists its verbs as usual.
 */
function listNestedVerbs(program: Command): void {
  const plain = new Help();
  program.configureHelp({
    visibleCommands: (cmd) => plain.visibleCommands(cmd).flatMap((c) => (c.commands.length > 0 ? c.commands : [c])),
    subcommandTerm: (cmd) => (cmd.parent && cmd.parent !== program ? `${cmd.parent.name()} ` : '') + plain.subcommandTerm(cmd),
  });
}

/** After a usage error, each command points at the help that answers it: its own. */
function usageHints(cmd: Command, path = cmd.name()): void {
  const what = cmd.parent === null ? 'to list the commands' : cmd.commands.length > 0 ? 'to list its commands' : 'for its options and arguments';
  cmd.showHelpAfterError(`  fix: run \`${path} --help\` ${what}.`);
  for (const sub of cmd.commands) usageHints(sub, `${path} ${sub.name()}`);
}

/** Prints an error for a person and returns its exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    // `ferry help` is asked for; help shown because a verb is missing (`ferry mapping`) is bad usage.
    if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
    return 2;
  }
  if (err instanceof FerryError) {
    process.stderr.write(`ferry: ${err.describe()}\n`);
    return ERROR_CODES[err.code].exit;
  }
  process.stderr.write(`ferry: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
