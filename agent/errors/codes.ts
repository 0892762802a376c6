/**
 * The catalog of every error code Ferry can report. `docs/errors.md` lists the
 * same codes; `test/unit/error-catalog.test.ts` fails when the two drift.
 *
 * `exit` is the process exit code a command uses when this error ends it:
 * 2 for bad input or configuration a user can fix, 1 for runtime failures.
 */
export const ERROR_CODES = {
  FERRY_CONFIG_INVALID: { exit: 2, fix: 'Correct the field named in the message; `ferry check --config FILE` lists every problem at once.' },
  FERRY_CONFIG_NOT_FOUND: { exit: 2, fix: 'Pass an existing file with --config.' },
  FERRY_CONFIG_YAML: { exit: 2, fix: 'Fix the YAML syntax at the line shown.' },
  FERRY_SECRET_UNRESOLVED: { exit: 2, fix: 'Export the environment variable or create the file the ${env:...}/${file:...} reference names.' },
  FERRY_PLUGIN_UNKNOWN: { exit: 2, fix: 'Use one of the source or sink types listed in the message.' },
  FERRY_MAPPING_INVALID: { exit: 2, fix: 'Correct the mapping file at the line shown; see docs/mappings.md.' },
  FERRY_CONTRACT_INVALID: { exit: 2, fix: 'The contract must be a valid JSON Schema; see docs/mappings.md.' },
  FERRY_CONTRACT_VIOLATION: { exit: 1, fix: 'Fix the source data or the mapping, then `ferry dlq replay`.' },
  FERRY_MAPPING_NO_MATCH: { exit: 1, fix: 'Add a mapping whose `match` covers this record, then `ferry dlq replay`.' },
  FERRY_RECORD_MALFORMED: { exit: 1, fix: 'The source could not parse this record (see the reason and location); fix the data at the source, then `ferry dlq replay` or re-drop the file.' },
  FERRY_INPUT_UNREADABLE: { exit: 1, fix: 'Check the file format and encoding settings of the source; the file was moved to the errors folder.' },
  FERRY_SOURCE_UNAVAILABLE: { exit: 1, fix: 'Check that the source system is reachable and the credentials are right; Ferry retries with backoff.' },
  FERRY_SOURCE_AUTH_FAILED: { exit: 2, fix: 'Correct the user or password of the source connection (the login named in the message), or grant that user access to the database; Ferry does not retry a rejected login.' },
  FERRY_SOURCE_POSITION_LOST: { exit: 1, fix: 'The stored position no longer exists at the source (binlog purged, replication slot dropped or lost). Set `snapshot: when_needed` on the source and restart: Ferry snapshots the tables again and streams on from there. Or stop the agent, delete the stored position (`redis-cli -u REDIS_URL DEL PREFIX:pipeline:PIPELINE:checkpoint`, PREFIX being queue.prefix, `ferry` by default) and start it with `snapshot: initial`. `ferry snapshot` alone does not help: it leaves the stored position as it is.' },
  FERRY_SOURCE_STATEMENT_BINLOG: { exit: 1, fix: "A session wrote a row change to the binlog as an SQL statement (binlog_format STATEMENT or MIXED): make every session log ROW (SET GLOBAL binlog_format = 'ROW', my.cnf, no SET SESSION binlog_format in the application), then re-read what it changed as docs/sources/mysql-cdc.md describes." },
  FERRY_SOURCE_SLOT_IN_USE: { exit: 1, fix: 'Another process (named by its pid) is reading this replication slot: stop it, or give this pipeline its own `slot`.' },
  FERRY_SOURCE_QUERY_TIMEOUT: { exit: 1, fix: 'A polled view answered slower than queryTimeoutMs (often a lock held by another session); the poll is retried at the next tick. Raise queryTimeoutMs or find the blocking session.' },
  FERRY_SOURCE_NOT_READ_ONLY: { exit: 2, fix: 'Revoke the write privileges named in the message, or set `requireReadOnly: false`.' },
  FERRY_SINK_RETRYABLE: { exit: 1, fix: 'The target failed temporarily; Ferry retries with backoff.' },
  FERRY_SINK_PERMANENT: { exit: 1, fix: 'The target rejected the event; see the dead-letter entry, fix, then `ferry dlq replay`.' },
  FERRY_SINK_RETRIES_EXHAUSTED: { exit: 1, fix: 'The target kept failing; fix it, then `ferry dlq replay`.' },
  FERRY_QUEUE_UNAVAILABLE: { exit: 1, fix: 'Check that Redis is reachable at queue.redis, or omit it to use the embedded Redis.' },
  FERRY_QUEUE_MISCONFIGURED: { exit: 1, fix: 'Set `maxmemory-policy noeviction` on the Redis server, as BullMQ requires.' },
  FERRY_QUEUE_PAYLOAD_MISSING: { exit: 1, fix: 'Redis lost queued data: run it with append-only persistence (the embedded Redis does), never delete its keys by hand, and re-read the gap from the source (`ferry snapshot`).' },
  FERRY_EMBEDDED_REDIS: { exit: 1, fix: 'Install redis-server (`apt-get install redis-server`) or configure queue.redis.' },
  FERRY_PREFLIGHT_FAILED: { exit: 1, fix: 'Apply the fix printed beside each failed check.' },
  FERRY_USAGE: { exit: 2, fix: 'See `ferry --help`.' },
  FERRY_NOT_IMPLEMENTED: { exit: 2, fix: 'Use another command, or a newer version of Ferry that has this one.' },
  FERRY_DLQ_NOT_FOUND: { exit: 2, fix: 'List entries with `ferry dlq list`.' },
} as const satisfies Record<string, { exit: 1 | 2; fix: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
