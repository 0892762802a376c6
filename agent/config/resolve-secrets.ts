import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** `${env:NAME}` or `${file:/path}`, alone or inside a longer string (a URL, say). */
const REFERENCE = /\$\{(env|file):([^}]*)\}/g;

export interface SecretProblem {
  path: (string | number)[];
  /** Names the reference, never its value. */
  message: string;
}

export interface ResolvedSecrets {
  /** Every value a reference resolved to: the logger redacts them. */
  values: string[];
  /** Paths of the strings that held a reference: their values must never be quoted in messages. */
  paths: (string | number)[][];
  problems: SecretProblem[];
}

/**
 * Replaces, in place, every `${env:NAME}` and `${file:PATH}` reference in the
 * string values of `root`. A file path is relative to `baseDir`; one trailing
 * newline of a secret file is dropped (editors add it). Problems name the
 * reference and never a value.
 */
export function resolveSecrets(root: unknown, env: NodeJS.ProcessEnv, baseDir: string): ResolvedSecrets {
  const out: ResolvedSecrets = { values: [], paths: [], problems: [] };

  const resolveString = (s: string, path: (string | number)[]): string => {
    if (!s.includes('${')) return s;
    let held = false;
    const result = s.replace(REFERENCE, (ref, kind: string, name: string) => {
      held = true;
      const value = kind === 'env' ? fromEnv(name, env) : fromFile(name, baseDir);
      if (typeof value !== 'string') {
        out.problems.push({ path, message: `${ref} cannot be resolved: ${value.why} — ${value.fix}` });
        return ref;
      }
      if (value) out.values.push(value);
      return value;
    });
    if (held) out.paths.push(path);
    return result;
  };

  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === 'string') return resolveString(node, path);
    if (Array.isArray(node)) {
      node.forEach((v, i) => (node[i] = walk(v, [...path, i])));
    } else if (node && typeof node === 'object') {
      const obj = node as Record<string, unknown>;
      for (const k of Object.keys(obj)) obj[k] = walk(obj[k], [...path, k]);
    }
    return node;
  };
  walk(root, []);
  return out;
}

type Unresolved = { why: string; fix: string };

function fromEnv(name: string, env: NodeJS.ProcessEnv): string | Unresolved {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { why: 'not a valid environment variable name', fix: 'use letters, digits and _' };
  const v = env[name];
  if (v === undefined) return { why: `the environment variable ${name} is not set`, fix: `export ${name} in the agent's environment (e.g. the systemd unit's EnvironmentFile)` };
  return v;
}

function fromFile(name: string, baseDir: string): string | Unresolved {
  if (!name) return { why: 'no file named', fix: 'write ${file:/path/to/secret}' };
  const path = resolve(baseDir, name);
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${path} does not exist` : code === 'EACCES' ? `${path} is not readable by this user` : `${path} cannot be read (${code ?? 'error'})`;
    return { why, fix: 'create the file, or make it readable by the user the agent runs as' };
  }
}
