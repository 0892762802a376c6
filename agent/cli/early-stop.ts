/**
 * A service manager may stop `ferry run` at any moment, also while it is
 * still loading its modules and config. Imported first by the CLI, this
 * catches SIGTERM/SIGINT from the very start of `ferry run`, so such a stop
 * ends in an orderly exit 0 instead of death by signal. Other commands keep
 * the default behaviour (a signal ends them at once).
 */
export const earlyStop = new AbortController();

const onEarlySignal = (): void => earlyStop.abort();

if (process.argv[2] === 'run') process.on('SIGTERM', onEarlySignal).on('SIGINT', onEarlySignal);

/** Hands signal handling over to the running agent. */
export function disarmEarlyStop(): void {
  process.off('SIGTERM', onEarlySignal).off('SIGINT', onEarlySignal);
}
