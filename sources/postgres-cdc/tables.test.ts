import { describe, expect, it } from 'vitest';
import type { PublicationState } from './slot.js';
import { identityProblem, requireCapturableTables, type TableState } from './tables.js';

const keyless: TableState = { name: 'public.notes', exists: true, canSelect: true, identity: 'default', hasPrimaryKey: false, hasIdentity: false };
const keyed: TableState = { ...keyless, name: 'public.orders', hasPrimaryKey: true, hasIdentity: true };
const toCreate: PublicationState = { exists: false, missing: ['public.notes', 'public.orders'], publishesUpdatesOrDeletes: true };
const publishing: PublicationState = { exists: true, missing: [], publishesUpdatesOrDeletes: true };

describe('identityProblem', () => {
  it('stops a table without an identity wherever Postgres would refuse its updates and deletes', () => {
    expect(identityProblem(keyless, 'p', toCreate)).toMatch(/^in publication p, which Ferry would create, Postgres would refuse every UPDATE and DELETE/);
    expect(identityProblem(keyless, 'p', publishing)).toMatch(/^publication p publishes it, so Postgres already refuses/);
    expect(identityProblem(keyless, 'p', { ...publishing, missing: ['public.notes'] })).toMatch(/^added to publication p, it would make Postgres refuse/);
  });

  it('lets a table with an identity, or one in an inserts-only publication, be', () => {
    expect(identityProblem(keyed, 'p', toCreate)).toBeUndefined();
    expect(identityProblem(keyless, 'p', { ...publishing, publishesUpdatesOrDeletes: false })).toBeUndefined();
  });
});

describe('requireCapturableTables', () => {
  it('names missing tables as a config error before anything about identities', () => {
    const gone: TableState = { ...keyed, name: 'public.gone', exists: false };
    expect(() => requireCapturableTables([keyless, gone], 'p', toCreate, 'shop', 'db')).toThrow(
      expect.objectContaining({ code: 'FERRY_CONFIG_INVALID', message: expect.stringContaining('pipeline shop: table public.gone of source.tables does not exist') }),
    );
  });

  it('gives one ALTER TABLE per table without an identity', () => {
    const other: TableState = { ...keyless, name: 'public.log', identity: 'nothing' };
    expect(() => requireCapturableTables([keyless, keyed, other], 'p', toCreate, 'shop', 'db')).toThrow(
      expect.objectContaining({
        code: 'FERRY_PREFLIGHT_FAILED',
        fix: 'ALTER TABLE "public"."notes" REPLICA IDENTITY FULL; ALTER TABLE "public"."log" REPLICA IDENTITY FULL; -- or give each table a primary key; then start Ferry again.',
      }),
    );
  });
});
