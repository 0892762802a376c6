import { describe, expect, it } from 'vitest';
import { FerryError } from '../../agent/errors/index.js';
import type { ViewConfig } from './config.js';
import type { Column } from './dialects/dialect.js';
import { pageSql, type SqlSpelling } from './dialects/sql.js';
import { snapshotCondition, snapshotTargets } from './snapshot.js';

const mysqlLike: SqlSpelling = {
  quote: (id) => `\`${id}\``,
  orderExpression: (c) => `\`${c.name}\``,
  param: (value, _column, params) => {
    params.push(value);
    return '?';
  },
};
const id: Column = { name: 'id', kind: 'number', utc: false };
const views: ViewConfig[] = [
  { name: 'erp.v_a', mode: 'diff', key: ['id'] },
  { name: 'erp.v_b', mode: 'diff', key: ['id'] },
];

describe('ferry snapshot for db-poll', () => {
  it('puts --where after every placeholder, on lines of its own', () => {
    const { sql, params } = pageSql({ view: 'erp.v_a', orderBy: [id], after: [10], where: "name <> 'a?b' -- note", limit: 5 }, mysqlLike);
    expect(params).toEqual([10]);
    expect(sql).toBe("SELECT * FROM `erp`.`v_a` WHERE `id` IS NOT NULL AND (`id`) > (?) AND (\nname <> 'a?b' -- note\n) ORDER BY `id` LIMIT 5");
  });

  it('refuses a condition with ";" and ignores an empty one', () => {
    expect(() => snapshotCondition('id > 1; DROP TABLE x')).toThrow(FerryError);
    expect(() => snapshotCondition("name = 'a;b'")).toThrow(/without ";"/);
    expect(snapshotCondition('  ')).toBeUndefined();
    expect(snapshotCondition('id > 1')).toBe('id > 1');
  });

  it('takes every view by default, the named ones in the order given, and names the views for an unknown one', () => {
    expect(snapshotTargets(views, undefined).map(([i, v]) => [i, v.name])).toEqual([
      [0, 'erp.v_a'],
      [1, 'erp.v_b'],
    ]);
    expect(snapshotTargets(views, ['erp.v_b']).map(([i]) => i)).toEqual([1]);
    const unknown = (() => {
      try {
        snapshotTargets(views, ['erp.v_c']);
      } catch (e) {
        return e as FerryError;
      }
    })();
    expect(unknown?.code).toBe('FERRY_USAGE');
    expect(unknown?.fix).toMatch(/erp\.v_a, erp\.v_b/);
  });
});
