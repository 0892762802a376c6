import { describe, expect, it } from 'vitest';
import { ddlEffect, splitTopLevel, type HistoryColumn } from './ddl.js';

const captured = new Set(['shop.orders']);
const cols = (...names: string[]): HistoryColumn[] => names.map((name) => ({ name, type: 'int', charset: null }));
const names = (sql: string, start = cols('id', 'a', 'b')): string[] => {
  const e = ddlEffect(sql, 'shop', captured);
  if (e.kind !== 'columns') throw new Error(`expected columns, got ${JSON.stringify(e)}`);
  return e.apply(start).map((c) => c.name);
};

describe('ddlEffect', () => {
  it('applies ADD, DROP, CHANGE, MODIFY and RENAME COLUMN in order, with FIRST and AFTER', () => {
    expect(names('ALTER TABLE orders ADD COLUMN c INT')).toEqual(['id', 'a', 'b', 'c']);
    expect(names('alter table `shop`.`orders` add `c` varchar(10) character set latin1 first')).toEqual(['c', 'id', 'a', 'b']);
    expect(names('ALTER TABLE shop.orders ADD c DECIMAL(10, 2) NOT NULL DEFAULT 0 AFTER id, DROP COLUMN b')).toEqual(['id', 'c', 'a']);
    expect(names('ALTER TABLE orders CHANGE COLUMN a amount BIGINT UNSIGNED')).toEqual(['id', 'amount', 'b']);
    expect(names('ALTER TABLE orders MODIFY b TEXT AFTER id')).toEqual(['id', 'b', 'a']);
    expect(names('ALTER TABLE orders RENAME COLUMN b TO c, ADD INDEX (a), ENGINE=InnoDB')).toEqual(['id', 'a', 'c']);
  });

  it('keeps types and character sets for decoding', () => {
    const e = ddlEffect("ALTER TABLE orders ADD note VARCHAR(20) CHARACTER SET latin1, ADD big BIGINT(20) UNSIGNED, ADD d DECIMAL(10,2)", 'shop', captured);
    expect(e.kind === 'columns' && e.apply([]).map((c) => [c.type, c.charset])).toEqual([
      ['varchar(20)', 'latin1'],
      ['bigint(20) unsigned', null],
      ['decimal(10,2)', null],
    ]);
  });

  it('ignores statements on other tables and non-DDL', () => {
    expect(ddlEffect('ALTER TABLE customers ADD c INT', 'shop', captured).kind).toBe('none');
    expect(ddlEffect('ALTER TABLE other.orders ADD c INT', 'shop', captured).kind).toBe('none');
    expect(ddlEffect('INSERT INTO orders VALUES (1)', 'shop', captured).kind).toBe('none');
    expect(ddlEffect('TRUNCATE TABLE orders', 'shop', captured).kind).toBe('none');
  });

  it('makes the columns unknown for what it cannot follow, instead of guessing', () => {
    expect(ddlEffect('ALTER TABLE orders ADD (c INT, d INT)', 'shop', captured)).toMatchObject({ kind: 'unknown', table: 'shop.orders' });
    expect(ddlEffect('ALTER TABLE orders CONVERT TO CHARACTER SET utf8mb4', 'shop', captured).kind).toBe('unknown');
    expect(ddlEffect('DROP TABLE IF EXISTS orders', 'shop', captured).kind).toBe('unknown');
    expect(ddlEffect('CREATE TABLE shop.orders (id INT)', 'x', captured).kind).toBe('unknown');
    expect(ddlEffect('RENAME TABLE shop.orders_new TO shop.orders', 'x', captured)).toMatchObject({ kind: 'unknown', table: 'shop.orders' });
    const e = ddlEffect('ALTER TABLE orders DROP COLUMN nope', 'shop', captured);
    expect(() => e.kind === 'columns' && e.apply(cols('id'))).toThrow(/no column nope/);
  });
});

describe('splitTopLevel', () => {
  it('splits at commas outside parentheses and quotes', () => {
    expect(splitTopLevel("ADD a DECIMAL(10,2) DEFAULT '1,5', DROP b")).toEqual(["ADD a DECIMAL(10,2) DEFAULT '1,5'", 'DROP b']);
  });
});
