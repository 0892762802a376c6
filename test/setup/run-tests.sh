#!/usr/bin/env bash
# The whole test suite on a brand-new or an already-set-up machine:
# `npm test` (and .ci/run) run this. Every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."

for script in test/setup/services.d/*.sh; do
  bash "$script"
done

# Install the locked dependencies when they are missing or stale. `npm install`,
# not `npm ci`: npm 11 writes lock files without other platforms' optional
# packages (rollup, msgpackr-extract) and then its own `npm ci` refuses them.
# Its `prepare` script builds dist/ (so `npx ferry` works right after a plain
# `npm install`); when it did, the build below is not repeated.
built=0
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  stamp=$(mktemp)
  npm install --no-audit --no-fund
  if [ dist/.tsbuildinfo -nt "$stamp" ]; then built=1; fi
  rm -f "$stamp"
fi

# A strict build: a type error anywhere fails the run here (or in `prepare` above).
if [ "$built" = 0 ]; then
  npx tsc -p tsconfig.json
fi

export FERRY_SKIP_BUILD=1
npx vitest run "$@"
# Fault tests restart shared servers: one file at a time, after the rest.
if [ $# -eq 0 ] && ls test/integration/*.fault.test.ts >/dev/null 2>&1; then
  npx vitest run --config vitest.fault.config.ts
fi
