import { FerryError } from './ferry-error.js';

/** One problem in a configuration or mapping file, located to file:line and field path. */
export interface ConfigProblem {
  file: string;
  line?: number;
  column?: number;
  /** JSON pointer-like path such as `pipelines[0].source.path`. */
  field: string;
  message: string;
}

/**
 * A configuration, mapping or contract file is wrong. Carries every problem
 * found, so `ferry check` can list them all at once. Exit code 2.
 */
export class ConfigError extends FerryError {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[], code: 'FERRY_CONFIG_INVALID' | 'FERRY_CONFIG_YAML' | 'FERRY_MAPPING_INVALID' | 'FERRY_CONTRACT_INVALID' | 'FERRY_CONFIG_NOT_FOUND' | 'FERRY_SECRET_UNRESOLVED' | 'FERRY_PLUGIN_UNKNOWN' = 'FERRY_CONFIG_INVALID') {
    const first = problems[0];
    super(code, problems.length === 1 && first ? first.message : `${problems.length} problems in configuration`, {
      where: first ? formatLocation(first) : undefined,
    });
    this.problems = problems;
  }

  override describe(): string {
    const lines = [`${this.code}: ${this.problems.length} problem(s)`];
    for (const p of this.problems) lines.push(`  ${formatLocation(p)}: ${p.message}`);
    if (this.fix) lines.push(`  fix: ${this.fix}`);
    return lines.join('\n');
  }
}

export function formatLocation(p: ConfigProblem): string {
  const pos = p.line === undefined ? p.file : `${p.file}:${p.line}${p.column === undefined ? '' : `:${p.column}`}`;
  return p.field ? `${pos} (${p.field})` : pos;
}
