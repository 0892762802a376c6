import { describe, expect, it } from 'vitest';
import { isoTime } from '../row-hash.js';
import { parseGrant, parseRoleGrant, sameAccount } from './mysql-grants.js';

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

  it('never quotes the password hash MariaDB puts into a grant line', () => {
    const line = "GRANT ALL PRIVILEGES ON *.* TO `admin`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122' WITH GRANT OPTION";
    expect(parseGrant(line)).toMatchObject({ privileges: ['ALL PRIVILEGES'], grantee: '`admin`@`%`', text: 'GRANT ALL PRIVILEGES ON *.* TO `admin`@`%` WITH GRANT OPTION' });
  });

  it('reads role lines of MariaDB and MySQL, and tells the user from the roles', () => {
    expect(parseRoleGrant('GRANT `ferry_writer` TO `reader`@`%`')).toEqual({ roles: ['`ferry_writer`'], grantee: '`reader`@`%`' });
    expect(parseRoleGrant('GRANT `nested` TO `ferry_writer`')).toEqual({ roles: ['`nested`'], grantee: '`ferry_writer`' });
    expect(parseRoleGrant('GRANT `r1`@`%`,`r2`@`localhost` TO `u`@`%` WITH ADMIN OPTION')).toEqual({ roles: ['`r1`@`%`', '`r2`@`localhost`'], grantee: '`u`@`%`' });
    expect(parseRoleGrant('GRANT SELECT ON `erp`.* TO `u`@`%`')).toBeUndefined();
    expect(sameAccount('`reader`@`%`', 'reader@%')).toBe(true);
    expect(sameAccount("'re``ader'@'10.0.0.%'", 're``ader@10.0.0.%')).toBe(true);
    expect(sameAccount('`ferry_writer`', 'reader@%')).toBe(false);
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
