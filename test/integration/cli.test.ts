import { describe, expect, it } from 'vitest';
import { runFerry, tempWorkspace } from '../support/agent-process.js';

/**
 * The `ferry` command line as a person meets it, through the real binary:
 * the verbs PRODUCT.md promises, and what each usage mistake says and exits
 * with (0 ok, 2 bad usage). Scripts and service managers read the exit code,
 * people read stderr: both are checked.
 */

/** PRODUCT.md's command table, as the verbs are typed. */
const PRODUCT_VERBS = ['run', 'check', 'mapping test', 'dlq list', 'dlq show', 'dlq replay', 'dlq purge', 'status', 'snapshot', 'rpa run', 'service install'];

/** The `Commands:` section of a help text: each verb as typed, with its description (wrapped lines joined). */
function commandEntries(help: string): Map<string, string> {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  const entries = new Map<string, string>();
  let last: string | undefined;
  for (const line of section.split('\n').slice(1)) {
    if (!/^ /.test(line)) break;
    // Entries start two spaces in; their wrapped descriptions further in.
    const entry = /^ {2}(\S.*?) {2,}(.*)$/.exec(line);
    if (entry) {
      last = entry[1]!.replace(/ \[options\]| <[^>]+>| \[[^\]]+\]/g, '');
      entries.set(last, entry[2]!);
    } else if (last !== undefined) entries.set(last, `${entries.get(last)} ${line.trim()}`);
  }
  return entries;
}

describe('ferry command line', () => {
  it('`ferry --help` exits 0 and lists every verb of PRODUCT.md', async () => {
    const { code, stdout, stderr } = await runFerry(['--help']);
    expect(code, stderr).toBe(0);
    const verbs = commandEntries(stdout);
    for (const verb of PRODUCT_VERBS) expect([...verbs.keys()], `\`ferry --help\` does not list \`${verb}\`:\n${stdout}`).toContain(verb);
    // Help that promises a verb which only fails would mislead: the unbuilt one says so up front.
    expect(verbs.get('rpa run')).toMatch(/not implemented yet/);
    expect(verbs.get('run')).not.toMatch(/not implemented/);
  });

  it('`ferry rpa run SCRIPT` exits 2 and says plainly that it is not implemented yet', async () => {
    const { code, stdout, stderr } = await runFerry(['rpa', 'run', 'legacy-orders']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/`ferry rpa run` is not implemented yet/);
    expect(stderr).toContain('FERRY_NOT_IMPLEMENTED');
    expect(stderr, 'a person should get a sentence, not a stack trace').not.toMatch(/^\s+at /m);
    expect(stdout).toBe('');
  });

  it('an unknown verb exits 2, names it and says how to list the verbs', async () => {
    const { code, stdout, stderr } = await runFerry(['frobnicate']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown command 'frobnicate'/);
    expect(stderr).toMatch(/run `ferry --help`/);
    expect(stdout).toBe('');

    const typo = await runFerry(['chek', '--config', 'ferry.yaml']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Did you mean check\?/);

    // Below a verb group the hint points at that group's help, where its verbs are.
    const sub = await runFerry(['dlq', 'lsit']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(/unknown command 'lsit'/);
    expect(sub.stderr).toMatch(/run `ferry dlq --help`/);
  });

  it('a verb group without its verb (`ferry mapping`) is bad usage: exit 2 with the group’s verbs', async () => {
    const { code, stderr } = await runFerry(['mapping']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^ {2}test \[options\] <mapping>/m);
  });

  it('without --config and no ferry.yaml here, `ferry run` exits 2, says where it looked and to pass --config', async () => {
    const cwd = tempWorkspace('cli-noconfig');
    const { code, stdout, stderr } = await runFerry(['run'], { cwd });
    expect(code).toBe(2);
    expect(stderr).toContain('FERRY_CONFIG_NOT_FOUND');
    expect(stderr).toContain(`${cwd}/ferry.yaml`);
    expect(stderr).toMatch(/--config FILE/);
    expect(stdout).toBe('');

    // The other verbs that read the configuration say the same.
    for (const verb of [['check'], ['status'], ['dlq', 'list']]) {
      const r = await runFerry(verb, { cwd });
      expect(r.code, `ferry ${verb.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout + r.stderr, `ferry ${verb.join(' ')}`).toMatch(/--config FILE/);
    }
  });

  it('`ferry run --config` without a file exits 2 and says what the option needs', async () => {
    const { code, stderr } = await runFerry(['run', '--config']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/option '-c, --config <file>' argument missing/);
    expect(stderr).toMatch(/run `ferry run --help`/);
  });
});
