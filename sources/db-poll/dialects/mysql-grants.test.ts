import { describe, expect, it } from 'vitest';
import { isoTime } from '../row-hash.js';
import { parseGrant } from './mysql.js';

describe('MySQL grant parsing', () => {
  it('reads privileges, object and grantee of a GRANT line', () => {
    expect(parseGrant('GRANT SELECT, INSERT, UPDATE ON `erp`.`v_open_orders` TO `reader`@`%`')).toMatchObject({
      privileges: ['SELECT', 'INSERT', 'UPDATE'],
      database: '`erp`',
      table: '`v_open_orders`',
      grantee: '`reader`@`%`',
    });
    expect(parseGrant("GRANT ALL PRIVILEGES ON *.* TO 'root'@'localhost' WITH GRANT OPTION")).toMatchObject({ privileges: ['ALL PRIVILEGES'], database: '*', table: '*' });
    expect(parseGrant('GRANT SELECT (a, b), UPDATE (c) ON `erp`.`t` TO `u`@`%`')?.privileges).toEqual(['SELECT', 'UPDATE']);
    expect(parseGrant('GRANT `reporting` TO `u`@`%`')).toBeUndefined();
  });
});

describe('event times', () => {
  it('turns database time text into ISO-8601', () => {
    expect(isoTime('2024-01-31 10:00:00.123456+00', false)).toBe('2024-01-31T10:00:00.123456Z');
    expect(isoTime('2024-01-31 10:00:00', true)).toBe('2024-01-31T10:00:00Z');
    expect(isoTime('2024-01-31 10:00:00', false)).toBe('2024-01-31T10:00:00');
    expect(isoTime('2024-01-31', true)).toBe('2024-01-31');
  });
});
