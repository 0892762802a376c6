#!/usr/bin/env bash
# Turn on logical replication in PostgreSQL for the postgres-cdc tests (the
# same settings an operator needs, see docs/sources/postgres-cdc.md).
#
# Runs as root on a brand-new Debian machine (CI=true, no stdin) and again on
# a machine where it already ran: it installs and starts PostgreSQL when
# missing, and restarts the server only when a setting actually changed, so
# other tests' connections are not cut for nothing.
set -euo pipefail

log() { echo "20-postgres.sh: $*"; }
die() { echo "20-postgres.sh: ERROR: $*" >&2; exit 1; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  log "installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-client
fi

VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
[ -n "$VERSION" ] || die "no cluster under /etc/postgresql"
CTL=(pg_ctlcluster --skip-systemctl-redirect "$VERSION" main)

# Tests connect as postgres over TCP without a password (trust), as on the
# reference machine. A fresh Debian install asks for one: allow loopback.
HBA=/etc/postgresql/$VERSION/main/pg_hba.conf
if [ -f "$HBA" ] && ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$HBA"; then
  log "allowing trust auth on 127.0.0.1 in $HBA (test machine only)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nhost replication all 127.0.0.1/32 trust\nhost replication all ::1/128 trust' "$HBA"
  NEED_RELOAD=1
fi

q() { psql -h 127.0.0.1 -U postgres -d postgres -XAtqc "$1" 2>/dev/null; }
sq() { su postgres -c "psql -XAtqc \"$1\"" 2>/dev/null; }

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
    "${CTL[@]}" start || true
  fi
fi
if [ "${NEED_RELOAD:-0}" = 1 ]; then "${CTL[@]}" reload || sq 'SELECT pg_reload_conf()' >/dev/null; fi
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
  "${CTL[@]}" restart || die "restart failed"
  wait_up
fi

[ "$(q 'SHOW wal_level')" = logical ] || die "wal_level is $(q 'SHOW wal_level') after restart, expected logical"
log "ready: wal_level=logical, max_replication_slots=$(q 'SHOW max_replication_slots'), max_wal_senders=$(q 'SHOW max_wal_senders')"
