#!/usr/bin/env bash
# Make sure the tools and the test databases are there:
#   cmake, valgrind, pkg-config, PostgreSQL (127.0.0.1:5432, trust, db test),
#   MariaDB (127.0.0.1:3306, root with empty password, db test), and the
#   pgbouncer program (tests/pgbouncer/ starts its own; never the service).
# Installs what is missing with apt-get, starts servers that are not
# reachable, waits for them. When a server stays unreachable: with CI=true or
# PEEPOOL_REQUIRE_SERVERS=1 exit 1; otherwise warn and print
# "PEEPOOL_TEST_SERVERS=OFF" on stdout for the caller (source this file to
# get the variable exported instead).
set -euo pipefail

log() { echo "ensure-servers: $*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v openssl >/dev/null || missing+=(openssl)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
{ command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || missing+=(mariadb-server)
have_pgbouncer() { command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; }
have_pgbouncer || missing+=(pgbouncer)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq "${missing[@]}" >&2
  if [[ " ${missing[*]} " == *" pgbouncer "* ]] && command -v systemctl >/dev/null &&
    systemctl is-active --quiet pgbouncer 2>/dev/null; then
    # Where systemd runs, the package starts its service on port 6432, the
    # tests' port; the tests start a pgbouncer of their own.
    log "stopping and disabling the pgbouncer service the package just started"
    $SUDO systemctl disable --now pgbouncer >&2 || true
  fi
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
my_up() { mariadb-admin -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }
wait_for() { # name check seconds
  local i
  for ((i = 0; i < $3 * 4; i++)); do "$2" && return 0; sleep 0.25; done
  return 1
}

# --- PostgreSQL ---------------------------------------------------------------
if ! pg_up && command -v pg_ctlcluster >/dev/null; then
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$ver" ]; then
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    # trust for local TCP connections (a fresh install asks for passwords)
    if [ -f "$hba" ] && ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
      log "configuring trust auth for 127.0.0.1 in $hba"
      $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    log "starting PostgreSQL $ver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
  fi
fi
if wait_for pg pg_up 30; then
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1; then
    log "creating PostgreSQL database test"
    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >&2 ||
      $SUDO -u postgres psql -c "CREATE DATABASE test" >&2 || true
  fi
fi

# --- MariaDB -----------------------------------------------------------------
if ! my_up && [ -x /usr/sbin/mariadbd ]; then
  log "starting MariaDB"
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql >&2 || true
  wait_for my my_up 30 || true
fi
if my_up; then
  mariadb -h127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >&2 || true
elif [ -x /usr/sbin/mariadbd ] && command -v mariadb >/dev/null; then
  # a fresh install: root authenticates by unix socket only; allow TCP with an empty password
  log "configuring root with an empty password for 127.0.0.1"
  $SUDO mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; CREATE DATABASE IF NOT EXISTS test; FLUSH PRIVILEGES;" >&2 || true
fi

if ! have_pgbouncer; then
  if [ "${CI:-}" = true ] || [ "${PEEPOOL_REQUIRE_SERVERS:-0}" = 1 ]; then
    log "ERROR: pgbouncer is required (CI / PEEPOOL_REQUIRE_SERVERS=1) but could not be installed"
    exit 1
  fi
  log "WARNING: pgbouncer is not installed: the PgBouncer tests will be skipped"
fi

ok=1
pg_up || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; ok=0; }
my_up || { log "MariaDB is not reachable on 127.0.0.1:3306"; ok=0; }
if [ $ok = 1 ]; then
  log "PostgreSQL and MariaDB are up"
  echo "PEEPOOL_TEST_SERVERS=ON"
elif [ "${CI:-}" = true ] || [ "${PEEPOOL_REQUIRE_SERVERS:-0}" = 1 ]; then
  log "ERROR: the test servers are required (CI / PEEPOOL_REQUIRE_SERVERS=1) but not reachable"
  exit 1
else
  log "WARNING: skipping the PostgreSQL/MariaDB tests (PEEPOOL_TEST_SERVERS=OFF)"
  echo "PEEPOOL_TEST_SERVERS=OFF"
fi
