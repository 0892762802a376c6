#!/usr/bin/env bash
# `npm run demo`: everything the quickstart needs, on a brand-new machine or
# again on this one (idempotent), then the demo pipeline in the foreground.
set -euo pipefail
cd "$(dirname "$0")/../.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The embedded default queue runs Debian's redis-server.
if ! command -v redis-server >/dev/null 2>&1; then
  echo "quickstart: installing redis-server" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi

# FERRY_SKIP_BUILD=1: the caller (the test suite) has just installed and built.
if [ "${FERRY_SKIP_BUILD:-}" != 1 ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    # npm install, not npm ci: see test/setup/run-tests.sh.
    npm install --no-audit --no-fund
  fi
  npx tsc -p tsconfig.json
fi

DEMO=${FERRY_DEMO_DIR:-.ferry-demo}
ADMIN=${FERRY_DEMO_ADMIN:-127.0.0.1:9464}
mkdir -p "$DEMO/inbox"
sed -e "s#\.\./mappings/#$PWD/mappings/#" -e "s#127\.0\.0\.1:9464#$ADMIN#" agent/demo/ferry.yaml > "$DEMO/ferry.yaml"
if [ ! -e "$DEMO/.seeded" ]; then
  cp agent/demo/kunden_2024-01-31.csv "$DEMO/inbox/"
  touch "$DEMO/.seeded"
fi

cat >&2 <<MSG

  Ferry demo: pipeline "customers" reads $DEMO/inbox (semicolon CSV, Windows-1252).
  Events print below (stdout) and go to $DEMO/out/customers.jsonl; logs are JSON on stderr.
  Drop another file:    cp agent/demo/kunden_2024-02-01.csv $DEMO/inbox/
  Contract violations:  npx ferry dlq list --config $DEMO/ferry.yaml
  Metrics:              curl -s $ADMIN/metrics
  Stop with Ctrl-C (drains, commits and exits 0).

MSG
exec node bin/ferry.js run --config "$DEMO/ferry.yaml"
