#!/usr/bin/env bash
# Turn on MariaDB's row-based binlog for the mysql-cdc tests (and show the
# settings an operator needs, see docs/sources/mysql-cdc.md).
#
# Runs on a brand-new machine (as root with CI=true and no stdin, or as a user
# with sudo) and again on a machine where it already ran: it writes the config
# file when it differs, and restarts the server only when the running server
# does not already have these settings. On a set-up machine it needs no root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../as-root.sh"

CONF_DIR=/etc/mysql/mariadb.conf.d
CONF_FILE=$CONF_DIR/60-ferry-binlog.cnf
MY_CNF=/etc/mysql/my.cnf

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client
fi

CONF=$(cat <<'EOF'
# Written by Ferry's test setup (test/setup/services.d/30-mariadb.sh).
# What the mysql-cdc source needs; see docs/sources/mysql-cdc.md.
[mysqld]
server_id                  = 1
log_bin                    = mariadb-bin
binlog_format              = ROW
binlog_row_image           = FULL
# column names and types in every TABLE_MAP event, so rows decode against
# the columns of the time they were written, whatever DDL came after
binlog_row_metadata        = FULL
# keep a week of binlog: a reader that was down less than that resumes
binlog_expire_logs_seconds = 604800
EOF
)
if [ "$(cat "$CONF_FILE" 2>/dev/null)" != "$CONF" ]; then
  as_root mkdir -p "$CONF_DIR"
  printf '%s\n' "$CONF" | as_root tee "$CONF_FILE" >/dev/null
fi

# Debian's my.cnf normally includes the folder; a stripped-down one may not.
if [ -f "$MY_CNF" ] && ! grep -Eq "^\s*!includedir\s+$CONF_DIR/?\s*$" "$MY_CNF"; then
  printf '\n!includedir %s/\n' "$CONF_DIR" | as_root tee -a "$MY_CNF" >/dev/null
fi

mysql_q() { mariadb -uroot -h127.0.0.1 -N -B -e "$1" 2>/dev/null; }
# Through the socket as the OS root: how a fresh Debian install lets root in (unix_socket auth).
socket_q() { as_root mariadb -uroot -N -B -e "$1" 2>/dev/null; }

# The tests connect as root over TCP with no password (mysql://root@127.0.0.1:3306). A fresh
# Debian install only lets the OS root in through the socket: allow both, on this test machine.
ensure_tcp_root() {
  if mysql_q 'SELECT 1' >/dev/null; then return 0; fi
  if socket_q 'SELECT 1' >/dev/null; then
    echo "30-mariadb.sh: letting root log in over TCP without a password (test machine only)"
    socket_q "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('')"
  fi
}

wait_up() {
  for _ in $(seq 1 120); do
    if mysql_q 'SELECT 1' >/dev/null || socket_q 'SELECT 1' >/dev/null; then
      ensure_tcp_root
      return 0
    fi
    sleep 0.5
  done
  echo "30-mariadb.sh: MariaDB did not answer within 60 s" >&2
  tail -n 30 /var/log/mysql/error.log >&2 || true
  return 1
}

settings_applied() {
  [ "$(mysql_q "SELECT CONCAT(@@log_bin + 0, '/', @@binlog_format, '/', @@binlog_row_image, '/', @@binlog_row_metadata)")" = "1/ROW/FULL/FULL" ]
}

# As the machine starts it (no systemd in containers); mariadbd switches to the mysql user itself.
start_server() {
  as_root mkdir -p /run/mysqld /var/log/mysql
  as_root chown mysql:mysql /run/mysqld /var/log/mysql 2>/dev/null || true
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
}

if ! mysql_q 'SELECT 1' >/dev/null && ! socket_q 'SELECT 1' >/dev/null; then
  start_server
fi
wait_up

if settings_applied; then
  echo "30-mariadb.sh: binlog already on (ROW, FULL image, FULL metadata)"
  exit 0
fi

echo "30-mariadb.sh: restarting MariaDB to turn the row-based binlog on"
mariadb-admin -uroot -h127.0.0.1 shutdown
for _ in $(seq 1 120); do
  if ! pgrep -x mariadbd >/dev/null; then break; fi
  sleep 0.5
done
start_server
wait_up

if ! settings_applied; then
  echo "30-mariadb.sh: MariaDB restarted but the binlog settings are not in force:" >&2
  mysql_q "SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata" >&2 || true
  exit 1
fi
echo "30-mariadb.sh: binlog on: $(mysql_q 'SHOW MASTER STATUS' | cut -f1,2)"
