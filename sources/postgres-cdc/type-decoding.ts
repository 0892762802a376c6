/**
 * Turns Postgres' text representation of a value (what `pgoutput` protocol
 * v1 sends, and what the snapshot reads with text type parsers) into the JSON
 * value a record carries. The stream and the snapshot go through this one
 * function, so a row looks the same whichever way it arrived.
 *
 * Choices (documented in docs/sources/postgres-cdc.md):
 * - exact numbers stay exact: `numeric`, `int8` and `money` are strings;
 * - `json`/`jsonb` are parsed; arrays become JSON arrays of decoded elements;
 * - `bytea` is base64; `timestamptz` is ISO 8601 in UTC with the
 *   microseconds Postgres has (the session runs with `TimeZone=UTC`);
 * - anything else (dates, times, intervals, uuid, enums, ranges...) is the
 *   Postgres text as is.
 */

export type Decoder = (text: string) => unknown;

const asString: Decoder = (t) => t;
const asInt: Decoder = (t) => Number.parseInt(t, 10);
const asFloat: Decoder = (t) => {
  const n = Number(t);
  // NaN and ±Infinity have no JSON form: keep Postgres' spelling.
  return Number.isFinite(n) ? n : t;
};
const asBool: Decoder = (t) => t === 't';
const asJson: Decoder = (t) => JSON.parse(t) as unknown;
const asBytea: Decoder = (t) =>
  t.startsWith('\\x') ? Buffer.from(t.slice(2), 'hex').toString('base64') : Buffer.from(t, 'latin1').toString('base64');
const asTimestamptz: Decoder = (t) => {
  // `2024-01-02 03:04:05.123456+00` (or `+05:30`) → `2024-01-02T03:04:05.123456Z`.
  const m = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)([+-]\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(t);
  if (!m) return t; // infinity, BC dates: as Postgres wrote them
  const offset = `${m[3]}:${m[4] ?? '00'}`;
  return `${m[1]}T${m[2]}${offset === '+00:00' ? 'Z' : offset}`;
};
const asTimestamp: Decoder = (t) => (/^\d{4,}-\d{2}-\d{2} \d/.test(t) ? t.replace(' ', 'T') : t);

/** Scalar types by OID (pg_type.oid of the built-in types). */
const SCALARS = new Map<number, Decoder>([
  [16, asBool],
  [17, asBytea],
  [20, asString], // int8: beyond 2^53, so a string
  [21, asInt],
  [23, asInt],
  [26, asInt],
  [114, asJson],
  [700, asFloat],
  [701, asFloat],
  [1114, asTimestamp],
  [1184, asTimestamptz],
  [1700, asString], // numeric: exact
  [3802, asJson],
]);

/** Array type OID → element type OID, for the built-in array types. */
const ARRAYS = new Map<number, number>([
  [1000, 16], [1001, 17], [1005, 21], [1007, 23], [1016, 20], [1021, 700], [1022, 701],
  [1231, 1700], [1009, 25], [1015, 1043], [1014, 1042], [2951, 2950], [1115, 1114],
  [1185, 1184], [1182, 1082], [199, 114], [3807, 3802], [1028, 26],
]);

/** Decodes one value of the given type OID from its text form. */
export function decodeValue(typeOid: number, text: string): unknown {
  return decoderFor(typeOid)(text);
}

/** The decoder of a type OID, looked up once per column rather than once per value (the stream's hot path). */
export function decoderFor(typeOid: number): Decoder {
  const scalar = SCALARS.get(typeOid);
  if (scalar) return scalar;
  const element = ARRAYS.get(typeOid);
  if (element === undefined) return asString;
  const decodeElement = SCALARS.get(element) ?? asString;
  return (text) => parseArray(text, decodeElement);
}

/**
 * Parses a Postgres array literal (`{1,2,NULL}`, `{{a,b},{"c d",e}}`), with an
 * optional dimension prefix (`[0:1]={...}`), into nested JSON arrays.
 */
export function parseArray(text: string, decodeElement: Decoder): unknown[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const parseLevel = (): unknown[] => {
    if (text[i] !== '{') throw new Error(`malformed array literal: ${text}`);
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(parseLevel());
      else if (text[i] === '"') {
        let value = '';
        i++;
        while (text[i] !== '"') {
          if (i >= text.length) throw new Error(`malformed array literal: ${text}`);
          if (text[i] === '\\') i++;
          value += text[i];
          i++;
        }
        i++;
        out.push(decodeElement(value));
      } else {
        const start = i;
        while (text[i] !== ',' && text[i] !== '}') {
          if (i >= text.length) throw new Error(`malformed array literal: ${text}`);
          i++;
        }
        const raw = text.slice(start, i);
        out.push(raw === 'NULL' ? null : decodeElement(raw));
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      }
    }
  };
  return parseLevel();
}
