/**
 * Row changes logged as SQL instead of rows. A session with
 * `binlog_format=STATEMENT` (or MIXED, for statements the server deems
 * safe) writes its INSERT, UPDATE, DELETE... into the binlog as a QUERY
 * event: no row event ever follows, so a row-based reader that skipped it
 * would lose the change without a trace. This finds such statements and
 * the captured databases and tables they could change, erring towards
 * "could".
 */

/** A row-changing statement that could touch what the source captures. */
export interface StatementDml {
  /** `INSERT`, `REPLACE`, `UPDATE`, `DELETE`, `LOAD DATA`, `LOAD XML`; `SELECT`, `DO`, `WITH`, `CALL` (a stored routine that wrote rows). */
  verb: string;
  /** The tables it writes to (`db.table`), when they can be told. */
  targets?: string[];
  /** The captured databases it could change rows in (as `tables` spells them). */
  databases: string[];
  /** The captured tables of those databases: what to re-read after it. */
  tables: string[];
}

type Token = { kind: 'word' | 'ident' | 'string' | 'punct'; text: string };

const WORD = /[\w$\u0080-\uffff]+/y;
const SPACE = /\s/;

/**
 * SQL tokens, lazily (a statement may be megabytes of VALUES): comments
 * skipped (`/*! ... *\/` executable ones are SQL and kept), quoted strings
 * and `backquoted` identifiers as single tokens.
 */
function* tokenize(sql: string): Generator<Token> {
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i] as string;
    if (SPACE.test(c)) {
      i++;
    } else if (c === '#' || (c === '-' && sql[i + 1] === '-' && (i + 2 >= n || SPACE.test(sql[i + 2] as string)))) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const exec = /^\/\*M?!\d*/.exec(sql.slice(i, i + 12));
      if (exec) i += exec[0].length;
      else {
        const end = sql.indexOf('*/', i + 2);
        i = end < 0 ? n : end + 2;
      }
    } else if (c === '*' && sql[i + 1] === '/') {
      i += 2; // the end of an executable comment
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      let text = '';
      while (j < n) {
        const d = sql[j] as string;
        if (d === '\\' && c !== '`') {
          text += sql[j + 1] ?? '';
          j += 2;
        } else if (d === c && sql[j + 1] === c) {
          text += c;
          j += 2;
        } else if (d === c) break;
        else {
          text += d;
          j++;
        }
      }
      i = j + 1;
      yield { kind: c === '`' ? 'ident' : 'string', text };
    } else {
      WORD.lastIndex = i;
      const w = WORD.exec(sql);
      if (w) {
        i += w[0].length;
        yield { kind: 'word', text: w[0] };
      } else {
        i++;
        yield { kind: 'punct', text: c };
      }
    }
  }
}

/** A token stream with lookahead, over the lazy tokenizer. */
class Tokens {
  private readonly source: Generator<Token>;
  private readonly ahead: Token[] = [];

  constructor(sql: string) {
    this.source = tokenize(sql);
  }

  peek(k = 0): Token | undefined {
    while (this.ahead.length <= k) {
      const next = this.source.next();
      if (next.done) return undefined;
      this.ahead.push(next.value);
    }
    return this.ahead[k];
  }

  next(): Token | undefined {
    const t = this.peek();
    this.ahead.shift();
    return t;
  }

  /** The upper-cased keyword at `k`, or '' when that token is no bare word. */
  word(k = 0): string {
    const t = this.peek(k);
    return t?.kind === 'word' ? t.text.toUpperCase() : '';
  }

  skipWords(words: ReadonlySet<string>): void {
    while (words.has(this.word())) this.next();
  }

  /** `name` or `db.name` at the head, consumed; undefined when the head is not a name. */
  name(): { db?: string; table: string } | undefined {
    const first = this.peek();
    if (!isName(first)) return undefined;
    this.next();
    if (this.peek()?.text === '.' && isName(this.peek(1))) {
      this.next();
      return { db: first.text, table: (this.next() as Token).text };
    }
    return { table: first.text };
  }

  /** Skips a parenthesised group at the head (`PARTITION (p0, p1)`). */
  skipGroup(): void {
    if (this.peek()?.text !== '(') return;
    let depth = 0;
    for (let t = this.next(); t; t = this.next()) {
      if (t.kind !== 'punct') continue;
      if (t.text === '(') depth++;
      else if (t.text === ')' && --depth === 0) return;
    }
  }
}

function isName(t: Token | undefined): t is Token {
  return t !== undefined && (t.kind === 'ident' || t.kind === 'word');
}

const INSERT_MODIFIERS = new Set(['LOW_PRIORITY', 'DELAYED', 'HIGH_PRIORITY', 'IGNORE']);
const DELETE_MODIFIERS = new Set(['LOW_PRIORITY', 'QUICK', 'IGNORE', 'HISTORY']);
/** Words after a table name that are not its alias. */
const NOT_ALIAS = new Set([
  'SET', 'WHERE', 'ORDER', 'LIMIT', 'RETURNING', 'FOR', 'BEFORE', 'USING', 'PARTITION', 'JOIN', 'INNER', 'LEFT', 'RIGHT', 'CROSS', 'NATURAL',
  'STRAIGHT_JOIN', 'USE', 'FORCE', 'IGNORE', 'ON',
]);
/** What may follow the one table of a single-table DELETE. */
const DELETE_TAIL = new Set(['', 'WHERE', 'ORDER', 'LIMIT', 'RETURNING', 'FOR', 'BEFORE']);
/** Statements that change rows only through a stored function they call; the binlog logs such a call as `SELECT f()`. */
const ROUTINE_VERBS = new Set(['SELECT', 'DO', 'WITH', 'CALL']);

type Target = { db?: string; table: string };

/** Skips `[AS] alias` and `PARTITION (...)` after a table name. */
function skipAliasAndPartition(ts: Tokens): void {
  for (;;) {
    if (ts.word() === 'PARTITION') {
      ts.next();
      ts.skipGroup();
    } else if (ts.word() === 'AS') {
      ts.next();
      ts.next();
    } else if (isName(ts.peek()) && !NOT_ALIAS.has(ts.word())) {
      ts.next();
    } else return;
  }
}

/**
 * The verb and, when they can be told reliably, the target tables of a
 * row-changing statement; undefined for anything else (DDL, BEGIN, COMMIT,
 * XA, SAVEPOINT, SET, comments only).
 */
function parse(sql: string): { verb: string; targets: Target[] | undefined } | undefined {
  const ts = new Tokens(sql);
  const verb = ts.word();
  switch (verb) {
    case 'INSERT':
    case 'REPLACE': {
      ts.next();
      ts.skipWords(INSERT_MODIFIERS);
      if (ts.word() === 'INTO') ts.next();
      const target = ts.name();
      return { verb, targets: target ? [target] : undefined };
    }
    case 'UPDATE': {
      ts.next();
      ts.skipWords(INSERT_MODIFIERS);
      const target = ts.name();
      if (!target) return { verb, targets: undefined };
      skipAliasAndPartition(ts);
      // Anything but SET here is a join or a list of tables: a multi-table UPDATE, whose targets are in its SET.
      return { verb, targets: ts.word() === 'SET' ? [target] : undefined };
    }
    case 'DELETE': {
      ts.next();
      ts.skipWords(DELETE_MODIFIERS);
      // `DELETE t1, t2 FROM ...` names aliases before FROM: multi-table.
      if (ts.word() !== 'FROM') return { verb, targets: undefined };
      ts.next();
      const target = ts.name();
      if (!target) return { verb, targets: undefined };
      skipAliasAndPartition(ts);
      // `DELETE FROM t1, t2 USING ...` and joins are multi-table.
      return { verb, targets: DELETE_TAIL.has(ts.word()) && (ts.peek() === undefined || ts.peek()?.kind === 'word') ? [target] : undefined };
    }
    case 'LOAD': {
      const kind = ts.word(1);
      if (kind !== 'DATA' && kind !== 'XML') return undefined; // LOAD INDEX INTO CACHE changes no rows
      // LOAD DATA [LOW_PRIORITY | CONCURRENT] [LOCAL] INFILE 'file' [REPLACE | IGNORE] INTO TABLE name
      for (let t = ts.next(); t; t = ts.next()) {
        if (t.kind === 'word' && t.text.toUpperCase() === 'INTO' && ts.word() === 'TABLE') {
          ts.next();
          const target = ts.name();
          return { verb: `LOAD ${kind}`, targets: target ? [target] : undefined };
        }
      }
      return { verb: `LOAD ${kind}`, targets: undefined };
    }
    default:
      return ROUTINE_VERBS.has(verb) ? { verb, targets: undefined } : undefined;
  }
}

/** The first part of every dotted name in the statement (`db` of `db.table`, or a table or alias of `t.column`). */
function qualifiers(sql: string): Set<string> {
  const out = new Set<string>();
  let prev: Token | undefined;
  let beforePrev: Token | undefined;
  for (const t of tokenize(sql)) {
    if (isName(t) && prev?.text === '.' && prev.kind === 'punct' && isName(beforePrev)) out.add(beforePrev.text);
    beforePrev = prev;
    prev = t;
  }
  return out;
}

/**
 * Whether `sql`, a QUERY event's statement run with default database
 * `database`, changes rows that could belong to the captured `tables`
 * (`db.table`). Conservative, by database: when its target tables can be
 * told (`INSERT INTO x`, single-table UPDATE and DELETE, LOAD DATA), it
 * counts when one of them is in a captured database, whether or not that
 * table itself is captured: a trigger, a view or a foreign key can change a
 * captured table through it, and in statement format that change is logged
 * nowhere else. When they cannot be told (multi-table forms, a stored
 * function), it counts when its default database or any `db.` it names is
 * a captured one. Statements on databases Ferry does not capture never count.
 */
export function statementDml(sql: string, database: string, tables: readonly string[]): StatementDml | undefined {
  const parsed = parse(sql);
  if (!parsed) return undefined;
  const capturedDbs = new Map<string, string>();
  for (const t of tables) {
    const db = t.slice(0, t.indexOf('.'));
    capturedDbs.set(db.toLowerCase(), db);
  }
  // An unqualified name without a default database cannot be placed: not reliable.
  const targets = parsed.targets?.every((t) => t.db !== undefined || database !== '') ? parsed.targets.map((t) => ({ db: t.db ?? database, table: t.table })) : undefined;
  const candidates = targets ? targets.map((t) => t.db) : [database, ...qualifiers(sql)];
  const databases = [...new Set(candidates.map((d) => capturedDbs.get(d.toLowerCase())).filter((d): d is string => d !== undefined))];
  if (databases.length === 0) return undefined;
  const touched = new Set(databases.map((d) => d.toLowerCase()));
  return {
    verb: parsed.verb,
    ...(targets ? { targets: targets.map((t) => `${t.db}.${t.table}`) } : {}),
    databases,
    tables: tables.filter((t) => touched.has(t.slice(0, t.indexOf('.')).toLowerCase())),
  };
}

/** Most characters of a statement put into a message. */
const HEAD_CHARS = 100;

/**
 * The beginning of a statement for messages and logs: comments dropped,
 * string and number literals masked as `?` (a statement may carry
 * passwords or personal data), whitespace collapsed, cut at
 * {@link HEAD_CHARS}.
 */
export function statementHead(sql: string): string {
  const head = sql
    .slice(0, HEAD_CHARS * 20)
    .replace(LITERALS_AND_COMMENTS, (m) => (m.startsWith('`') ? m : m.startsWith('/*') || m.startsWith('#') || m.startsWith('--') ? ' ' : '?'))
    .replace(/\s+/g, ' ')
    .trim();
  return head.length > HEAD_CHARS ? `${head.slice(0, HEAD_CHARS)}…` : head;
}

/** In one pass, so that a quote inside a comment or a `#` inside a string is read as what it is; a literal cut off at the end is still masked. */
const LITERALS_AND_COMMENTS =
  /`(?:[^`]|``)*`?|'(?:[^'\\]|\\[\s\S]|'')*'?|"(?:[^"\\]|\\[\s\S]|"")*"?|\/\*(?!M?!)[\s\S]*?(?:\*\/|$)|(?:#|--(?=\s|$))[^\n]*|\b0x[0-9a-f]+\b|(?<![\w$.])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w$])/gi;
