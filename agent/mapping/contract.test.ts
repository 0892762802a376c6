import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contractId, contractUri, contractViolations, loadContract } from './contract.js';
import type { Violation } from './types.js';

describe('contractUri (the event dataschema)', () => {
  it('is a URN from the file name alone, whatever folder the contract sits in', () => {
    expect(contractUri('/etc/ferry/mappings/contracts/customer.v1.schema.json', {})).toBe('urn:ferry:contract:customer:v1');
    expect(contractUri('contracts/customer.v1.schema.json', {})).toBe('urn:ferry:contract:customer:v1');
    expect(contractUri('order.v12.json', {})).toBe('urn:ferry:contract:order:v12');
    expect(contractUri('customer.address.v2.schema.json', {})).toBe('urn:ferry:contract:customer.address:v2');
    expect(contractUri('lookup.schema.json', {})).toBe('urn:ferry:contract:lookup');
    expect(contractUri('Kunden Stamm:alt.v1.schema.json', {})).toBe('urn:ferry:contract:Kunden%20Stamm%3Aalt:v1');
  });

  it("is the schema's own $id when that is an absolute URI, without an empty fragment", () => {
    expect(contractUri('customer.v1.schema.json', { $id: 'https://hub.example/schemas/customer/v1' })).toBe('https://hub.example/schemas/customer/v1');
    expect(contractUri('customer.v1.schema.json', { $id: 'http://hub.example/customer.v1.json#' })).toBe('http://hub.example/customer.v1.json');
    expect(contractUri('customer.v1.schema.json', { $id: 'urn:acme:customer:1' })).toBe('urn:acme:customer:1');
  });

  it('falls back to the file name for an $id that is not an absolute URI', () => {
    for (const $id of ['customer/v1', '/schemas/customer.json', 'https://hub.example/c.json#v1', '#customer', '', 'https://hub example/c', 42]) {
      expect(contractUri('customer.v1.schema.json', { $id }), String($id)).toBe('urn:ferry:contract:customer:v1');
    }
  });

  it('leaves the human contract id (dead letters, messages) as it was', () => {
    expect(contractId('customer.v1.schema.json', {})).toBe('customer/v1');
    expect(contractId('x.schema.json', { $id: 'https://hub.example/x' })).toBe('https://hub.example/x');
  });
});

describe('contractViolations', () => {
  it('names the field a dependentRequired error misses, and excuses only the missing fields it is told were not sent', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'ferry-contract-')), 'doc.v1.schema.json');
    await writeFile(
      file,
      JSON.stringify({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        required: ['id', 'payload', 'meta'],
        properties: { id: { type: 'integer' }, payload: { type: 'object' }, notes: { type: 'string' }, meta: { type: 'object', required: ['payload'] } },
        dependentRequired: { notes: ['payload'] },
      }),
    );
    const contract = await loadContract(file);
    const violations = (data: Record<string, unknown>, unchanged?: string[]) => {
      expect(contract.validate(data)).toBe(false);
      const out: Violation[] = [];
      contractViolations(contract, data, undefined, out, unchanged);
      return out;
    };
    const data = { id: 'x', notes: 'n', meta: {} };
    expect(violations(data)).toEqual([
      { field: 'payload', message: 'is required by the contract but missing' },
      { field: 'id', message: '"x" is not of type integer' },
      { field: 'meta.payload', message: 'is required by the contract but missing' },
      { field: 'payload', message: 'is required by the contract when notes is present, but missing' },
    ]);
    // Only top-level absence of the named fields is excused: a nested property of the same name and other errors stay.
    expect(violations(data, ['payload'])).toEqual([
      { field: 'id', message: '"x" is not of type integer' },
      { field: 'meta.payload', message: 'is required by the contract but missing' },
    ]);
  });
});
