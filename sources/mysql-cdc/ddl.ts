/**
 * The part of MySQL/MariaDB DDL that changes which columns a table has, for
 * the schema history used when the binlog carries no column names. Only
 * what can be understood exactly is applied; anything else touching a
 * captured table makes its columns unknown from that point (and decoding
 * without binlog column names then fails loudly rather than guessing).
 */

/** A column as the history keeps it; `charset` null for binary and non-text types. */
export interface HistoryColumn {
  name: string;
  type: string;
  charset: string | null;
}

/**
 * What a DDL statement does to one captured table. A statement may touch
 * several (`DROP TABLE a, b`, `RENAME TABLE a TO b, c TO a`): one effect
 * each, in statement order.
 */
export type DdlEffect =
  /** ALTER TABLE: edits the known columns; `apply` throws when they do not fit (a missing column). */
  | { kind: 'columns'; table: string; apply(columns: HistoryColumn[]): HistoryColumn[] }
  /**
   * CREATE [OR REPLACE] TABLE: the table's columns from here on, or why
   * they cannot be told. With IF NOT EXISTS the server logs the statement
   * even when the table exists, and then it changed nothing.
   */
  | { kind: 'create'; table: string; ifNotExists: boolean; columns: HistoryColumn[] | { unknown: string } }
  /** DROP, or RENAME to another name: no such table until a CREATE or RENAME brings one back. */
  | { kind: 'gone'; table: string; reason: string }
  /** A change of the columns that cannot be followed. */
  | { kind: 'unknown'; table: string; reason: string };

const IDENT = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[\w$]+)`;
const QUALIFIED = new RegExp(String.raw`^(${IDENT})(?:\s*\.\s*(${IDENT}))?`);
/** Everything from a table name on: `db`.`t`, db.t or t (in the default database). */
const NAMED = new RegExp(String.raw`^(${IDENT}(?:\s*\.\s*${IDENT})?)\s*(.*)$`, 's');

export function unquote(id: string): string {
  return id.startsWith('`') ? id.slice(1, -1).replace(/``/g, '`') : id;
}

/** `db.t`, `` `db`.`t` `` or `t` as `db.t`, unquoted; undefined when `text` is not a table name. */
function qualify(text: string, database: string): string | undefined {
  const m = QUALIFIED.exec(text.trim());
  if (!m || m[0].length !== text.trim().length) return undefined;
  return m[2] ? `${unquote(m[1] as string)}.${unquote(m[2])}` : `${database}.${unquote(m[1] as string)}`;
}

/** Strips comments and splits at top-level commas (outside quotes and parentheses). */
export function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = '';
  let current = '';
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

const TEXT_TYPES = /^(char|varchar|tinytext|text|mediumtext|longtext|enum|set|json)\b/i;
const IGNORED_SPEC =
  /^(add\s+(constraint|index|key|unique|primary|fulltext|spatial|foreign|check|period|system)|drop\s+(index|key|primary|foreign|constraint|check)|alter\s+(column\s+)?\S+\s+(set|drop)\s+default|alter\s+(index|key)|rename\s+(index|key)|engine|comment|algorithm|lock|force|auto_increment|row_format|key_block_size|stats_|pack_keys|checksum|order\s+by|enable\s+keys|disable\s+keys)\b/i;

/** The character set a definition names, itself or through its collation (`COLLATE latin1_bin` → latin1). */
function namedCharset(text: string): string | undefined {
  const charset = /\b(?:character\s+set|charset)\s*=?\s*(\w+)/i.exec(text)?.[1];
  return (charset ?? /\bcollate\s*=?\s*(\w+)/i.exec(text)?.[1]?.split('_')[0])?.toLowerCase();
}

/** `name type ... [FIRST | AFTER other]` → the column and where it goes. */
function parseColumnDef(text: string, defaultCharset: string): { column: HistoryColumn; first: boolean; after?: string } | undefined {
  const m = new RegExp(String.raw`^(${IDENT})\s+(\w+)\s*(\([^)]*\))?\s*(unsigned)?`, 'i').exec(text);
  if (!m) return undefined;
  const type = `${(m[2] as string).toLowerCase()}${m[3] ? m[3].replace(/\s+/g, '') : ''}${m[4] ? ' unsigned' : ''}`;
  const charset = TEXT_TYPES.test(type) ? (namedCharset(text) ?? defaultCharset).toLowerCase() : null;
  const after = new RegExp(String.raw`\bafter\s+(${IDENT})\s*$`, 'i').exec(text);
  return {
    column: { name: unquote(m[1] as string), type, charset },
    first: /\bfirst\s*$/i.test(text),
    ...(after ? { after: unquote(after[1] as string) } : {}),
  };
}

type Step = (columns: HistoryColumn[]) => HistoryColumn[];

function place(columns: HistoryColumn[], def: { column: HistoryColumn; first: boolean; after?: string }, at?: number): HistoryColumn[] {
  const out = [...columns];
  if (def.first) out.unshift(def.column);
  else if (def.after !== undefined) {
    const i = out.findIndex((c) => c.name.toLowerCase() === def.after?.toLowerCase());
    if (i < 0) throw new Error(`AFTER ${def.after}: no such column`);
    out.splice(i + 1, 0, def.column);
  } else if (at !== undefined) out.splice(at, 0, def.column);
  else out.push(def.column);
  return out;
}

function indexOf(columns: HistoryColumn[], name: string): number {
  const i = columns.findIndex((c) => c.name.toLowerCase() === name.toLowerCase());
  if (i < 0) throw new Error(`no column ${name}`);
  return i;
}

/** One ALTER TABLE specification as a step on the column list; undefined when not understood. */
function parseSpec(spec: string, defaultCharset: string): Step | null | undefined {
  if (IGNORED_SPEC.test(spec)) return null;
  let m: RegExpExecArray | null;
  if ((m = /^add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?(.*)$/is.exec(spec))) {
    if ((m[1] as string).startsWith('(')) return undefined;
    const def = parseColumnDef(m[1] as string, defaultCharset);
    return def && ((cols) => place(cols, def));
  }
  if ((m = new RegExp(String.raw`^drop\s+(?:column\s+)?(?:if\s+exists\s+)?(${IDENT})\s*(?:restrict|cascade)?$`, 'i').exec(spec))) {
    const name = unquote(m[1] as string);
    return (cols) => cols.filter((_, i) => i !== indexOf(cols, name));
  }
  if ((m = new RegExp(String.raw`^change\s+(?:column\s+)?(?:if\s+exists\s+)?(${IDENT})\s+(.*)$`, 'is').exec(spec))) {
    const old = unquote(m[1] as string);
    const def = parseColumnDef(m[2] as string, defaultCharset);
    return def && ((cols) => {
      const i = indexOf(cols, old);
      return place(cols.filter((_, j) => j !== i), def, i);
    });
  }
  if ((m = /^modify\s+(?:column\s+)?(?:if\s+exists\s+)?(.*)$/is.exec(spec))) {
    const def = parseColumnDef(m[1] as string, defaultCharset);
    return def && ((cols) => {
      const i = indexOf(cols, def.column.name);
      return place(cols.filter((_, j) => j !== i), def, i);
    });
  }
  if ((m = new RegExp(String.raw`^rename\s+column\s+(${IDENT})\s+to\s+(${IDENT})$`, 'i').exec(spec))) {
    const from = unquote(m[1] as string);
    const to = unquote(m[2] as string);
    return (cols) => cols.map((c, i) => (i === indexOf(cols, from) ? { ...c, name: to } : c));
  }
  return undefined;
}

/** Lines of a CREATE TABLE column list that are not columns. */
const NOT_A_COLUMN = /^(primary\s+key|key|index|unique|fulltext|spatial|constraint|foreign\s+key|check|period\s+for)\b/i;

/** The index of the `)` closing the `(` at `open`, outside quotes; -1 when unbalanced. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  let quote = '';
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = '';
    } else if (ch === "'" || ch === '"' || ch === '`') quote = ch as string;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) return i;
  }
  return -1;
}

/** The columns a CREATE TABLE's text after the table name defines, or why they cannot be told. */
function createdColumns(rest: string, defaultCharset: string): HistoryColumn[] | { unknown: string } {
  if (!rest.startsWith('(')) return { unknown: `CREATE TABLE without a column list (${rest.slice(0, 40) || 'nothing'})` };
  const close = closingParen(rest, 0);
  if (close < 0) return { unknown: 'CREATE TABLE with an unbalanced column list' };
  const body = rest.slice(1, close);
  const options = rest.slice(close + 1);
  if (/^\s*like\b/i.test(body)) return { unknown: 'CREATE TABLE ... LIKE' };
  // CREATE TABLE t (a INT) [AS] SELECT ...: the SELECT adds columns of its own
  if (/\bselect\b/i.test(options)) return { unknown: 'CREATE TABLE ... SELECT' };
  const charset = namedCharset(options) ?? defaultCharset;
  const columns: HistoryColumn[] = [];
  for (const element of splitTopLevel(body)) {
    if (NOT_A_COLUMN.test(element)) continue;
    const def = parseColumnDef(element, charset);
    if (!def) return { unknown: `CREATE TABLE column not understood: ${element.slice(0, 80)}` };
    columns.push(def.column);
  }
  return columns;
}

/** Each `a TO b` of a RENAME TABLE, qualified; undefined when one is not understood. */
function renamePairs(list: string, database: string): Array<[string, string]> | undefined {
  const pairs: Array<[string, string]> = [];
  for (const pair of splitTopLevel(list)) {
    const m = /^(.+?)\s+to\s+(.+)$/is.exec(pair.replace(/\s+(?:wait\s+\d+|nowait)\b/i, ''));
    const from = m && qualify(m[1] as string, database);
    const to = m && qualify(m[2] as string, database);
    if (!from || !to) return undefined;
    pairs.push([from, to]);
  }
  return pairs;
}

/**
 * What `sql` (a QUERY event's statement, run with default database
 * `database`) does to the captured tables: one effect per captured table it
 * touches, none for statements on other tables, non-DDL and temporary tables
 * (row-based logging writes no rows of a temporary table).
 */
export function ddlEffects(sql: string, database: string, captured: ReadonlySet<string>, defaultCharset = 'utf8mb4'): DdlEffect[] {
  const text = sql.replace(/\/\*(?!!)[\s\S]*?\*\//g, ' ').replace(/\s+/g, ' ').trim();
  let m: RegExpExecArray | null;

  if ((m = new RegExp(String.raw`^drop\s+(?:database|schema)\s+(?:if\s+exists\s+)?(${IDENT})\s*;?$`, 'i').exec(text))) {
    const db = unquote(m[1] as string);
    return [...captured].filter((t) => t.startsWith(`${db}.`)).map((table) => ({ kind: 'gone', table, reason: `DROP DATABASE ${db}` }));
  }

  if ((m = /^rename\s+tables?\s+(.*?);?$/is.exec(text))) {
    const pairs = renamePairs(m[1] as string, database);
    if (!pairs) return [];
    return pairs.flatMap(([from, to]): DdlEffect[] => [
      ...(captured.has(from) ? [{ kind: 'gone' as const, table: from, reason: `RENAME TABLE to ${to}` }] : []),
      ...(captured.has(to) ? [{ kind: 'unknown' as const, table: to, reason: `RENAME TABLE ${from} to it` }] : []),
    ]);
  }

  if ((m = /^drop\s+(temporary\s+)?tables?\s+(?:if\s+exists\s+)?(.*?)(?:\s+(?:restrict|cascade))?\s*;?$/is.exec(text))) {
    if (m[1]) return [];
    return splitTopLevel((m[2] as string).replace(/\s+(?:wait\s+\d+|nowait)$/i, ''))
      .map((name) => qualify(name, database))
      .filter((table): table is string => table !== undefined && captured.has(table))
      .map((table) => ({ kind: 'gone', table, reason: 'DROP TABLE' }));
  }

  // MariaDB's CREATE OR REPLACE TABLE drops the table and creates it anew.
  if ((m = /^create\s+(or\s+replace\s+)?(temporary\s+)?table\s+(if\s+not\s+exists\s+)?(.*)$/is.exec(text))) {
    if (m[2]) return [];
    const named = QUALIFIED.exec(m[4] as string);
    const table = named && qualify(named[0], database);
    if (!named || !table || !captured.has(table)) return [];
    return [{ kind: 'create', table, ifNotExists: m[3] !== undefined, columns: createdColumns((m[4] as string).slice(named[0].length).trim(), defaultCharset) }];
  }

  if ((m = /^alter\s+(?:online\s+)?(?:ignore\s+)?table\s+(?:if\s+exists\s+)?(.*)$/is.exec(text))) {
    const named = QUALIFIED.exec(m[1] as string);
    const table = named && qualify(named[0], database);
    if (!named || !table) return [];
    const specs = splitTopLevel((m[1] as string).slice(named[0].length));
    // ALTER TABLE a RENAME [TO | AS] b: a is gone, b has a's columns (unknown here unless a was captured and known)
    const renameSpec = new RegExp(String.raw`^rename\s+(?:to\s+|as\s+)?(${IDENT}(?:\s*\.\s*${IDENT})?)$`, 'i');
    const renamedTo = specs.map((spec) => renameSpec.exec(spec)).find((r) => r && !/^(column|index|key)$/i.test(r[1] as string));
    const target = renamedTo ? qualify(renamedTo[1] as string, database) : undefined;
    if (target && target !== table) {
      return [
        ...(captured.has(table) ? [{ kind: 'gone' as const, table, reason: `ALTER TABLE ... RENAME TO ${target}` }] : []),
        ...(captured.has(target) ? [{ kind: 'unknown' as const, table: target, reason: `ALTER TABLE ${table} ... RENAME to it` }] : []),
      ];
    }
    if (!captured.has(table)) return [];
    const steps: Step[] = [];
    for (const spec of specs) {
      if (renameSpec.test(spec)) continue; // renamed to its own name
      const step = parseSpec(spec, defaultCharset);
      if (step === undefined) return [{ kind: 'unknown', table, reason: `ALTER TABLE specification not understood: ${spec.slice(0, 80)}` }];
      if (step) steps.push(step);
    }
    return [{ kind: 'columns', table, apply: (columns) => steps.reduce((cols, step) => step(cols), columns) }];
  }
  // TRUNCATE keeps the columns; anything else (DML, CREATE INDEX, views, ...) does not change them.
  return [];
}
