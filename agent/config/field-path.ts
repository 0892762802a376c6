/** `["pipelines", 0, "sinks", 1, "url"]` → `pipelines[0].sinks[1].url`, the way problems name a field. */
export function fieldName(path: readonly (string | number)[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

/** An ajv instancePath (`/pipelines/0/sinks/1`) as path segments; array indices become numbers. */
export function pointerPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}
