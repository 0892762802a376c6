import { describe, expect, it } from 'vitest';
import { statementDml, statementHead } from './statement-dml.js';

const tables = ['shop.orders', 'shop.customers', 'crm.contacts'];
const dml = (sql: string, database = 'shop') => statementDml(sql, database, tables);
const verb = (sql: string, database = 'shop') => dml(sql, database)?.verb;

describe('statementDml', () => {
  it('finds every row-changing form, in any case, after leading comments and whitespace', () => {
    expect(verb('INSERT INTO orders VALUES (1)')).toBe('INSERT');
    expect(verb('  \n\tinsert low_priority ignore into orders (id) values (1)')).toBe('INSERT');
    expect(verb('/* app: billing */ -- note\n# another\nUpdate orders SET a = 1')).toBe('UPDATE');
    expect(verb('DELETE FROM orders WHERE id = 1')).toBe('DELETE');
    expect(verb('replace delayed orders values (1)')).toBe('REPLACE');
    expect(verb("LOAD DATA LOCAL INFILE '/tmp/x.csv' IGNORE INTO TABLE `orders` FIELDS TERMINATED BY ','")).toBe('LOAD DATA');
    expect(verb("load xml infile 'x.xml' into table orders")).toBe('LOAD XML');
    expect(verb('INSERT INTO orders SELECT * FROM staging.orders')).toBe('INSERT');
    expect(verb('UPDATE orders o JOIN customers c ON c.id = o.customer SET o.name = c.name')).toBe('UPDATE');
    expect(verb('DELETE o, c FROM orders o JOIN customers c ON c.id = o.customer')).toBe('DELETE');
    expect(verb('DELETE FROM orders, customers USING orders JOIN customers')).toBe('DELETE');
    expect(verb('/*!40000 INSERT INTO orders VALUES (1) */')).toBe('INSERT');
    // a stored function that wrote rows is logged as the SELECT that called it
    expect(verb('SELECT `shop`.`bump_stock`(7)')).toBe('SELECT');
  });

  it('ignores what changes no rows: transaction control, XA, savepoints, DDL, SET, comments, LOAD INDEX', () => {
    for (const sql of [
      'BEGIN', 'COMMIT', 'ROLLBACK', "XA START X'01'", 'XA END X\'01\'', 'XA PREPARE X\'01\'', 'XA COMMIT X\'01\'', 'SAVEPOINT `s1`',
      'ROLLBACK TO SAVEPOINT s1', 'RELEASE SAVEPOINT s1', 'ALTER TABLE orders ADD COLUMN c INT', 'CREATE TABLE orders2 (id INT)', 'TRUNCATE TABLE orders',
      'DROP TABLE orders', "CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW INSERT INTO customers VALUES (1)", 'FLUSH TABLES',
      "GRANT SELECT ON shop.* TO 'u'@'%'", '# Dummy event replacing event type 160 that slave cannot handle.', 'LOAD INDEX INTO CACHE orders', '',
    ]) {
      expect(dml(sql), sql).toBeUndefined();
    }
  });

  it('counts a statement whose targets are in a captured database, captured table or not, and names them', () => {
    expect(dml('INSERT INTO orders VALUES (1)')).toEqual({ verb: 'INSERT', targets: ['shop.orders'], databases: ['shop'], tables: ['shop.orders', 'shop.customers'] });
    // a trigger or a view can reach a captured table from another table of its database
    expect(dml('UPDATE shop.audit SET x = 1', 'other')).toMatchObject({ targets: ['shop.audit'], databases: ['shop'] });
    expect(dml('DELETE FROM `crm`.`contacts` WHERE id = 1', '')).toMatchObject({ targets: ['crm.contacts'], databases: ['crm'], tables: ['crm.contacts'] });
    expect(dml("LOAD DATA INFILE '/tmp/*.csv' INTO TABLE crm.contacts", 'other')).toMatchObject({ verb: 'LOAD DATA', targets: ['crm.contacts'] });
    // database names compare without case, as the conservative side
    expect(dml('insert into SHOP.orders values (1)', 'other')).toMatchObject({ databases: ['shop'] });
  });

  it('never counts a statement whose targets are all in databases Ferry does not capture', () => {
    expect(dml('INSERT INTO t VALUES (1)', 'other')).toBeUndefined();
    expect(dml('UPDATE other.t SET x = 1')).toBeUndefined(); // default database shop, target elsewhere
    expect(dml('INSERT INTO other.t SELECT * FROM shop.orders')).toBeUndefined(); // reads shop, writes other
    expect(dml('DELETE FROM other.t WHERE id IN (SELECT id FROM shop.orders)')).toBeUndefined();
    expect(dml('REPLACE INTO percona.checksums SELECT 1 FROM shop.orders', 'shop')).toBeUndefined();
    expect(dml('SELECT f(1)', 'other')).toBeUndefined();
  });

  it('when the targets cannot be told, counts the default database and every database the statement names', () => {
    expect(dml('UPDATE a JOIN b ON a.id = b.id SET a.x = b.x', 'shop')).toEqual({ verb: 'UPDATE', databases: ['shop'], tables: ['shop.orders', 'shop.customers'] });
    expect(dml('UPDATE other.a JOIN crm.contacts c ON a.id = c.id SET a.x = c.x', 'other')).toMatchObject({ databases: ['crm'], tables: ['crm.contacts'] });
    expect(dml('DELETE a FROM other.a JOIN other.b USING (id)', 'other')).toBeUndefined();
    expect(dml('UPDATE a, b SET a.x = 1', '')).toBeUndefined();
    expect(dml('SELECT shop.bump(1)', 'other')).toMatchObject({ verb: 'SELECT', databases: ['shop'] });
    // names inside strings are not references
    expect(dml("UPDATE a JOIN b SET a.note = 'shop.orders'", 'other')).toBeUndefined();
    // an unqualified target without a default database cannot be placed: treated as not known
    expect(dml('INSERT INTO orders VALUES (1)', '')).toBeUndefined();
  });
});

describe('statementHead', () => {
  it('masks string and number literals, drops comments, collapses whitespace and cuts long statements', () => {
    expect(statementHead("INSERT INTO `users`  (name, pw)\n VALUES ('alice', 's3cr#t'), (\"bob\", 'it''s'), (x'00ff', 0x1F, -12.5e3)")).toBe(
      'INSERT INTO `users` (name, pw) VALUES (?, ?), (?, ?), (x?, ?, -?)',
    );
    expect(statementHead("UPDATE t2 SET a = 'x' /* token: abc */ WHERE id = 42 -- 99\n AND b = 'y")).toBe('UPDATE t2 SET a = ? WHERE id = ? AND b = ?');
    const long = statementHead(`INSERT INTO t VALUES ${Array.from({ length: 500 }, (_, i) => `(${i}, 'secret${i}')`).join(', ')}`);
    expect(long.length).toBe(101);
    expect(long.endsWith('…')).toBe(true);
    expect(long).not.toMatch(/secret|\d/);
  });
});
