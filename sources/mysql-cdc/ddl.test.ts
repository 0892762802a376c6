import { describe, expect, it } from 'vitest';
import { ddlEffects, splitTopLevel, type DdlEffect, type HistoryColumn } from './ddl.js';

const captured = new Set(['shop.orders', 'shop.customers']);
const cols = (...names: string[]): HistoryColumn[] => names.map((name) => ({ name, type: 'int', charset: null }));
const effects = (sql: string, database = 'shop'): DdlEffect[] => ddlEffects(sql, database, captured);
const one = (sql: string, database = 'shop'): DdlEffect => {
  const e = effects(sql, database);
  if (e.length !== 1) throw new Error(`expected one effect, got ${JSON.stringify(e)}`);
  return e[0] as DdlEffect;
};
const names = (sql: string, start = cols('id', 'a', 'b')): string[] => {
  const e = one(sql);
  if (e.kind !== 'columns') throw new Error(`expected columns, got ${JSON.stringify(e)}`);
  return e.apply(start).map((c) => c.name);
};
/** The columns a CREATE TABLE defines, as [name, type, charset]. */
const created = (sql: string, database = 'shop'): unknown => {
  const e = one(sql, database);
  if (e.kind !== 'create') throw new Error(`expected create, got ${JSON.stringify(e)}`);
  return Array.isArray(e.columns) ? e.columns.map((c) => [c.name, c.type, c.charset]) : e.columns;
};

describe('ddlEffects: ALTER TABLE', () => {
  it('applies ADD, DROP, CHANGE, MODIFY and RENAME COLUMN in order, with FIRST and AFTER', () => {
    expect(names('ALTER TABLE orders ADD COLUMN c INT')).toEqual(['id', 'a', 'b', 'c']);
    expect(names('alter table `shop`.`orders` add `c` varchar(10) character set latin1 first')).toEqual(['c', 'id', 'a', 'b']);
    expect(names('ALTER TABLE shop.orders ADD c DECIMAL(10, 2) NOT NULL DEFAULT 0 AFTER id, DROP COLUMN b')).toEqual(['id', 'c', 'a']);
    expect(names('ALTER TABLE orders CHANGE COLUMN a amount BIGINT UNSIGNED')).toEqual(['id', 'amount', 'b']);
    expect(names('ALTER TABLE orders MODIFY b TEXT AFTER id')).toEqual(['id', 'b', 'a']);
    expect(names('ALTER TABLE orders RENAME COLUMN b TO c, ADD INDEX (a), ENGINE=InnoDB')).toEqual(['id', 'a', 'c']);
    expect(names('ALTER TABLE IF EXISTS orders ADD c INT')).toEqual(['id', 'a', 'b', 'c']);
  });

  it('keeps types and character sets for decoding, a collation naming its character set', () => {
    const e = one("ALTER TABLE orders ADD note VARCHAR(20) CHARACTER SET latin1, ADD big BIGINT(20) UNSIGNED, ADD d DECIMAL(10,2), ADD t TEXT COLLATE latin1_bin");
    expect(e.kind === 'columns' && e.apply([]).map((c) => [c.type, c.charset])).toEqual([
      ['varchar(20)', 'latin1'],
      ['bigint(20) unsigned', null],
      ['decimal(10,2)', null],
      ['text', 'latin1'],
    ]);
  });

  it('makes the columns unknown for what it cannot follow, instead of guessing', () => {
    expect(one('ALTER TABLE orders ADD (c INT, d INT)')).toMatchObject({ kind: 'unknown', table: 'shop.orders' });
    expect(one('ALTER TABLE orders CONVERT TO CHARACTER SET utf8mb4').kind).toBe('unknown');
    const e = one('ALTER TABLE orders DROP COLUMN nope');
    expect(() => e.kind === 'columns' && e.apply(cols('id'))).toThrow(/no column nope/);
  });

  it('follows ALTER TABLE ... RENAME [TO | AS] to and from a captured table', () => {
    expect(effects('ALTER TABLE orders_new RENAME TO orders')).toMatchObject([{ kind: 'unknown', table: 'shop.orders' }]);
    expect(effects('ALTER TABLE `shop`.`orders` RENAME AS `shop`.`orders_old`')).toMatchObject([{ kind: 'gone', table: 'shop.orders' }]);
    expect(effects('ALTER TABLE orders RENAME customers')).toMatchObject([
      { kind: 'gone', table: 'shop.orders' },
      { kind: 'unknown', table: 'shop.customers' },
    ]);
  });
});

describe('ddlEffects: CREATE TABLE', () => {
  it("reads MariaDB's CREATE OR REPLACE TABLE as the table created anew with exactly its columns", () => {
    expect(created('CREATE OR REPLACE TABLE shop.orders (id INT NOT NULL PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(20))', 'other')).toEqual([
      ['id', 'int', null],
      ['total', 'decimal(10,2)', null],
      ['note', 'varchar(20)', 'utf8mb4'],
    ]);
    expect(one('create or replace table orders (id int)')).toMatchObject({ kind: 'create', table: 'shop.orders', ifNotExists: false });
  });

  it('reads backquoted and `db`.`t` names, IF NOT EXISTS, and a name followed directly by its column list', () => {
    expect(one('CREATE TABLE `shop`.`orders` (`id` INT, `key` INT)', 'x')).toMatchObject({ kind: 'create', table: 'shop.orders', columns: cols('id', 'key') });
    expect(one('CREATE TABLE IF NOT EXISTS `orders`(id INT)')).toMatchObject({ kind: 'create', table: 'shop.orders', ifNotExists: true, columns: cols('id') });
    expect(one('CREATE TABLE IF NOT EXISTS shop . orders (id INT)', 'x')).toMatchObject({ kind: 'create', table: 'shop.orders', ifNotExists: true });
    expect(effects('CREATE TABLE `other`.`orders` (id INT)')).toEqual([]);
  });

  it('skips keys and constraints, and takes the table character set for text columns', () => {
    const sql =
      "CREATE TABLE orders (id INT UNSIGNED NOT NULL AUTO_INCREMENT, code CHAR(3), label VARCHAR(20) CHARACTER SET utf8mb4 COMMENT 'a, b', " +
      'PRIMARY KEY (id), UNIQUE KEY uk (code), KEY k (label), CONSTRAINT fk FOREIGN KEY (code) REFERENCES c (code), CHECK (id > 0)) ' +
      'ENGINE=InnoDB DEFAULT CHARSET=latin1';
    expect(created(sql)).toEqual([
      ['id', 'int unsigned', null],
      ['code', 'char(3)', 'latin1'],
      ['label', 'varchar(20)', 'utf8mb4'],
    ]);
    expect(created('CREATE TABLE orders (note TEXT) COLLATE=latin1_swedish_ci')).toEqual([['note', 'text', 'latin1']]);
  });

  it('says why when the columns cannot be told from the statement', () => {
    expect(created('CREATE TABLE orders LIKE orders_template')).toEqual({ unknown: expect.stringMatching(/without a column list/) });
    expect(created('CREATE TABLE orders (LIKE orders_template)')).toEqual({ unknown: 'CREATE TABLE ... LIKE' });
    expect(created('CREATE TABLE orders AS SELECT * FROM orders_old')).toEqual({ unknown: expect.stringMatching(/without a column list/) });
    expect(created('CREATE TABLE orders (id INT PRIMARY KEY) SELECT id, total FROM orders_old')).toEqual({ unknown: 'CREATE TABLE ... SELECT' });
  });

  it('ignores temporary tables (row-based logging writes none of their rows) and other objects', () => {
    expect(effects('CREATE TEMPORARY TABLE orders (id INT)')).toEqual([]);
    expect(effects('CREATE OR REPLACE TEMPORARY TABLE orders (id INT)')).toEqual([]);
    expect(effects('DROP TEMPORARY TABLE IF EXISTS orders')).toEqual([]);
    expect(effects('CREATE OR REPLACE VIEW orders_v AS SELECT * FROM orders')).toEqual([]);
    expect(effects('CREATE INDEX i ON orders (id)')).toEqual([]);
  });
});

describe('ddlEffects: DROP, RENAME, and what does not change columns', () => {
  it('drops every captured table a DROP TABLE lists, not only the first', () => {
    expect(effects('DROP TABLE IF EXISTS `shop`.`audit`, `shop`.`orders` /* generated by server */')).toEqual([{ kind: 'gone', table: 'shop.orders', reason: 'DROP TABLE' }]);
    expect(effects('DROP TABLE customers, orders CASCADE').map((e) => e.table)).toEqual(['shop.customers', 'shop.orders']);
    expect(effects('DROP DATABASE IF EXISTS `shop`', 'x').map((e) => [e.kind, e.table])).toEqual([
      ['gone', 'shop.orders'],
      ['gone', 'shop.customers'],
    ]);
  });

  it('follows every pair of a RENAME TABLE, the swap of online schema change tools included', () => {
    expect(effects('RENAME TABLE shop.a TO shop.b, shop.orders_new TO shop.orders', 'x')).toMatchObject([{ kind: 'unknown', table: 'shop.orders' }]);
    expect(effects('RENAME TABLE `shop`.`orders` TO `shop`.`_orders_del`, `shop`.`_orders_gho` TO `shop`.`orders`')).toMatchObject([
      { kind: 'gone', table: 'shop.orders' },
      { kind: 'unknown', table: 'shop.orders' },
    ]);
  });

  it('ignores statements on other tables and non-DDL', () => {
    expect(effects('ALTER TABLE audit ADD c INT')).toEqual([]);
    expect(effects('ALTER TABLE other.orders ADD c INT')).toEqual([]);
    expect(effects('INSERT INTO orders VALUES (1)')).toEqual([]);
    expect(effects('TRUNCATE TABLE orders')).toEqual([]);
    expect(effects('DROP TABLE other.orders')).toEqual([]);
  });
});

describe('splitTopLevel', () => {
  it('splits at commas outside parentheses and quotes', () => {
    expect(splitTopLevel("ADD a DECIMAL(10,2) DEFAULT '1,5', DROP b")).toEqual(["ADD a DECIMAL(10,2) DEFAULT '1,5'", 'DROP b']);
  });
});
