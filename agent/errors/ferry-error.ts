import { ERROR_CODES, type ErrorCode } from './codes.js';

/**
 * Base of every error Ferry raises on purpose.
 *
 * `code` is stable (listed in `docs/errors.md`, held there by a test) so that
 * operators can search for it; `where` names the file, line, field, table or
 * record the error is about; `fix` tells the user what to do. Messages never
 * carry a secret: callers pass only redacted values.
 */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly where: string | undefined;
  readonly fix: string | undefined;

  constructor(code: ErrorCode, message: string, options: { where?: string; fix?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.where = options.where;
    this.fix = options.fix ?? ERROR_CODES[code].fix;
  }

  /** One paragraph for a terminal: what, where, how to fix. */
  describe(): string {
    const lines = [`${this.code}: ${this.message}`];
    if (this.where) lines.push(`  at ${this.where}`);
    if (this.fix) lines.push(`  fix: ${this.fix}`);
    return lines.join('\n');
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, where: this.where, fix: this.fix };
  }
}
