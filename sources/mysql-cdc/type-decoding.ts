/**
 * One column as the decoder needs it: its name and its SQL type as MySQL
 * writes it (`bigint(20) unsigned`, `datetime(3)`, `decimal(12,2)`...), from
 * information_schema for the snapshot and from the binlog TABLE_MAP for the
 * stream. Both paths go through `normalizeRow`, so a snapshot row and a
 * streamed row of the same data are equal.
 */
export interface ColumnDef {
  name: string;
  type: string;
}

type Decoder = (value: unknown) => unknown;

/**
 * How each SQL type becomes JSON, the same for MySQL and MariaDB:
 * - BIGINT (signed or not) and DECIMAL: exact decimal strings, never floats.
 * - DATETIME: the wall-clock value as stored, `2024-01-02T03:04:05.678`, no
 *   zone (DATETIME has none; the server's zone is stated in the docs).
 * - TIMESTAMP: an instant in UTC, `2024-01-02T03:04:05.123456Z`.
 * - BIT(1): boolean; wider BIT: an unsigned integer (string beyond 2^53).
 * - BLOB/BINARY and anything else that arrives as bytes: base64.
 * - JSON (MariaDB stores it as LONGTEXT): the JSON text, unchanged, so
 *   numbers inside keep their exact digits.
 * - ENUM: the label; SET: the labels joined by commas, as MySQL prints them.
 */
function decoderFor(sqlType: string): Decoder {
  const t = sqlType.toLowerCase();
  if (t.startsWith('bigint') || t.startsWith('decimal') || t.startsWith('numeric')) return (v) => String(v);
  if (t.startsWith('datetime')) return (v) => (typeof v === 'string' ? v.replace(' ', 'T') : v);
  if (t.startsWith('timestamp')) return (v) => (typeof v === 'string' ? `${v.replace(' ', 'T')}Z` : v);
  if (t.startsWith('bit')) return t === 'bit(1)' ? (v) => bitValue(v) === 1n : (v) => safeInteger(bitValue(v));
  if (t === 'json') return (v) => (typeof v === 'string' || Buffer.isBuffer(v) ? String(v) : JSON.stringify(v));
  return (v) => (Buffer.isBuffer(v) ? v.toString('base64') : v);
}

function bitValue(v: unknown): bigint {
  if (Buffer.isBuffer(v)) return v.length === 0 ? 0n : BigInt(`0x${v.toString('hex')}`);
  return BigInt(v as number | string);
}

function safeInteger(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** Decodes rows of one table shape; build once per table version, reuse for every row. */
export class RowDecoder {
  private readonly names: string[];
  private readonly decoders: Decoder[];

  constructor(readonly columns: readonly ColumnDef[]) {
    this.names = columns.map((c) => c.name);
    this.decoders = columns.map((c) => decoderFor(c.type));
  }

  /** The row with every value in its JSON form; NULL stays null. */
  decode(row: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    // index loop: called once per row and column, the source's hottest path
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i] as string;
      const v = row[name];
      out[name] = v === null || v === undefined ? null : (this.decoders[i] as Decoder)(v);
    }
    return out;
  }
}
