import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { renderSchemas } from '../../agent/config/render-schemas.js';
import { SINKS, SOURCES } from '../../agent/registry.js';

const root = join(import.meta.dirname, '..', '..');
const STALE = 'is stale or missing: run npm run build && npm run schemas, and commit the result';

describe('generated schemas and config reference', () => {
  const rendered = renderSchemas();

  for (const [path, text] of rendered) {
    it(`${path} is up to date`, () => {
      const file = join(root, path);
      const committed = existsSync(file) ? readFileSync(file, 'utf8') : '';
      expect(committed === text, `${path} ${STALE}`).toBe(true);
    });
  }

  it('ferry.schema.json is a valid JSON Schema that knows every plugin', () => {
    const schema = JSON.parse(rendered.get('docs/schemas/ferry.schema.json')!);
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    const sinks = schema.properties.pipelines.items.properties.sinks.items;
    expect(sinks.properties.type.enum).toEqual(SINKS.map((s) => s.type));
    for (const p of [...SOURCES, ...SINKS]) expect(schema.definitions[`${p.kind}-${p.type}`]).toBeTruthy();
    // An editor flags a sink field the plugin does not know, and accepts the ones it does.
    const sinkErrors = (sink: Record<string, unknown>) => {
      validate({ pipelines: [{ name: 'p', source: { type: 'x' }, mappings: ['m.yaml'], sinks: [sink] }] });
      return (validate.errors ?? []).filter((e) => e.instancePath.startsWith('/pipelines/0/sinks/0'));
    };
    expect(sinkErrors({ name: 'a', type: 'file', path: 'out.jsonl' })).toEqual([]);
    expect(sinkErrors({ name: 'a', type: 'file', path: 'out.jsonl', pth: 'x' }).map((e) => e.params)).toContainEqual({ additionalProperty: 'pth' });
  });

  it('the reference documents every plugin field', () => {
    const md = rendered.get('docs/reference/config.md')!;
    for (const p of [...SOURCES, ...SINKS]) {
      expect(md).toContain(`## ${p.kind} \`${p.type}\``);
      for (const field of Object.keys(p.config.properties)) expect(md).toContain(`| \`${field}\` |`);
    }
    expect(md).toContain('| `partitions` | integer | `4` |');
  });
});
