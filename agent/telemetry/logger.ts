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

/** JSON lines on stderr (fd 2), so stdout stays free for the `stdout` sink and command output. */
export function createLogger(level: string = 'info', fd: number = 2): Logger {
  return pino(
    { level, base: { app: 'ferry' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: fd, sync: true }),
  );
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
