import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * The mapping file (`mappings/*.yaml`), declared once. The TypeScript type, the
 * ajv validation in `load-mappings.ts` and `docs/schemas/mapping.schema.json`
 * (for editors) all come from this declaration. Every object is closed
 * (`additionalProperties: false`) so a typo'd key is an error, not a silently
 * ignored option. See docs/mappings.md for the user guide.
 */

const Scalar = (description: string): TSchema =>
  Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description });

const ScalarList = (description: string) => Type.Array(Type.Union([Type.String(), Type.Number(), Type.Boolean()]), { description });

/** A record filter: one condition on a source field, or `all`/`any`/`not` of filters. */
export const FilterSchema = Type.Recursive(
  (This) =>
    Type.Object(
      {
        field: Type.Optional(Type.String({ minLength: 1, description: 'The source field the condition tests (as the source names it, e.g. STATUS).' })),
        in: Type.Optional(ScalarList('Keep the record when the field equals one of these values (compared as text).')),
        notIn: Type.Optional(ScalarList('Keep the record when the field equals none of these values (compared as text); a missing field passes.')),
        equals: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean()], { description: 'Keep the record when the field equals this value (compared as text).' })),
        notEquals: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean()], { description: 'Keep the record when the field differs from this value (compared as text).' })),
        exists: Type.Optional(Type.Boolean({ description: 'true: keep the record when the field is present and not empty; false: when it is missing or empty.' })),
        matches: Type.Optional(Type.String({ minLength: 1, description: 'Keep the record when the field (as text) matches this regular expression (JavaScript syntax, not anchored: use ^ and $).' })),
        all: Type.Optional(Type.Array(This, { minItems: 1, description: 'Keep the record when every filter in the list keeps it.' })),
        any: Type.Optional(Type.Array(This, { minItems: 1, description: 'Keep the record when at least one filter in the list keeps it.' })),
        not: Type.Optional({ ...This, description: 'Keep the record when this filter rejects it.' } as typeof This),
      },
      { additionalProperties: false, description: 'Either `field` with exactly one condition (in, notIn, equals, notEquals, exists, matches), or exactly one of all, any, not.' },
    ),
  { $id: 'MappingFilter', title: 'Record filter' },
);

export const MatchSchema = Type.Object(
  {
    table: Type.Optional(Type.String({ minLength: 1, description: 'Table or view name as the source reports it: `schema.table` (Postgres), `database.table` (MySQL), the view name (db-poll). Glob wildcards * ? [..] {a,b} allowed.', examples: ['public.kunden'] })),
    file: Type.Optional(Type.String({ minLength: 1, description: 'Glob matched against the base name of the file the record comes from (file-drop). Wildcards * ? [..] {a,b}.', examples: ['kunden_*.csv'] })),
    script: Type.Optional(Type.String({ minLength: 1, description: 'Name of the RPA script that emits the record (rpa source). Glob wildcards allowed.', examples: ['legacy-orders'] })),
  },
  { additionalProperties: false, minProperties: 1, maxProperties: 1, description: 'Which records this mapping applies to: exactly one of table, file, script.' },
);

export const FieldTypes = ['string', 'integer', 'decimal', 'boolean', 'date', 'timestamp', 'json'] as const;

export const FieldSchema = Type.Object(
  {
    from: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
        description: 'The source field, or a list of source fields whose values are joined with `join` (missing and empty parts are skipped).',
      }),
    ),
    join: Type.Optional(Type.String({ description: 'Separator placed between the values of a `from` list. Default: a single space.', default: ' ' })),
    const: Type.Optional(Scalar('A constant value for every record, instead of `from`.')),
    type: Type.Optional(
      Type.Union(
        FieldTypes.map((t) => Type.Literal(t)),
        { description: 'Cast of the value: string (default), integer, decimal (exact, kept as a string such as "1234.50"), boolean, date (ISO "2024-01-31"), timestamp (ISO 8601 UTC "...Z"), json (the source\'s JSON value as is: an object stays an object).', default: 'string' },
      ),
    ),
    format: Type.Optional(
      Type.String({ minLength: 1, description: 'date and timestamp only: the legacy format in Luxon tokens, e.g. dd.MM.yyyy or dd.MM.yyyy HH:mm:ss. Default: ISO 8601.', examples: ['dd.MM.yyyy'] }),
    ),
    timeZone: Type.Optional(
      Type.String({ minLength: 1, description: 'timestamp only: IANA time zone of legacy local times, e.g. Europe/Berlin. Default: UTC. A value that carries its own offset keeps it.', examples: ['Europe/Berlin'] }),
    ),
    decimalSeparator: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'decimal only: the decimal mark of the source, e.g. ",". Default: ".".' })),
    thousandsSeparator: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'decimal and integer only: a grouping mark to drop, e.g. "." in 1.234,50. Default: none.' })),
    trueValues: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'boolean only: texts meaning true (case-insensitive). Default: true, t, yes, y, ja, j, 1, x.' })),
    falseValues: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'boolean only: texts meaning false (case-insensitive). Default: false, f, no, n, nein, 0.' })),
    trim: Type.Optional(Type.Boolean({ description: 'Remove leading and trailing white space (fixed-width and CHAR columns pad values). Default: false.', default: false })),
    case: Type.Optional(Type.Union([Type.Literal('lower'), Type.Literal('upper'), Type.Literal('title')], { description: 'Change the letter case of a text value (before `map`, so a code table can be case-insensitive).' })),
    map: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), {
        description: 'Code table: source value → canonical value, e.g. { A: active, I: inactive }. A value not in the table takes `default`, or is a violation when there is none.',
      }),
    ),
    default: Type.Optional(Scalar('The value used when the source value is missing or empty (or, with `map`, not in the code table). Used as written, not cast.')),
    nullIf: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String())], { description: 'Source texts (after trim) that mean "no value" and give null, e.g. "" or "00.00.0000". null is not replaced by `default`.' }),
    ),
    required: Type.Optional(Type.Boolean({ description: 'A missing or empty value (with no default) is a violation. Default: false, which gives null.', default: false })),
  },
  { additionalProperties: false, description: 'One canonical field: where its value comes from and how it is cleaned and cast.' },
);

export const MappingFileSchema = Type.Object(
  {
    entity: Type.String({ pattern: '^[a-z][a-z0-9_-]*$', description: 'The canonical entity the records become, e.g. customer. Event types are ENTITY.created|updated|deleted|snapshot|truncated.', examples: ['customer'] }),
    contract: Type.String({ minLength: 1, description: 'Path of the JSON Schema contract the mapped data must match, relative to this mapping file, e.g. contracts/customer.v1.schema.json.', examples: ['contracts/customer.v1.schema.json'] }),
    description: Type.Optional(Type.String({ description: 'Free text for people reading the mapping.' })),
    match: MatchSchema,
    key: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Canonical fields that identify the entity. The event subject is their values in order; events with the same key stay in order.' }),
    filter: Type.Optional(FilterSchema),
    fields: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), FieldSchema, {
      minProperties: 1,
      additionalProperties: false,
      description: 'The canonical fields of the event data, in output order. Names: letters, digits and _, not starting with a digit.',
    }),
  },
  { additionalProperties: false, $id: 'https://ferry.dev/schemas/mapping.schema.json', title: 'Ferry mapping file', description: 'Turns source records into canonical, contract-checked events. No code is executed.' },
);

export type MappingFile = Static<typeof MappingFileSchema>;
export type FieldSpec = Static<typeof FieldSchema>;
export type FilterSpec = Static<typeof FilterSchema>;
export type MatchSpec = Static<typeof MatchSchema>;
export type FieldType = (typeof FieldTypes)[number];
