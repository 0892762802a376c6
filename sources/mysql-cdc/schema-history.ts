import type { ColumnSchema, TableMapEvent } from '@vlasky/zongji';
import { FerryError } from '../../agent/errors/index.js';
import { noColumnNamesFix } from './errors.js';
import { RowDecoder, type ColumnDef } from './type-decoding.js';

/** One version of a table's columns, and where in the binlog it was first seen. */
export interface TableVersion {
  table: string;
  columns: ColumnDef[];
  since: string;
  decoder: RowDecoder;
}

/**
 * Which columns each row event has, as of the moment it was written.
 *
 * Row events carry values, not names. With `binlog_row_metadata=FULL` every
 * TABLE_MAP event (written before the row events of each statement) carries
 * the table's column names, types, signedness and ENUM/SET labels as of that
 * statement, so the binlog itself is the schema history: a row written
 * before an `ALTER TABLE` decodes against the old columns, one after it
 * against the new, whatever position Ferry resumes from and whatever the
 * table looks like now. Without that metadata zongji gets the columns from
 * ColumnHistory (the DDL-driven history, see column-history.ts) instead.
 * Either way this class turns each TABLE_MAP into the decoder for the row
 * events that follow it.
 */
export class SchemaHistory {
  private readonly byTableId = new Map<number, TableVersion>();
  private readonly latest = new Map<string, TableVersion>();

  /** `pipeline` names the stored position the fix of a missing column name deletes. */
  constructor(private readonly pipeline?: string) {}

  /**
   * Records the columns a TABLE_MAP was decoded with (`schemas`, as taken on arrival). Returns the version when it
   * differs from the one seen before for that table (a DDL happened), so the
   * caller can log it.
   */
  observe(ev: TableMapEvent, schemas: ColumnSchema[] | undefined, position: string): TableVersion | undefined {
    const table = `${ev.schemaName}.${ev.tableName}`;
    if (!schemas || schemas.length !== ev.columnCount) {
      throw new FerryError('FERRY_PREFLIGHT_FAILED', `no column names for ${table} at ${position}; decoding could shift values into the wrong fields`, {
        where: `${table} @ ${position}`,
        fix: noColumnNamesFix(this.pipeline),
      });
    }
    const columns = schemas.map((c) => ({ name: c.COLUMN_NAME, type: c.COLUMN_TYPE }));
    const known = this.latest.get(table);
    let version = known;
    if (!known || !sameColumns(known.columns, columns)) {
      version = { table, columns, since: position, decoder: new RowDecoder(columns) };
      this.latest.set(table, version);
    }
    this.byTableId.set(ev.tableId, version as TableVersion);
    return known && version !== known ? version : undefined;
  }

  /** The columns of the table a row event refers to (set by the TABLE_MAP just before it). */
  forTableId(tableId: number): TableVersion | undefined {
    return this.byTableId.get(tableId);
  }
}

function sameColumns(a: ColumnDef[], b: ColumnDef[]): boolean {
  return a.length === b.length && a.every((c, i) => c.name === b[i]?.name && c.type === b[i]?.type);
}
