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
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund
fi

# A strict build: a type error anywhere fails the run here.
npx tsc -p tsconfig.json

export FERRY_SKIP_BUILD=1
npx vitest run "$@"
# Fault tests restart shared servers: one file at a time, after the rest.
if [ $# -eq 0 ] && ls test/integration/*.fault.test.ts >/dev/null 2>&1; then
  npx vitest run --config vitest.fault.config.ts
fi
