import { Type, type Static } from '@sinclair/typebox';

// Members of a union carry no `default` (ajv ignores them there, and strict mode refuses them):
// their defaults are said in the description and applied by the code.

const encoding = Type.Optional(Type.String({
  description: 'Character encoding of the file, any iconv-lite name (utf-8, windows-1252, iso-8859-15, cp850...). The bytes are decoded before parsing. Default: utf-8.',
  examples: ['windows-1252'],
}));

export const CsvFormatSchema = Type.Object(
  {
    type: Type.Literal('csv', { description: 'Delimited text, parsed with csv-parse.' }),
    delimiter: Type.Optional(Type.String({ description: 'Field delimiter. Default: ,.', minLength: 1, examples: [';'] })),
    quote: Type.Optional(Type.String({ description: 'Quote character around fields that contain the delimiter or line breaks. Default: ".', minLength: 1, maxLength: 1 })),
    escape: Type.Optional(Type.String({ description: 'Escape character for a quote inside a quoted field. Default: ".', minLength: 1, maxLength: 1 })),
    header: Type.Optional(
      Type.Boolean({ description: 'The first line holds the column names (used as record keys). Default: true without `columns`, false with them (set it to true to skip a header line that `columns` replaces).' }),
    ),
    columns: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Explicit column names, for files without a header line (or to replace it: then set `header: true` to skip the header line).',
        minItems: 1,
        examples: [['KUNDE_NR', 'NAME', 'STATUS']],
      }),
    ),
    bom: Type.Optional(Type.Boolean({ description: 'Strip a leading byte-order mark. Default: true.' })),
    encoding,
    skipEmptyLines: Type.Optional(Type.Boolean({ description: 'Ignore empty lines instead of reporting them. Default: true.' })),
    relaxColumnCount: Type.Optional(Type.Boolean({ description: 'Accept rows with more or fewer fields than columns instead of reporting them as invalid. Default: false.' })),
  },
  { additionalProperties: false, description: 'CSV format.' },
);

export const JsonlFormatSchema = Type.Object(
  {
    type: Type.Literal('jsonl', { description: 'JSON lines: one JSON object per line.' }),
    encoding,
  },
  { additionalProperties: false, description: 'JSON lines format.' },
);

export const FixedWidthColumnSchema = Type.Object(
  {
    name: Type.String({ description: 'Field name (the record key).', minLength: 1 }),
    start: Type.Integer({ description: 'First character of the field, counting from 1 (as record layouts print it).', minimum: 1 }),
    length: Type.Integer({ description: 'Number of characters.', minimum: 1 }),
  },
  { additionalProperties: false },
);

export const FixedWidthFormatSchema = Type.Object(
  {
    type: Type.Literal('fixed-width', { description: 'Fixed-width text: each field at a fixed character position of the line.' }),
    columns: Type.Array(FixedWidthColumnSchema, { description: 'The record layout.', minItems: 1 }),
    trim: Type.Optional(Type.Boolean({ description: 'Remove the padding spaces around each value. Default: true.' })),
    skipEmptyLines: Type.Optional(Type.Boolean({ description: 'Ignore empty lines instead of reporting them. Default: true.' })),
    encoding,
  },
  { additionalProperties: false, description: 'Fixed-width format.' },
);

export const FileDropConfigSchema = Type.Object(
  {
    type: Type.Literal('file-drop', { description: 'Flat files dropped in a local folder.' }),
    path: Type.String({ description: 'The drop folder, relative to the configuration file.', minLength: 1, examples: ['./inbox'] }),
    pattern: Type.Optional(
      Type.String({ description: 'Glob on the file name (`*`, `?`, `[abc]`, `{a,b}`); default: every file. Hidden files (starting with `.`) and marker files are never read.', minLength: 1, examples: ['*.csv', 'kunden_*.{csv,txt}'] }),
    ),
    format: Type.Union([CsvFormatSchema, JsonlFormatSchema, FixedWidthFormatSchema], {
      description: 'How the files are parsed: `{ type: csv, ... }`, `{ type: jsonl }` or `{ type: fixed-width, columns: [...] }`.',
    }),
    complete: Type.Union(
      [
        Type.Object(
          { minAgeMs: Type.Integer({ description: 'A file is complete once its size and modification time have not changed for this long.', minimum: 0 }) },
          { additionalProperties: false },
        ),
        Type.Object(
          { marker: Type.String({ description: 'A file X is complete when X followed by this suffix exists (e.g. `kunden.csv.done`). The marker is moved or removed with the file.', minLength: 1, examples: ['.done'] }) },
          { additionalProperties: false },
        ),
      ],
      { description: 'When a file counts as completely written: `{ minAgeMs: 500 }` or `{ marker: ".done" }`.', default: { minAgeMs: 500 } },
    ),
    archive: Type.Optional(Type.String({ description: 'Folder processed files are moved to, relative to the configuration file. Without it they stay and are remembered by content hash.', minLength: 1, examples: ['./archive'] })),
    errors: Type.Optional(Type.String({ description: 'Folder unreadable files are moved to, with FILE.error.txt beside each saying why. Without it they stay where they are.', minLength: 1, examples: ['./errors'] })),
    batchSize: Type.Integer({ description: 'Records per batch handed to the pipeline.', minimum: 1, maximum: 100_000, default: 200 }),
  },
  { additionalProperties: false, description: 'The file-drop source: reads CSV, JSON lines or fixed-width files dropped in a local folder.' },
);

export type FileDropConfig = Static<typeof FileDropConfigSchema>;
export type FileFormat = FileDropConfig['format'];
export type CsvFormat = Static<typeof CsvFormatSchema>;
export type JsonlFormat = Static<typeof JsonlFormatSchema>;
export type FixedWidthFormat = Static<typeof FixedWidthFormatSchema>;
