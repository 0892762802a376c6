import { pino, type Logger } from 'pino';

/**
 * Paths pino blanks in every log line. Config values that may hold a secret
 * are resolved from ${env:}/${file:} references and never logged; these paths
 * are the belt to that brace.
 */
export const REDACT_PATHS = [
  'password', '*.password', 'secret', '*.secret', 'token', '*.token', 'connection', '*.connection',
  'url', '*.url', 'redis', '*.redis', 'headers.authorization', '*.headers.authorization', 'config.*',
];

/**
 * JSON lines on stderr (fd 2), so stdout stays free for the `stdout` sink and command output.
 * `secrets` are values resolved from ${env:}/${file:} references (`secretValues(config)`):
 * wherever one appears in a line, whatever the field, it is replaced by `[redacted]`.
 */
export function createLogger(level: string = 'info', fd: number = 2, secrets: readonly string[] = []): Logger {
  const redactSecrets = secretRedactor(secrets);
  return pino(
    {
      level,
      base: { app: 'ferry' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      ...(redactSecrets ? { hooks: { streamWrite: redactSecrets } } : {}),
    },
    pino.destination({ dest: fd, sync: true }),
  );
}

/**
 * Replaces every secret value in a serialised log line. Values are matched as
 * they appear inside a JSON string (escaped); the longest first, so a secret
 * that contains another is blanked whole.
 */
export function secretRedactor(secrets: readonly string[]): ((line: string) => string) | undefined {
  // Values under 4 characters (a port, a flag) would blank ordinary text and numbers everywhere.
  const escaped = [...new Set(secrets.filter((s) => s.length >= 4).map((s) => JSON.stringify(s).slice(1, -1)))].sort((a, b) => b.length - a.length);
  if (!escaped.length) return undefined;
  const pattern = new RegExp(escaped.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return (line) => line.replace(pattern, '[redacted]');
}

/** Strips user:password from a URL before it goes into a message or log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
