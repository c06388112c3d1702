#!/usr/bin/env bash
# `make test-citus`: Citus 13.2 built from its source tarball for the machine's PostgreSQL 15,
# a coordinator and two workers on 127.0.0.1, and the API and integration tiers run against
# the coordinator. The cluster helpers (initdb as an unprivileged user, the fallback folder
# outside a private checkout, stale pids) are scripts/dev.sh's, used on each node in turn.
#
# Usage: scripts/citus.sh build|start|stop|env|test [pytest args]
set -euo pipefail

CALLER_PWD="$PWD"   # dev.sh moves to the project folder; a relative CITUS_SRC is the caller's
# shellcheck source=scripts/dev.sh
source "$(dirname "${BASH_SOURCE[0]}")/dev.sh"

CITUS_VERSION=13.2.2   # the last release line for PostgreSQL 15
CITUS_EXTENSION_VERSION=13.2-1
CITUS_BUILD_PACKAGES=(postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev)
# Debian's 15.20 headers export have_createdb_privilege(), which 13.2.2 also defines.
CITUS_PATCH="$ROOT/scripts/citus/have_createdb_privilege.patch"
CITUS_CACHE="$DATA/citus"            # the unpacked, built tree and its stamps
CLUSTER="$DATA/citus-cluster"        # one data folder per node, their logs, db.env, pgpass
CITUS_PORT="${WUZHANG_CITUS_PORT:-55470}"   # the coordinator; the workers take the next two
NODES=(coordinator worker1 worker2)
DB_ENV="$CLUSTER/db.env"             # dev.sh's db.env helpers then read and write the cluster's
PASSFILE="$CLUSTER/pgpass"           # how a node's own connections to the others log in

citus_usage() {
  cat >&2 <<'EOF'
usage: scripts/citus.sh COMMAND
  build     install the build packages, build and install Citus from CITUS_SRC (skipped when built)
  start     build, then start the coordinator and two workers (data in .data/citus-cluster/)
  stop      stop the three nodes
  env       print `export DATABASE_URL=... WUZHANG_CITUS=1 ...` for the coordinator
  test      start, then pytest tests/api tests/integration against the coordinator (extra arguments go to pytest)
Environment: CITUS_SRC (the Citus 13.2.2 source tarball; default ../shared/vendor/citus/citus-13.2.2.tar.gz
beside the checkout, when it exists), WUZHANG_CITUS_PORT (the coordinator's port, default 55470; the
workers take the next two), WUZHANG_TEST_PROCESSES (as for make test).
EOF
}

# --- build ---------------------------------------------------------------------

citus_src() {
  local src="${CITUS_SRC:-}" beside="$ROOT/../shared/vendor/citus/citus-$CITUS_VERSION.tar.gz"
  if [[ -z $src && -f $beside ]]; then src="$beside"; fi
  [[ -n $src ]] ||
    die "set CITUS_SRC to the Citus $CITUS_VERSION source tarball (\`git archive v$CITUS_VERSION\` of github.com/citusdata/citus), or install Citus from its packages (docs/scale.md)"
  [[ $src == /* ]] || src="$CALLER_PWD/$src"
  [[ -f $src ]] || die "CITUS_SRC=$src: no such file"
  printf '%s\n' "$src"
}

# The installed extension's version, from its control file (empty when none).
citus_installed() {
  [[ -f "$(pg_config --pkglibdir)/citus.so" ]] || return 0
  sed -n "s/^default_version = '\(.*\)'/\1/p" "$(pg_config --sharedir)/extension/citus.control" 2>/dev/null
}

cmd_citus_build() {
  local src key build sudo=()
  # Before any node starts: postgresql-server-dev-15 may upgrade postgresql-15 under it.
  cmd_deps "${CITUS_BUILD_PACKAGES[@]}"
  if [[ -z ${CITUS_SRC:-} && ! -f $ROOT/../shared/vendor/citus/citus-$CITUS_VERSION.tar.gz &&
        $(citus_installed) == "$CITUS_EXTENSION_VERSION" ]]; then
    return 0   # installed otherwise (Citus's own packages, docs/scale.md) and no source given
  fi
  src="$(citus_src)"
  key="$CITUS_VERSION-$(cat "$src" "$CITUS_PATCH" | sha256sum | cut -c1-16)"
  if [[ -e $CITUS_CACHE/installed-$key && $(citus_installed) == "$CITUS_EXTENSION_VERSION" ]]; then return 0; fi
  build="$CITUS_CACHE/build"
  mkdir -p "$CITUS_CACHE" "$DATA/log"
  if [[ ! -e $CITUS_CACHE/built-$key ]]; then
    say "building Citus $CITUS_VERSION from $src (2-3 minutes on 2 cores; log: .data/log/citus-build.log)"
    rm -rf -- "$build" "$CITUS_CACHE"/built-*
    mkdir -p "$build"
    # The tarball (git archive) holds the tree's files with no top folder. with_llvm=no: no
    # JIT bitcode, which would double the build (PostgreSQL's JIT inlines none of Citus then).
    if ! (cd "$build" && tar -xzf "$src" && patch -p1 <"$CITUS_PATCH" &&
          ./configure && make -j"$(nproc)" with_llvm=no) >"$DATA/log/citus-build.log" 2>&1; then
      tail -n 30 "$DATA/log/citus-build.log" >&2
      die "building Citus failed (full log: .data/log/citus-build.log)"
    fi
    touch "$CITUS_CACHE/built-$key"
  fi
  if ! is_root; then sudo=(sudo -n); fi
  say "installing Citus $CITUS_VERSION into $(pg_config --pkglibdir)"
  if ! (cd "$build" && "${sudo[@]}" make install with_llvm=no) >>"$DATA/log/citus-build.log" 2>&1; then
    tail -n 20 "$DATA/log/citus-build.log" >&2
    die "make install failed (as root, or with sudo; full log: .data/log/citus-build.log)"
  fi
  rm -f "$CITUS_CACHE"/installed-*
  touch "$CITUS_CACHE/installed-$key"
}

# --- the three nodes -------------------------------------------------------------

# Points dev.sh's cluster helpers at node INDEX (0 the coordinator).
node_use() {
  local name="${NODES[$1]}"
  PG_LINK="$CLUSTER/$name"
  PG_LOG="$CLUSTER/$name.log"
  PG_PORT=$((CITUS_PORT + $1))
  PG_FALLBACK_BASE="/var/lib/wuzhang-pg/citus-$name"
  PGDATA_REAL="" PG_LOG_REAL=""
}

node_configure() {
  local conf="$PGDATA_REAL/postgresql.conf"
  pg_configure
  if grep -q '^# wuzhang citus settings' "$conf"; then return 0; fi
  cat >>"$conf" <<'EOF'

# wuzhang citus settings (added by scripts/citus.sh)
shared_preload_libraries = 'citus'
shared_buffers = 128MB              # three nodes on one machine
max_prepared_transactions = 200     # Citus commits across nodes in two phases
EOF
}

node_psql() {  # DATABASE SQL...: as the owner, on the current node
  local db="$1"
  shift
  PGPASSWORD="$OWNER_PW" PGCONNECT_TIMEOUT=10 PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$PG_PORT" -U "$PG_SUPERUSER" -d "$db" "$@"
}

write_passfile() {
  (umask 077 && printf '127.0.0.1:*:*:%s:%s\n127.0.0.1:*:*:%s:%s\n' \
     "$PG_SUPERUSER" "$OWNER_PW" "$PG_APP_ROLE" "$APP_PW" >"$PASSFILE.tmp")
  mv -f "$PASSFILE.tmp" "$PASSFILE"
}

OWNER_PW="" APP_PW=""

cmd_citus_start() {
  local i pid any=0
  cmd_citus_build
  pg_find_bin
  mkdir -p "$CLUSTER"
  OWNER_PW="$(db_env_password)"
  APP_PW="$(url_password_of "$PG_APP_ROLE")"
  for i in 0 1 2; do
    node_use "$i"
    if pg_find; then any=1; fi
  done
  if [[ -z $OWNER_PW ]]; then
    ((!any)) || die "no password on record for the Citus nodes in $CLUSTER: stop them and remove the folder to start afresh"
    OWNER_PW="$(new_password)"
  fi
  [[ -n $APP_PW ]] || APP_PW="$(new_password)"
  write_db_env "$OWNER_PW" "$APP_PW" "$CITUS_PORT"   # on record before initdb uses them

  for i in 0 1 2; do
    node_use "$i"
    if ! pg_find; then
      pg_init "$OWNER_PW"
      write_db_env "$OWNER_PW" "$APP_PW" "$CITUS_PORT"   # pg_init wrote the node's own
    fi
    node_configure
    # The nodes' own connections to one another log in with these (Citus reads libpq's PGPASSFILE).
    write_passfile
    if is_root; then chown "$PG_USER:" "$PASSFILE"; fi
    if pid="$(pg_running_pid)" && pg_binary_replaced "$pid"; then
      say "${NODES[$i]} was started by a binary that has since been upgraded: restarting it"
      pg_stop_cluster
    fi
    if pid="$(pg_running_pid)"; then
      say "${NODES[$i]} already running (pid $pid)"
      continue
    fi
    pg_clear_stale_pid
    port_in_use "$PG_PORT" &&
      die "port $PG_PORT on 127.0.0.1 is taken by another program; pick free ones, e.g. WUZHANG_CITUS_PORT=55480"
    say "starting the Citus ${NODES[$i]} on 127.0.0.1:$PG_PORT (log: .data/citus-cluster/${NODES[$i]}.log)"
    if ! as_pg env PGPASSFILE="$PASSFILE" "$PG_BIN/pg_ctl" -D "$PGDATA_REAL" -l "$PG_LOG_REAL" \
         -o "-p $PG_PORT" -w -t 60 -s start; then
      tail -n 20 "$PG_LOG_REAL" >&2
      die "the Citus ${NODES[$i]} did not start (log: .data/citus-cluster/${NODES[$i]}.log)"
    fi
  done

  # Roles are per node: the owner (initdb made it) and the app role, with the same
  # passwords everywhere; then the service's database, Citus first, on each node.
  for i in 0 1 2; do
    node_use "$i"
    node_psql postgres -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_ROLE') THEN CREATE ROLE $PG_APP_ROLE; END IF;
      END \$\$;" \
      -c "ALTER ROLE $PG_APP_ROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$APP_PW'"
    if [[ -z $(node_psql postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
      node_psql postgres -c "CREATE DATABASE $PG_DB"
    fi
    node_psql "$PG_DB" -c "CREATE EXTENSION IF NOT EXISTS citus"
  done
  node_use 0
  citus_add_workers "$PG_DB"
  write_db_env "$OWNER_PW" "$APP_PW" "$CITUS_PORT"
}

# The coordinator of DATABASE learns its own address and its workers (both calls are
# idempotent). tests/conftest.py does the same for each test database.
citus_add_workers() {
  node_psql "$1" -tA \
    -c "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_PORT)" \
    -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 1)))" \
    -c "SELECT citus_add_node('127.0.0.1', $((CITUS_PORT + 2)))" >/dev/null
}

cmd_citus_stop() {
  local i
  pg_find_bin
  for i in 2 1 0; do
    node_use "$i"
    if pg_find; then pg_stop_cluster || say "the Citus ${NODES[$i]} is not running"; fi
  done
}

citus_workers() {
  printf '127.0.0.1:%s,127.0.0.1:%s\n' $((CITUS_PORT + 1)) $((CITUS_PORT + 2))
}

cmd_citus_env() {
  [[ -f $DB_ENV ]] || die "no $DB_ENV: run scripts/citus.sh start"
  use_db_url
  printf 'export DATABASE_URL=%q WUZHANG_MIGRATION_DATABASE_URL=%q WUZHANG_CITUS=1 WUZHANG_CITUS_WORKERS=%q\n' \
    "$DATABASE_URL" "$WUZHANG_MIGRATION_DATABASE_URL" "$(citus_workers)"
}

# The API and integration tiers against the coordinator: tests/conftest.py sees
# WUZHANG_CITUS=1 and makes each test database on every node (docs/scale.md).
cmd_citus_test() {
  local rc=0
  cmd_citus_build   # installs packages (all of make test's too) before any cluster starts
  cmd_venv
  cmd_web
  cmd_citus_start
  # An outside DATABASE_URL must not win over the cluster just started.
  unset DATABASE_URL WUZHANG_MIGRATION_DATABASE_URL
  use_db_url
  export WUZHANG_CITUS=1 WUZHANG_CITUS_WORKERS
  WUZHANG_CITUS_WORKERS="$(citus_workers)"
  "$VENV/bin/python" -m pytest -n "${WUZHANG_TEST_PROCESSES:-2}" tests/api tests/integration "$@" || rc=$?
  if ((rc == 5)); then
    printf 'error: pytest collected no tests (exit code 5); that counts as a failure\n' >&2
  fi
  return "$rc"
}

citus_main() {
  local cmd="${1:-}"
  shift || true
  case $cmd in
    build) cmd_citus_build ;;
    start) cmd_citus_start ;;
    stop) cmd_citus_stop ;;
    env) cmd_citus_env ;;
    test) cmd_citus_test "$@" ;;
    -h | --help | help) citus_usage ;;
    *) citus_usage; exit 2 ;;
  esac
}

# exit on the same line: bash reads no further, so editing this file while it runs is safe.
citus_main "$@"; exit
