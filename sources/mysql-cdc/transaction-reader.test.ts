import type { AnyBinlogEvent, ColumnSchema } from '@vlasky/zongji';
import { describe, expect, it } from 'vitest';
import { SchemaHistory } from './schema-history.js';
import { TransactionReader } from './transaction-reader.js';

/**
 * XA event sequences no server here writes: MySQL 8's (an `XA START` query
 * opens the group, an XA_PREPARE event ends it, and `XA COMMIT ... ONE
 * PHASE` is an XA_PREPARE event with `onePhase` set), and MariaDB's with
 * the XA_PREPARE event handed over. test/integration/mysql-cdc-xa.test.ts
 * covers MariaDB as the source reads it, on the real server. The events
 * are shaped as zongji 0.9 hands them out.
 */
const XID = "X'7831',X'',1";
const COLUMNS = [{ COLUMN_NAME: 'id', COLUMN_TYPE: 'int(11)' }] as ColumnSchema[];

function binlog() {
  let pos = 4;
  const reader = new TransactionReader({ file: 'binlog.000001', pos }, 19, new SchemaHistory(), new Set(['shop.t']), undefined);
  const feed = (name: string, fields: Record<string, unknown> = {}): number => {
    pos += 100;
    reader.handle({ getEventName: () => name, nextPosition: pos, size: 81, timestamp: 0, ...fields } as unknown as AnyBinlogEvent, name === 'tablemap' ? COLUMNS : undefined);
    return pos;
  };
  const insert = (id: number) => {
    feed('tablemap', { tableId: 7, schemaName: 'shop', tableName: 't', columnCount: 1 });
    feed('writerows', { tableId: 7, rows: [{ id }] });
  };
  const xaPrepare = (onePhase: boolean) => feed('xaprepare', { onePhase, xidFormatId: 1, xidGtrid: Buffer.from('x1'), xidBqual: Buffer.alloc(0) });
  return { reader, feed, insert, xaPrepare };
}

describe('TransactionReader, XA transactions', () => {
  it('holds a prepared XA transaction and the position before it until its XA COMMIT', () => {
    const { reader, feed, insert, xaPrepare } = binlog();
    const before = feed('gtid', { gtid: 'u:1' }) - 100;
    feed('query', { query: `XA START ${XID}`, schema: 'shop' });
    insert(1);
    feed('query', { query: `XA END ${XID}`, schema: 'shop' });
    xaPrepare(false);
    feed('gtid', { gtid: 'u:2' });
    feed('query', { query: 'BEGIN', schema: 'shop' });
    insert(2);
    feed('xid');
    expect(reader.take(500).map((r) => r.data.id)).toEqual([2]);
    expect(reader.committed.pos).toBe(before);

    feed('gtid', { gtid: 'u:3' });
    const end = feed('query', { query: `XA COMMIT ${XID}`, schema: 'shop' });
    const released = reader.take(500);
    expect(released.map((r) => [r.data.id, r.txid])).toEqual([[1, 'u:3']]);
    expect(reader.committed.pos).toBe(end);
  });

  it('reads MariaDB\'s XA groups the same whether or not the XA_PREPARE event is handed over', () => {
    for (const delivered of [false, true]) {
      const { reader, feed, insert, xaPrepare } = binlog();
      const xa = { xidFormatId: 1, xidGtrid: Buffer.from('x1'), xidBqual: Buffer.alloc(0) };
      const before = feed('mariadbgtid', { gtid: '0-1-1', standalone: false, preparedXa: true, ...xa }) - 100;
      insert(1);
      feed('query', { query: `XA END ${XID}`, schema: 'shop' });
      if (delivered) xaPrepare(false);
      feed('mariadbgtid', { gtid: '0-1-2', standalone: false });
      insert(2);
      feed('xid');
      expect(reader.take(500).map((r) => r.data.id)).toEqual([2]);
      expect(reader.committed.pos).toBe(before);
      feed('mariadbgtid', { gtid: '0-1-3', standalone: true, completedXa: true, ...xa });
      const end = feed('query', { query: `XA ROLLBACK ${XID}`, schema: 'shop' });
      expect(reader.take(500)).toEqual([]);
      expect(reader.committed.pos).toBe(end);
    }
  });

  it('emits an XA COMMIT ... ONE PHASE at its XA_PREPARE event', () => {
    const { reader, feed, insert, xaPrepare } = binlog();
    feed('gtid', { gtid: 'u:1' });
    feed('query', { query: `XA START ${XID}`, schema: 'shop' });
    insert(1);
    feed('query', { query: `XA END ${XID}`, schema: 'shop' });
    const end = xaPrepare(true);
    expect(reader.take(500).map((r) => [r.data.id, r.txid])).toEqual([[1, 'u:1']]);
    expect(reader.committed.pos).toBe(end);
  });
});
