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

/** What a DDL statement does to one captured table. */
export type DdlEffect =
  | { kind: 'columns'; table: string; apply(columns: HistoryColumn[]): HistoryColumn[] }
  | { kind: 'unknown'; table: string; reason: string }
  | { kind: 'none' };

const IDENT = String.raw`(?:\x60(?:[^\x60]|\x60\x60)+\x60|[\w$]+)`;
const QUALIFIED = new RegExp(String.raw`^(${IDENT})(?:\s*\.\s*(${IDENT}))?`);

export function unquote(id: string): string {
  return id.startsWith('`') ? id.slice(1, -1).replace(/``/g, '`') : id;
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

/** `name type ... [FIRST | AFTER other]` → the column and where it goes. */
function parseColumnDef(text: string, defaultCharset: string): { column: HistoryColumn; first: boolean; after?: string } | undefined {
  const m = new RegExp(String.raw`^(${IDENT})\s+(\w+)\s*(\([^)]*\))?\s*(unsigned)?`, 'i').exec(text);
  if (!m) return undefined;
  const type = `${(m[2] as string).toLowerCase()}${m[3] ? m[3].replace(/\s+/g, '') : ''}${m[4] ? ' unsigned' : ''}`;
  const charsetMatch = /\b(?:character\s+set|charset)\s+(\w+)/i.exec(text);
  const charset = TEXT_TYPES.test(type) ? (charsetMatch?.[1] ?? defaultCharset).toLowerCase() : null;
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

/**
 * What `sql` (a QUERY event's statement, run with default database
 * `database`) does to the captured tables. Statements on other tables and
 * non-DDL statements are `none`.
 */
export function ddlEffect(sql: string, database: string, captured: ReadonlySet<string>, defaultCharset = 'utf8mb4'): DdlEffect {
  const text = sql.replace(/\/\*(?!!)[\s\S]*?\*\//g, ' ').replace(/\s+/g, ' ').trim();
  const head = /^(alter|create|drop|rename|truncate)\s+(?:online\s+|ignore\s+|temporary\s+)*(table|tables)?\s*(?:if\s+(?:not\s+)?exists\s+)?/i.exec(text);
  if (!head) return { kind: 'none' };
  const rest = text.slice(head[0].length);
  const name = QUALIFIED.exec(rest);
  if (!name) return { kind: 'none' };
  const table = name[2] ? `${unquote(name[1] as string)}.${unquote(name[2])}` : `${database}.${unquote(name[1] as string)}`;
  const verb = (head[1] as string).toLowerCase();
  if (!captured.has(table)) {
    // RENAME TABLE a TO shop.orders / ALTER TABLE a RENAME TO shop.orders replace a captured table
    const target = new RegExp(String.raw`\bto\s+(${IDENT})(?:\s*\.\s*(${IDENT}))?`, 'i').exec(rest);
    const renamedTo = target && (target[2] ? `${unquote(target[1] as string)}.${unquote(target[2])}` : `${database}.${unquote(target[1] as string)}`);
    if ((verb === 'rename' || verb === 'alter') && renamedTo && captured.has(renamedTo)) return { kind: 'unknown', table: renamedTo, reason: 'another table was renamed to it' };
    return { kind: 'none' };
  }
  if (verb === 'truncate') return { kind: 'none' };
  if (verb !== 'alter') return { kind: 'unknown', table, reason: `${verb.toUpperCase()} TABLE` };
  const steps: Step[] = [];
  for (const spec of splitTopLevel(rest.slice(name[0].length))) {
    const step = parseSpec(spec, defaultCharset);
    if (step === undefined) return { kind: 'unknown', table, reason: `ALTER TABLE specification not understood: ${spec.slice(0, 80)}` };
    if (step) steps.push(step);
  }
  return { kind: 'columns', table, apply: (columns) => steps.reduce((cols, step) => step(cols), columns) };
}
