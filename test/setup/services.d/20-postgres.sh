#!/usr/bin/env bash
# Turn on logical replication in PostgreSQL for the postgres-cdc tests (the
# same settings an operator needs, see docs/sources/postgres-cdc.md).
#
# Runs on a brand-new Debian machine (as root with CI=true and no stdin, or as
# a user with sudo) and again on a machine where it already ran: it installs
# and starts PostgreSQL when missing, and restarts the server only when a
# setting actually changed, so other tests' connections are not cut for
# nothing. On a set-up machine it needs no root at all.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../as-root.sh"

log() { echo "20-postgres.sh: $*"; }
die() { echo "20-postgres.sh: ERROR: $*" >&2; exit 1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client
fi

VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
[ -n "$VERSION" ] || die "no cluster under /etc/postgresql"
CTL=(pg_ctlcluster --skip-systemctl-redirect "$VERSION" main)

# -w: never prompt for a password; a server that wants one counts as not ready.
q() { psql -w -h 127.0.0.1 -U postgres -d postgres -XAtqc "$1" 2>/dev/null; }
# Over the local socket as the postgres OS user (peer auth), whatever pg_hba says for TCP.
sq() { as_root runuser -u postgres -- psql -XAtqc "$1" 2>/dev/null; }

# Tests connect as postgres over TCP without a password (trust), as on the
# reference machine. A fresh Debian install asks for one: allow loopback.
# pg_hba.conf is readable by postgres only, so it is looked at (through
# as_root) only when a password-less connection does not already work.
HBA=/etc/postgresql/$VERSION/main/pg_hba.conf
if ! q 'SELECT 1' >/dev/null && as_root test -f "$HBA" && ! as_root grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$HBA"; then
  log "allowing trust auth on 127.0.0.1 in $HBA (test machine only)"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nhost replication all 127.0.0.1/32 trust\nhost replication all ::1/128 trust' "$HBA"
  NEED_RELOAD=1
fi

wait_up() {
  for _ in $(seq 1 120); do
    if q 'SELECT 1' >/dev/null; then return 0; fi
    sleep 0.5
  done
  tail -n 30 "/var/log/postgresql/postgresql-$VERSION-main.log" >&2 || true
  die "PostgreSQL did not answer on 127.0.0.1:5432 within 60 s"
}

if ! q 'SELECT 1' >/dev/null; then
  if ! sq 'SELECT 1' >/dev/null; then
    log "starting PostgreSQL $VERSION"
    as_root "${CTL[@]}" start || true
  fi
fi
if [ "${NEED_RELOAD:-0}" = 1 ]; then as_root "${CTL[@]}" reload || sq 'SELECT pg_reload_conf()' >/dev/null; fi
wait_up

CHANGED=0
if [ "$(q 'SHOW wal_level')" != logical ]; then
  q "ALTER SYSTEM SET wal_level = logical" >/dev/null || die "could not set wal_level"
  CHANGED=1
fi
# Several test files each create their own slot at once: leave headroom.
if [ "$(q 'SHOW max_replication_slots')" -lt 20 ]; then
  q "ALTER SYSTEM SET max_replication_slots = 20" >/dev/null || die "could not set max_replication_slots"
  CHANGED=1
fi
if [ "$(q 'SHOW max_wal_senders')" -lt 20 ]; then
  q "ALTER SYSTEM SET max_wal_senders = 20" >/dev/null || die "could not set max_wal_senders"
  CHANGED=1
fi

if [ "$CHANGED" = 1 ]; then
  log "restarting PostgreSQL $VERSION to apply logical replication settings"
  as_root "${CTL[@]}" restart || die "restart failed"
  wait_up
fi

[ "$(q 'SHOW wal_level')" = logical ] || die "wal_level is $(q 'SHOW wal_level') after restart, expected logical"
log "ready: wal_level=logical, max_replication_slots=$(q 'SHOW max_replication_slots'), max_wal_senders=$(q 'SHOW max_wal_senders')"
