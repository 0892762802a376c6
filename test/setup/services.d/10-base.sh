#!/usr/bin/env bash
# Base services for the test suite, idempotent: redis-server (the shared
# Redis on 127.0.0.1:6379, and the binary that Redis-restart tests and the
# embedded default start on other ports). Installs from Debian when missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../as-root.sh"
log() { echo "10-base.sh: $*"; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "installing redis-server"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis on 127.0.0.1:6379 (no persistence: durability tests start their own)"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "10-base.sh: ERROR: Redis does not answer on 127.0.0.1:6379" >&2; exit 1; }
# BullMQ's production advice: never evict queue keys.
redis-cli -h 127.0.0.1 -p 6379 config set maxmemory-policy noeviction >/dev/null
log "ok"
