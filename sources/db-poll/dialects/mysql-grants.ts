import type { WriteGrant } from './dialect.js';

/** A privilege line of `SHOW GRANTS`, its parts as the server quoted them. */
export interface GrantLine {
  privileges: string[];
  database: string;
  table: string;
  grantee: string;
  /** The line without its `IDENTIFIED BY PASSWORD '<hash>'` part: what messages quote. */
  text: string;
}

/** A role line of `SHOW GRANTS`: `GRANT `r` TO `u`@`%`` (MariaDB) or `GRANT `r`@`%`,`s`@`%` TO `u`@`%`` (MySQL). */
export interface RoleLine {
  roles: string[];
  grantee: string;
}

const WRITE_PRIVILEGES = new Set(['ALL PRIVILEGES', 'ALL', 'INSERT', 'UPDATE', 'DELETE', 'DROP', 'ALTER']);

/** A quoted identifier or account: `` `a``b` ``, `'a'`, `` `r`@`%` `` or a bare word such as PUBLIC. */
const NAME = String.raw`(?:\`(?:[^\`]|\`\`)*\`|'(?:[^']|'')*'|[\w$]+)`;
const ACCOUNT = `${NAME}(?:@${NAME})?`;
const ROLE_LINE = new RegExp(`^GRANT (${ACCOUNT}(?:\\s*,\\s*${ACCOUNT})*) TO (${ACCOUNT})(?: WITH ADMIN OPTION)?$`);

/** `GRANT SELECT, INSERT ON `erp`.* TO `reader`@`%`` ⇒ its parts; role lines (no ON) are not privilege lines. */
export function parseGrant(text: string): GrantLine | undefined {
  const m = /^GRANT (.+?) ON (?:TABLE )?(\S+) TO (.+?)(?: IDENTIFIED (?:BY|VIA|WITH) .*?)?(?: WITH .*)?$/.exec(text);
  if (!m) return undefined;
  const privileges = m[1]!
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((p) => p.trim().toUpperCase());
  const [database = '', table = ''] = m[2]!.split(/\.(?=[^.]*$)/);
  return { privileges, database, table, grantee: m[3]!, text: withoutCredentials(text) };
}

/** The roles a role line grants, and to whom. */
export function parseRoleGrant(text: string): RoleLine | undefined {
  const m = ROLE_LINE.exec(text);
  if (!m) return undefined;
  const roles = m[1]!.match(new RegExp(ACCOUNT, 'g')) ?? [];
  return { roles, grantee: m[2]! };
}

/** `` `u`@`%` `` and `u@%` (what CURRENT_USER() returns) name the same account. */
export function sameAccount(quoted: string, plain: string): boolean {
  return unquoteAccount(quoted) === plain;
}

function unquoteAccount(account: string): string {
  return (account.match(new RegExp(NAME, 'g')) ?? []).map(unquote).join('@');
}

function unquote(name: string): string {
  if (name.startsWith('`')) return name.slice(1, -1).replace(/``/g, '`');
  if (name.startsWith("'")) return name.slice(1, -1).replace(/''/g, "'");
  return name;
}

/** MariaDB quotes the password hash of an account into its USAGE line (and ALL PRIVILEGES ... lines): never into a message. */
function withoutCredentials(text: string): string {
  const at = text.indexOf(' IDENTIFIED ');
  if (at < 0) return text;
  return text.slice(0, at) + (/ WITH GRANT OPTION$/.test(text) ? ' WITH GRANT OPTION' : '');
}

/**
 * The write privileges `lines` give on `view` (`db.view`, or a bare view in
 * `defaultDb`). `through` names the role the lines came from, for the
 * message and the fix.
 */
export function writeGrantsOn(view: string, defaultDb: string, lines: readonly GrantLine[], through?: { role: string; grantee: string }): WriteGrant[] {
  const [db, table] = view.includes('.') ? view.split('.', 2) : [defaultDb, view];
  const found: WriteGrant[] = [];
  for (const g of lines) {
    const write = g.privileges.filter((p) => WRITE_PRIVILEGES.has(p));
    if (write.length === 0 || !covers(g, db ?? '', table ?? '')) continue;
    const revoke = `REVOKE ${write.join(', ')} ON ${g.database}.${g.table} FROM ${g.grantee};`;
    found.push({
      view,
      privileges: write,
      grantedBy: through ? `${g.text}, held through role ${through.role} granted to ${through.grantee}` : g.text,
      fix: through ? `${revoke} (or REVOKE ${through.role} FROM ${through.grantee};)` : revoke,
    });
  }
  return found;
}

function covers(g: GrantLine, db: string, table: string): boolean {
  return matches(g.database, db) && matches(g.table, table);
}

/** `*`, `` `erp` `` or a pattern such as `` `erp\_%` `` against a plain name. */
function matches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  const p = pattern.replace(/^`|`$/g, '').replace(/``/g, '`');
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '\\' && i + 1 < p.length) re += escapeRegex(p[++i]!);
    else if (ch === '%') re += '.*';
    else if (ch === '_') re += '.';
    else re += escapeRegex(ch);
  }
  return new RegExp(`^${re}$`).test(name);
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
