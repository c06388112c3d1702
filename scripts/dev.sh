#!/usr/bin/env bash
# Developer entry point behind `make run`, `make test` and `make stop`.
# Installs what the machine lacks, keeps a virtualenv in .venv and a
# project-local PostgreSQL + PostGIS cluster in .data/, then runs the service
# or the tests. Every step is idempotent, so reruns are fast.
#
# Usage: scripts/dev.sh deps|venv|web|db-start|db-stop|db-env|check|run|test [pytest args]|bench [args]|lock|stop
set -euo pipefail

# Debian packages the project needs. The server ones are skipped when DATABASE_URL
# points at an existing database; chromium (the browser test, tests/e2e) never is.
DEB_PACKAGES=(postgresql-15 postgresql-15-postgis-3)
BROWSER_PACKAGES=(chromium fonts-wqy-microhei)  # a CJK font, so screenshots are legible
# The font the map's label glyphs (Latin letters, digits) are built from; see cmd_web.
GLYPH_PACKAGES=(fonts-dejavu-core)
# The PDFs' CJK font, and the tests' readers of PDFs (pdftotext, pdftoppm) and QR codes (zbarimg).
DOC_PACKAGES=(fonts-wqy-microhei poppler-utils zbar-tools)
BENCH_PACKAGES=(wrk)  # the HTTP load generator of bench/request_path.py (pgbench comes with postgresql-15)
PG_MAJOR=15
PG_PORT="${WUZHANG_PG_PORT:-55432}"
PG_SUPERUSER=wuzhang      # owns the database and its tables; runs the migrations
PG_APP_ROLE=wuzhang_app   # what the service connects as: rows only (migration 0112)
PG_DB=wuzhang
# Used only when the PostgreSQL OS user cannot reach .data/ (repo in a private
# folder such as /root): the cluster lives here instead, one folder per checkout.
# Not /var/tmp: it is world-writable, and some systems age files out of it.
PG_FALLBACK_BASE=/var/lib/wuzhang-pg

# runuser and useradd live in sbin, which some root environments leave off PATH.
PATH="$PATH:/usr/sbin:/sbin"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DATA="$ROOT/.data"
PG_LINK="$DATA/postgres"          # the cluster, or a symlink to it (see pg_init)
PG_LOG="$DATA/log/postgres.log"   # likewise a symlink when the cluster lives elsewhere
DB_ENV="$DATA/db.env"             # DATABASE_URL (the app role) and WUZHANG_MIGRATION_DATABASE_URL
                                  # (the owner); app/settings.py reads it too
SERVER_PID="$DATA/run/server.pid"
VENV="$ROOT/.venv"
GLYPHS="$ROOT/.web/glyphs"        # the map's label glyphs, served at /map/fonts/ (app/routers/web.py)
GLYPH_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
GLYPH_STACK="DejaVu Sans Book"    # the font stack the map's style asks for (text-font in map.js)

PG_BIN="" PG_USER="" PGDATA_REAL="" PG_LOG_REAL="" PG_STARTED_HERE=0
PWFILE=""   # initdb's password file; removed however the script ends
trap 'rm -f -- "$PWFILE"' EXIT

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ $EUID -eq 0 ]]; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/dev.sh COMMAND
  deps      install missing Debian packages (PostgreSQL 15, PostGIS 3, chromium, fonts, poppler-utils, zbar-tools, python3-venv)
  venv      create .venv and install requirements.lock (hash-checked) and the project
  web       install the pages' JS (MapLibre GL, ECharts, Swagger UI, Redoc) from npm into node_modules/, build the map's label glyphs
  db-start  start the project-local PostgreSQL (nothing if DATABASE_URL is set)
  db-stop   stop it
  db-env    print `export DATABASE_URL=... WUZHANG_MIGRATION_DATABASE_URL=...`  (eval "$(scripts/dev.sh db-env)")
  check     ruff (lint and format) and mypy
  run       all of the above, migrate, load the demo county, serve on 127.0.0.1:8000
  test      all of the above, check, then pytest (extra arguments go to pytest)
  bench     install wrk, then bench/request_path.py (extra arguments go to it)
  lock      write requirements.lock again from pyproject.toml (pip-compile, with hashes)
  stop      stop the server started by `run` and the local PostgreSQL
Environment: WUZHANG_PG_PORT (default 55432), DATABASE_URL (use an existing database, as the
app role; WUZHANG_MIGRATION_DATABASE_URL for its owner, default DATABASE_URL),
PYTHON (interpreter for .venv, default python3), WUZHANG_TEST_PROCESSES (test processes,
default 2; 0 runs the suite in one).
EOF
}

# --- deps --------------------------------------------------------------------

cmd_deps() {
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: install PostgreSQL $PG_MAJOR with PostGIS 3 yourself, or set DATABASE_URL"
    return 0
  fi
  local want=("$@") missing=() p
  # The server packages are not needed when an external database is given.
  [[ -n ${DATABASE_URL:-} ]] || want+=("${DEB_PACKAGES[@]}")
  want+=("${BROWSER_PACKAGES[@]}" "${GLYPH_PACKAGES[@]}" "${DOC_PACKAGES[@]}")
  # npm installs the map page's JS; Debian's own is enough when the machine has none.
  command -v npm >/dev/null || want+=(npm)
  # Debian's own python3 lacks venv/ensurepip until python3-venv is installed.
  if ! "${PYTHON:-python3}" -m venv --help >/dev/null 2>&1 ||
     ! "${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1; then
    want+=(python3-venv)
  fi
  for p in "${want[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]})) || return 0

  local sudo=()
  if ! is_root; then
    if ! { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; then
      die "missing Debian packages: ${missing[*]}
  install them, then rerun:
    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
    fi
    sudo=(sudo -n)
  fi
  mkdir -p "$DATA/log"
  say "installing Debian packages: ${missing[*]} (log: .data/log/apt.log)"
  if ! { "${sudo[@]}" apt-get update -q &&
         "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$DATA/log/apt.log" 2>&1; then
    tail -n 20 "$DATA/log/apt.log" >&2
    die "apt-get failed (full log: .data/log/apt.log)"
  fi
}

# --- venv --------------------------------------------------------------------

py_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

cmd_venv() {
  local py="${PYTHON:-python3}" stamp
  if [[ ! -x $VENV/bin/python ]] || ! py_ok "$VENV/bin/python"; then
    command -v "$py" >/dev/null || die "$py not found: install Python >= 3.11 (or set PYTHON=/path/to/python3.11)"
    py_ok "$py" || die "Python >= 3.11 is required, but $py is $("$py" -V 2>&1); set PYTHON=/path/to/python3.11"
    [[ ! -e $VENV ]] || { say "removing unusable .venv"; rm -rf "$VENV"; }
    say "creating .venv ($("$py" -V 2>&1))"
    "$py" -m venv "$VENV"
  fi
  # Reinstall only when the lock file or pyproject.toml changed since the last good install.
  stamp="$VENV/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)"
  [[ ! -e $stamp ]] || return 0
  say "installing Python dependencies from requirements.lock into .venv (the first time takes a minute or two)"
  # Exactly the pinned versions, each checked against its hash; then the project itself.
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q --require-hashes -r requirements.lock
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/pip" install -q --no-deps --no-build-isolation -e .
  rm -f "$VENV"/.installed-*
  touch "$stamp"
}

cmd_lock() {
  cmd_venv
  say "writing requirements.lock from pyproject.toml (pinned, with hashes)"
  "$VENV/bin/pip-compile" --quiet --generate-hashes --extra dev --strip-extras --allow-unsafe \
    --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml
}

# The habits `make test` keeps: lint, formatting and types are clean before any test runs.
cmd_check() {
  say "ruff check, ruff format --check, mypy"
  "$VENV/bin/ruff" check --quiet .
  "$VENV/bin/ruff" format --check --quiet .
  "$VENV/bin/mypy"
}

# --- web -----------------------------------------------------------------------

# The pages /map, /dashboard, /docs and /redoc are served with MapLibre GL JS, Apache
# ECharts, Swagger UI and Redoc from node_modules/ (no CDN): install them from the lock
# file when one is missing or the lock file changed. .npmrc: no install scripts, no peer dependencies.
WEB_FILES=(node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/swagger-ui-dist/swagger-ui-bundle.js
           node_modules/redoc/bundles/redoc.standalone.js node_modules/echarts/dist/echarts.min.js)
# Then the map labels' glyphs.
cmd_web() {
  local stamp f missing=0
  command -v npm >/dev/null || die "npm not found: run scripts/dev.sh deps (or install Node.js with npm)"
  stamp="node_modules/.installed-$(cat package-lock.json .npmrc | sha256sum | cut -d' ' -f1)"
  for f in "${WEB_FILES[@]}"; do [[ -f $f ]] || missing=1; done
  if [[ ! -e $stamp ]] || ((missing)); then
    say "installing the web pages' JavaScript with npm ci (log: .data/log/npm.log)"
    mkdir -p "$DATA/log"
    if ! npm ci --omit=dev --no-audit --no-fund >"$DATA/log/npm.log" 2>&1; then
      tail -n 20 "$DATA/log/npm.log" >&2
      die "npm ci failed (full log: .data/log/npm.log)"
    fi
    rm -f node_modules/.installed-*
    touch "$stamp"
  fi
  build_glyphs
}

# MapLibre draws Chinese with the browser's fonts (localIdeographFontFamily) but takes
# every other character from glyph PBFs: without them a label loses its digits and
# Latin letters. fontnik (npm; its native build ships in the package) renders all 256
# ranges of the font, in a few seconds, into .web/glyphs/<font stack>/<range>.pbf.
build_glyphs() {
  local stamp tmp
  [[ -f $GLYPH_FONT ]] || die "$GLYPH_FONT not found: run scripts/dev.sh deps (it installs ${GLYPH_PACKAGES[*]})"
  stamp="$GLYPHS/.built-$(cat "$GLYPH_FONT" package-lock.json | sha256sum | cut -c1-16)"
  [[ -e $stamp && -f $GLYPHS/$GLYPH_STACK/0-255.pbf ]] && return 0
  say "building the map's label glyphs from $GLYPH_FONT (log: .data/log/glyphs.log)"
  mkdir -p "$GLYPHS" "$DATA/log"
  tmp="$(mktemp -d "$GLYPHS/.build.XXXXXX")"
  if ! node node_modules/fontnik/bin/build-glyphs "$GLYPH_FONT" "$tmp" >"$DATA/log/glyphs.log" 2>&1 ||
     [[ ! -s $tmp/0-255.pbf ]]; then
    rm -rf -- "$tmp"
    tail -n 20 "$DATA/log/glyphs.log" >&2
    die "building the glyphs failed (full log: .data/log/glyphs.log)"
  fi
  chmod 755 "$tmp"
  rm -rf -- "${GLYPHS:?}/$GLYPH_STACK" "$GLYPHS"/.built-*
  mv -- "$tmp" "$GLYPHS/$GLYPH_STACK"
  touch "$stamp"
}

# --- PostgreSQL helpers --------------------------------------------------------

pg_find_bin() {
  if [[ -x /usr/lib/postgresql/$PG_MAJOR/bin/initdb ]]; then
    PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
  elif command -v pg_config >/dev/null && [[ -x "$(pg_config --bindir)/initdb" ]]; then
    PG_BIN="$(pg_config --bindir)"
  else
    die "PostgreSQL $PG_MAJOR server binaries not found; run: scripts/dev.sh deps"
  fi
}

# initdb and postgres refuse to run as root: root runs them as an unprivileged
# user. From / because that user may not be allowed into our working directory.
as_pg() {
  if is_root; then (cd / && runuser -u "$PG_USER" -- "$@"); else (cd / && "$@"); fi
}

pg_pick_user() {
  if ! is_root; then
    PG_USER="$(id -un)"
  elif id -u postgres >/dev/null 2>&1; then
    PG_USER=postgres
  else
    if ! id -u wuzhang-pg >/dev/null 2>&1; then
      say "creating system user wuzhang-pg to run PostgreSQL"
      useradd --system --no-create-home --shell /usr/sbin/nologin wuzhang-pg
    fi
    PG_USER=wuzhang-pg
  fi
}

pg_fallback_dir() {
  printf '%s/%s\n' "$PG_FALLBACK_BASE" "$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
}

pg_link_fallback() {
  ln -sfn "$1/data" "$PG_LINK"
  ln -sfn "$1/postgres.log" "$PG_LOG"
}

# Sets PGDATA_REAL, PG_LOG_REAL and PG_USER for an existing cluster;
# returns 1 when there is none yet.
pg_find() {
  local fb
  mkdir -p "$DATA/log" "$DATA/run"
  fb="$(pg_fallback_dir)"
  # A fresh checkout (or a deleted .data) at a path whose cluster was kept
  # outside the repo: pick that cluster up again instead of making another.
  if [[ ! -e $PG_LINK && ! -L $PG_LINK ]] && is_root && [[ -f $fb/data/PG_VERSION ]]; then
    say "using the cluster kept for this checkout in $fb"
    pg_link_fallback "$fb"
  fi
  [[ -f $PG_LINK/PG_VERSION ]] || return 1
  # pg_ctl and postgres get the resolved path, never the symlink.
  PGDATA_REAL="$(readlink -f -- "$PG_LINK")"
  PG_LOG_REAL="$(readlink -f -- "$PG_LOG")"
  PG_USER="$(stat -c %U -- "$PGDATA_REAL")"
  is_root || [[ $PG_USER == "$(id -un)" ]] ||
    die "the cluster in $PGDATA_REAL belongs to $PG_USER: run this as root or as $PG_USER"
  [[ $(<"$PGDATA_REAL/PG_VERSION") == "$PG_MAJOR" ]] ||
    die "the cluster in $PGDATA_REAL is PostgreSQL $(<"$PGDATA_REAL/PG_VERSION"), not $PG_MAJOR; remove it (rm -rf .data) to start afresh"
}

pg_init() {  # [OWNER_PASSWORD]: a new one by default (scripts/citus.sh gives its nodes one)
  local fb locale pw
  pg_pick_user
  fb="$(pg_fallback_dir)"
  # Symlinks left from a cluster kept outside the repo that is gone now.
  [[ ! -L $PG_LINK ]] || rm -f -- "$PG_LINK"
  [[ ! -L $PG_LOG ]] || rm -f -- "$PG_LOG"
  # The cluster user must traverse every folder down to .data/log. A clone in
  # a private folder (e.g. under /root, mode 700) fails this; rather than
  # opening up the user's folders, keep the cluster files outside the repo.
  if as_pg test -x "$DATA/log"; then
    mkdir -p "$PG_LINK"
    chmod 700 "$PG_LINK"
    touch "$PG_LOG"
    if is_root; then chown "$PG_USER:" "$PG_LINK" "$PG_LOG"; fi
  else
    say "$PG_USER cannot reach $DATA (a parent folder is private): keeping the cluster in $fb"
    mkdir -p "$fb/data"
    chmod 755 "$PG_FALLBACK_BASE"
    chmod 700 "$fb" "$fb/data"
    touch "$fb/postgres.log"
    printf '%s\n' "$ROOT" >"$fb/checkout"   # tells which checkout this belongs to
    chown -R "$PG_USER:" "$fb"
    pg_link_fallback "$fb"
  fi
  PGDATA_REAL="$(readlink -f -- "$PG_LINK")"
  PG_LOG_REAL="$(readlink -f -- "$PG_LOG")"

  locale=C
  if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then locale=C.UTF-8; fi
  pw="${1:-$(new_password)}"
  PWFILE="$(mktemp)"
  printf '%s\n' "$pw" >"$PWFILE"
  if is_root; then chown "$PG_USER:" "$PWFILE"; fi
  say "creating a PostgreSQL $PG_MAJOR cluster in $PGDATA_REAL (locale $locale)"
  if ! as_pg "$PG_BIN/initdb" -D "$PGDATA_REAL" -U "$PG_SUPERUSER" --pwfile="$PWFILE" \
       --encoding=UTF8 --locale="$locale" --auth-local=peer --auth-host=scram-sha-256 \
       >"$DATA/log/initdb.log" 2>&1; then
    tail -n 20 "$DATA/log/initdb.log" >&2
    die "initdb failed (full log: .data/log/initdb.log)"
  fi
  rm -f "$PWFILE"
  write_db_env "$pw" "" "$PG_PORT"   # the app role's line comes once the server is up
}

# Appended once. The port is not here: pg_ctl passes -p on every start, so
# WUZHANG_PG_PORT can change it later.
pg_configure() {
  local conf="$PGDATA_REAL/postgresql.conf"
  if grep -q '^# wuzhang dev settings' "$conf"; then return 0; fi
  cat >>"$conf" <<'EOF'

# wuzhang dev settings (added by scripts/dev.sh, which passes the port with -p)
listen_addresses = '127.0.0.1'
unix_socket_directories = ''	# TCP only
shared_buffers = 256MB
max_connections = 200
logging_collector = off
EOF
}

new_password() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

write_db_env() {  # OWNER_PASSWORD APP_PASSWORD PORT (no DATABASE_URL line without APP_PASSWORD)
  (umask 077 && {
     [[ -z $2 ]] || printf 'DATABASE_URL=postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' \
       "$PG_APP_ROLE" "$2" "$3" "$PG_DB"
     printf 'WUZHANG_MIGRATION_DATABASE_URL=postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' \
       "$PG_SUPERUSER" "$1" "$3" "$PG_DB"
   } >"$DB_ENV.tmp")
  mv -f "$DB_ENV.tmp" "$DB_ENV"
}

db_env_url() {  # [VARIABLE]: DATABASE_URL by default
  [[ -f $DB_ENV ]] || return 0
  sed -n "s/^${1:-DATABASE_URL}=//p" "$DB_ENV" | head -n1
}

url_password_of() {  # USER: the password of USER's URL in db.env
  { db_env_url WUZHANG_MIGRATION_DATABASE_URL; db_env_url DATABASE_URL; } |
    sed -n "s|^[^:]*://$1:\([^@]*\)@.*|\1|p" | head -n1
}

# The owner's password; a db.env written before the app role had it in DATABASE_URL.
db_env_password() { url_password_of "$PG_SUPERUSER"; }

# Prints the postmaster's pid if it is running on our data directory. After a
# crash or reboot postmaster.pid may name a pid that now belongs to another
# process, so the process must also have our data directory as its cwd.
pg_running_pid() {
  local pid
  [[ -f $PGDATA_REAL/postmaster.pid ]] || return 1
  pid="$(head -n1 "$PGDATA_REAL/postmaster.pid")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ $(readlink -f "/proc/$pid/cwd" 2>/dev/null) == "$PGDATA_REAL" ]] || return 1
  printf '%s\n' "$pid"
}

pg_clear_stale_pid() {
  if [[ -f $PGDATA_REAL/postmaster.pid ]] && ! pg_running_pid >/dev/null; then
    say "removing stale postmaster.pid (left by a crash or reboot)"
    rm -f "$PGDATA_REAL/postmaster.pid"
  fi
}

# An apt upgrade of postgresql-15 (installing postgresql-server-dev-15 does one) replaces the
# binary under a running server, which then fails to load libraries ("undefined symbol").
pg_binary_replaced() {  # PID
  [[ $(readlink "/proc/$1/exe" 2>/dev/null) == *" (deleted)" ]]
}

pg_stop_cluster() {
  if pg_running_pid >/dev/null; then
    say "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_REAL" -m fast -w -t 60 -s stop
  else
    pg_clear_stale_pid
    return 1
  fi
}

# shellcheck disable=SC2016  # $1 is expanded by the inner bash
port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# --- db-start / db-stop / db-env -------------------------------------------------

cmd_db_start() {
  local pw app_pw port pid
  if [[ -n ${DATABASE_URL:-} ]]; then
    say "using DATABASE_URL from the environment; no local PostgreSQL started"
    return 0
  fi
  pg_find_bin
  pg_find || pg_init
  pg_configure

  pw="$(db_env_password)"
  if [[ -z $pw ]]; then
    # .data/db.env holds the only copy of the password: set a new one in
    # single-user mode, which needs the server stopped.
    say "no password on record for the existing cluster; setting a new one"
    pg_stop_cluster || true
    pw="$(new_password)"
    as_pg "$PG_BIN/postgres" --single -D "$PGDATA_REAL" postgres \
      <<<"ALTER ROLE $PG_SUPERUSER PASSWORD '$pw';" >/dev/null 2>>"$PG_LOG_REAL" ||
      die "could not set the password (log: .data/log/postgres.log)"
  fi

  if pid="$(pg_running_pid)" && pg_binary_replaced "$pid"; then
    say "PostgreSQL was started by a binary that has since been upgraded: restarting it"
    pg_stop_cluster
  fi
  if pid="$(pg_running_pid)"; then
    port="$(sed -n 4p "$PGDATA_REAL/postmaster.pid")"
    say "PostgreSQL already running on 127.0.0.1:$port (pid $pid)"
    [[ $port == "$PG_PORT" ]] ||
      say "note: WUZHANG_PG_PORT=$PG_PORT takes effect after: scripts/dev.sh db-stop"
  else
    port="$PG_PORT"
    pg_clear_stale_pid
    if [[ ! -e $PG_LOG_REAL ]]; then   # pg_ctl opens it as the cluster user
      touch "$PG_LOG_REAL"
      if is_root; then chown "$PG_USER:" "$PG_LOG_REAL"; fi
    fi
    port_in_use "$port" &&
      die "port $port on 127.0.0.1 is taken by another program; pick a free one, e.g. WUZHANG_PG_PORT=55433 make test"
    say "starting PostgreSQL on 127.0.0.1:$port (log: .data/log/postgres.log)"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_REAL" -l "$PG_LOG_REAL" -o "-p $port" -w -t 60 -s start; then
      tail -n 20 "$PG_LOG_REAL" >&2
      die "PostgreSQL did not start (log: .data/log/postgres.log)"
    fi
    PG_STARTED_HERE=1
  fi

  local psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_SUPERUSER" -d postgres)
  if [[ -z $(PGPASSWORD="$pw" PGCONNECT_TIMEOUT=10 "${psql[@]}" -tAc \
             "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
    say "creating database $PG_DB"
    PGPASSWORD="$pw" PGCONNECT_TIMEOUT=10 "${psql[@]}" -c "CREATE DATABASE $PG_DB"
  fi
  # The service's own role, made (or its password set) on every start, so a cluster made
  # before it existed gets it too; migration 0112 grants it its rights.
  app_pw="$(url_password_of "$PG_APP_ROLE")"
  [[ -n $app_pw ]] || app_pw="$(new_password)"
  PGPASSWORD="$pw" PGCONNECT_TIMEOUT=10 "${psql[@]}" -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_APP_ROLE') THEN CREATE ROLE $PG_APP_ROLE; END IF;
    END \$\$;" \
    -c "ALTER ROLE $PG_APP_ROLE LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '$app_pw'"
  write_db_env "$pw" "$app_pw" "$port"
}

cmd_db_stop() {
  pg_find_bin
  if ! pg_find; then
    say "no local PostgreSQL cluster"
  elif ! pg_stop_cluster; then
    say "PostgreSQL is not running"
  fi
}

cmd_db_env() {
  (use_db_url && printf 'export DATABASE_URL=%q WUZHANG_MIGRATION_DATABASE_URL=%q\n' \
     "$DATABASE_URL" "$WUZHANG_MIGRATION_DATABASE_URL")
}

# Both URLs from the same place: the environment (an existing database; the owner's
# defaults to DATABASE_URL) or .data/db.env (the local cluster), never one of each.
use_db_url() {
  if [[ -n ${DATABASE_URL:-} ]]; then
    WUZHANG_MIGRATION_DATABASE_URL="${WUZHANG_MIGRATION_DATABASE_URL:-$DATABASE_URL}"
  else
    DATABASE_URL="$(db_env_url)"
    WUZHANG_MIGRATION_DATABASE_URL="$(db_env_url WUZHANG_MIGRATION_DATABASE_URL)"
    [[ -n $DATABASE_URL && -n $WUZHANG_MIGRATION_DATABASE_URL ]] ||
      die "no DATABASE_URL (and no complete .data/db.env; run: scripts/dev.sh db-start)"
  fi
  export DATABASE_URL WUZHANG_MIGRATION_DATABASE_URL
}

# --- run / test / stop -----------------------------------------------------------

# Prints the pid from .data/run/server.pid if that process is still our server
# (pids are reused after a reboot).
server_pid() {
  local pid
  [[ -f $SERVER_PID ]] || return 1
  pid="$(<"$SERVER_PID")"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'wuzhang serve|dev\.sh run' || return 1
  printf '%s\n' "$pid"
}

cmd_run() {
  local pid
  if pid="$(server_pid)"; then
    die "the server is already running (pid $pid); stop it with: make stop"
  fi
  cmd_deps
  cmd_venv
  cmd_web
  cmd_db_start
  use_db_url
  say "migrating the database (as its owner)"
  "$VENV/bin/alembic" upgrade head
  say "loading the demo county"
  "$VENV/bin/wuzhang" demo load
  # A year of history takes about a minute (every case walks the real workflow): on request.
  say "for the dashboard's figures, load a year of demo history (about a minute; safe while serving):"
  say "  $VENV/bin/wuzhang demo history --year 2023"
  # exec keeps this pid, so `make stop` from another terminal can find the server.
  mkdir -p "$DATA/run"
  echo $$ >"$SERVER_PID"
  exec "$VENV/bin/wuzhang" serve
}

cmd_test() {
  local rc=0
  cmd_deps
  cmd_venv
  cmd_web
  cmd_check
  cmd_db_start
  use_db_url
  # Two processes (pytest-xdist): the suite mostly waits on PostgreSQL and on the servers and
  # browsers it starts, so two halve its time on two cores. WUZHANG_TEST_PROCESSES=0: one.
  "$VENV/bin/python" -m pytest -n "${WUZHANG_TEST_PROCESSES:-2}" "$@" || rc=$?
  # CI must not leave a server behind; a developer keeps it for fast reruns.
  if [[ ${CI:-} == true ]] && ((PG_STARTED_HERE)); then
    (cmd_db_stop) || say "warning: could not stop PostgreSQL"
  fi
  if ((rc == 5)); then
    printf 'error: pytest collected no tests (exit code 5); that counts as a failure\n' >&2
  fi
  return "$rc"
}

cmd_bench() {
  cmd_deps "${BENCH_PACKAGES[@]}"
  cmd_venv
  cmd_db_start
  use_db_url
  "$VENV/bin/python" bench/request_path.py "$@"
}

cmd_stop() {
  local pid i
  if pid="$(server_pid)"; then
    say "stopping the server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "the server ignored SIGTERM for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$SERVER_PID"
  cmd_db_stop
}

main() {
  local cmd="${1:-}"
  shift || true
  case $cmd in
    deps) cmd_deps ;;
    venv) cmd_venv ;;
    web) cmd_web ;;
    db-start) cmd_db_start ;;
    db-stop) cmd_db_stop ;;
    db-env) cmd_db_env ;;
    check) cmd_check ;;
    run) cmd_run ;;
    test) cmd_test "$@" ;;
    bench) cmd_bench "$@" ;;
    lock) cmd_lock ;;
    stop) cmd_stop ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
  esac
}

# scripts/citus.sh sources this file for its helpers; run, it does a command.
# exit on the same line: bash reads no further, so editing this file while it runs is safe.
[[ ${BASH_SOURCE[0]} != "$0" ]] || { main "$@"; exit; }
