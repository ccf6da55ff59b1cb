#!/usr/bin/env bash
# Manages a private, throwaway PostgreSQL cluster for local tests and benchmarks.
#
#   pg_local.sh start  <dir> [port]    init (if needed) + start; prints the DSN (one line, stdout)
#   pg_local.sh stop   <dir> [--immediate]
#   pg_local.sh status <dir>           exit 0 running, 3 stopped, 4 not initialized
#   pg_local.sh dsn    <dir>           prints the DSN (whether or not the server is running)
#
# Layout of <dir>: data/ (PGDATA, initdb --locale=C), postgres.log, initdb.log, the unix socket
# (.s.PGSQL.<port>), and the last DSN printed (dsn). TCP listens on 127.0.0.1 only; auth is trust.
# Without [port], the port of the previous start is reused if free, else the first free one from
# 55432 up.
#
# Environment:
#   PG_LOCAL_DB=order_platform  database created on start (if missing) and named in the DSN
#   PG_LOCAL_FAST=1             fsync=off, synchronous_commit=off, full_page_writes=off
#                               (default: all three on; re-evaluated at every start). With it,
#                               `stop --immediate` loses the last commits (even acknowledged ones).
#   PG_LOCAL_BINDIR             PostgreSQL bin dir (default /usr/lib/postgresql/15/bin, else the
#                               highest /usr/lib/postgresql/*/bin)
#   PG_LOCAL_USER               OS user the server runs as when invoked as root (default postgres;
#                               if that user does not exist a system user "pglocal" is created)
#
# PostgreSQL refuses to run as root: as root, initdb/pg_ctl run as the unprivileged user, who owns
# <dir>; every ancestor of <dir> must be searchable (o+x) by that user (e.g. use /tmp/...).
set -euo pipefail

readonly FIRST_PORT=55432
readonly LAST_PORT=55999

die() { echo "pg_local.sh: $*" >&2; exit 1; }
log() { echo "pg_local.sh: $*" >&2; }

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

find_bindir() {
  if [[ -n "${PG_LOCAL_BINDIR:-}" ]]; then
    [[ -x "${PG_LOCAL_BINDIR}/pg_ctl" ]] || die "PG_LOCAL_BINDIR=${PG_LOCAL_BINDIR} has no pg_ctl"
    echo "${PG_LOCAL_BINDIR}"
    return
  fi
  if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    echo /usr/lib/postgresql/15/bin
    return
  fi
  local best="" v
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" ]] || continue
    v="${d#/usr/lib/postgresql/}"
    v="${v%/bin}"
    if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -n1)" == "$v" ]]; then
      best="$v"
    fi
  done
  [[ -n "$best" ]] || die "no PostgreSQL found under /usr/lib/postgresql/*/bin (run deploy/install-deps.sh)"
  echo "/usr/lib/postgresql/${best}/bin"
}

# Sets RUN_USER (empty when not root: commands then run directly).
pick_run_user() {
  RUN_USER=""
  [[ "$(id -u)" -eq 0 ]] || return 0
  RUN_USER="${PG_LOCAL_USER:-postgres}"
  if ! id -u "$RUN_USER" >/dev/null 2>&1; then
    if [[ -n "${PG_LOCAL_USER:-}" ]]; then
      die "PG_LOCAL_USER=${PG_LOCAL_USER} does not exist"
    fi
    RUN_USER=pglocal
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
      log "no 'postgres' user; creating system user '$RUN_USER' to run the server"
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$RUN_USER" >&2 ||
        id -u "$RUN_USER" >/dev/null 2>&1 || die "could not create user $RUN_USER"
    fi
  fi
}

# Runs a command as RUN_USER (or directly when not root), from / so that a cwd the user cannot
# read (e.g. /root) does not break initdb/postgres.
as_pg() {
  if [[ -z "$RUN_USER" ]]; then
    (cd / && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$RUN_USER" -- "$@")
  elif command -v setpriv >/dev/null 2>&1; then
    (cd / && setpriv --reuid="$RUN_USER" --regid="$(id -g "$RUN_USER")" --init-groups -- "$@")
  else
    die "need runuser or setpriv (util-linux) to drop root privileges"
  fi
}

# Makes a path we created owned by RUN_USER (no-op when not root).
give_to_pg() {
  if [[ -n "$RUN_USER" ]]; then chown "$RUN_USER:" "$@"; fi
}

# Port the server is configured for (from our include file), empty if none.
configured_port() {
  local f="$DATA/pg_local.conf"
  [[ -f "$f" ]] || return 0
  sed -n "s/^port = \([0-9]\+\)$/\1/p" "$f" | tail -n1
}

# Port of the running postmaster (line 4 of postmaster.pid), empty if not running.
running_port() {
  if is_running; then
    sed -n '4p' "$DATA/postmaster.pid" 2>/dev/null || true
  fi
}

is_initialized() { [[ -f "$DATA/PG_VERSION" ]]; }

is_running() {
  is_initialized || return 1
  as_pg "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_in_use() {
  local port="$1"
  if command -v ss >/dev/null 2>&1; then
    [[ -n "$(ss -Htan "sport = :$port" 2>/dev/null)" ]] && return 0
  fi
  # Something accepting connections on it (also catches the case where ss is missing).
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
  return 1
}

# The database for the DSN: PG_LOCAL_DB, else (only with "recorded") the one in the last DSN
# printed by start, else order_platform.
db_name() {
  local db="${PG_LOCAL_DB:-}"
  if [[ -z "$db" && "${1:-}" == recorded && -f "$DIR/dsn" ]]; then
    db="$(sed -n 's#^postgresql://[^/]*/\([^?]*\).*#\1#p' "$DIR/dsn")"
  fi
  db="${db:-order_platform}"
  [[ "$db" =~ ^[A-Za-z0-9_.-]+$ ]] || die "PG_LOCAL_DB must match [A-Za-z0-9_.-]+, got '$db'"
  echo "$db"
}

dsn_for() { echo "postgresql://postgres@127.0.0.1:$1/$2"; }

write_conf() {
  local port="$1" fast=on
  [[ "${PG_LOCAL_FAST:-0}" == "1" ]] && fast=off
  local tmp="$DATA/pg_local.conf.tmp"
  cat >"$tmp" <<EOF
# Written by deploy/pg_local.sh at every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 256MB
fsync = $fast
synchronous_commit = $fast
full_page_writes = $fast
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  give_to_pg "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$DATA/pg_local.conf"
}

init_cluster() {
  log "initializing cluster in $DATA"
  : >"$DIR/initdb.log"
  give_to_pg "$DIR/initdb.log"
  if ! as_pg "$BINDIR/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 --locale=C \
      --no-sync >>"$DIR/initdb.log" 2>&1; then
    cat "$DIR/initdb.log" >&2
    die "initdb failed (log: $DIR/initdb.log)"
  fi
  echo "include_if_exists = 'pg_local.conf'" >>"$DATA/postgresql.conf"
}

ensure_database() {
  local port="$1" db="$2"
  # \gexec runs the generated CREATE DATABASE only when the database is missing.
  as_pg "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$port" -U postgres -d postgres \
    -v db="$db" >/dev/null <<'EOF' || die "could not create database $db"
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
EOF
}

# Starts the server on $1; returns 1 (without dying) if it failed because the port was taken.
try_start() {
  local port="$1"
  write_conf "$port"
  local before=0
  [[ -f "$DIR/postgres.log" ]] && before="$(wc -c <"$DIR/postgres.log")"
  if as_pg "$BINDIR/pg_ctl" -D "$DATA" -l "$DIR/postgres.log" -w -t 120 -s start >&2; then
    return 0
  fi
  if tail -c +"$((before + 1))" "$DIR/postgres.log" 2>/dev/null |
      grep -q 'could not bind\|could not create any TCP/IP sockets'; then
    return 1
  fi
  tail -n 30 "$DIR/postgres.log" >&2 || true
  die "server failed to start (log: $DIR/postgres.log)"
}

cmd_start() {
  local want_port="${1:-}"
  [[ -z "$want_port" || "$want_port" =~ ^[0-9]+$ ]] || die "port must be a number, got '$want_port'"
  local db
  db="$(db_name)"

  mkdir -p "$DIR"
  give_to_pg "$DIR"
  chmod 0700 "$DIR"
  if [[ -n "$RUN_USER" ]] && ! as_pg test -w "$DIR" -a -x "$DIR"; then
    die "user $RUN_USER cannot reach $DIR: every parent directory needs o+x (or use a dir under /tmp)"
  fi

  if is_running; then
    local port
    port="$(running_port)"
    if [[ -n "$want_port" && "$want_port" != "$port" ]]; then
      die "already running on port $port (asked for $want_port); stop it first"
    fi
    ensure_database "$port" "$db"
    dsn_for "$port" "$db" | tee "$DIR/dsn"
    return 0
  fi

  is_initialized || init_cluster

  local port
  if [[ -n "$want_port" ]]; then
    port="$want_port"
    try_start "$port" || die "port $port is in use (log: $DIR/postgres.log)"
  else
    # Prefer the port used last time so the DSN stays stable across restarts.
    port="$(configured_port)"
    if [[ -z "$port" ]] || port_in_use "$port"; then port="$FIRST_PORT"; fi
    while :; do
      while port_in_use "$port"; do
        port=$((port + 1))
        ((port <= LAST_PORT)) || die "no free port in $FIRST_PORT..$LAST_PORT"
      done
      try_start "$port" && break
      log "port $port is taken, trying the next one"
      port=$((port + 1))
      ((port <= LAST_PORT)) || die "no free port in $FIRST_PORT..$LAST_PORT"
    done
  fi
  as_pg "$BINDIR/pg_isready" -q -h "$DIR" -p "$port" -t 60 ||
    die "server started but is not accepting connections (log: $DIR/postgres.log)"
  ensure_database "$port" "$db"
  dsn_for "$port" "$db" | tee "$DIR/dsn"
}

cmd_stop() {
  local mode=fast
  case "${1:-}" in
    "") ;;
    --immediate) mode=immediate ;;
    *) usage ;;
  esac
  is_initialized || die "$DIR is not a pg_local cluster"
  if ! is_running; then
    log "not running"
    return 0
  fi
  as_pg "$BINDIR/pg_ctl" -D "$DATA" -m "$mode" -w -t 120 -s stop >&2 ||
    die "pg_ctl stop failed (log: $DIR/postgres.log)"
}

cmd_status() {
  if ! is_initialized; then
    echo "not initialized: $DIR"
    exit 4
  fi
  if is_running; then
    echo "running: pid $(sed -n 1p "$DATA/postmaster.pid"), port $(running_port), data $DATA"
    exit 0
  fi
  echo "stopped: data $DATA"
  exit 3
}

cmd_dsn() {
  is_initialized || die "$DIR is not a pg_local cluster"
  local port
  port="$(running_port)"
  port="${port:-$(configured_port)}"
  [[ -n "$port" ]] || die "no port configured yet; run: pg_local.sh start $DIR"
  dsn_for "$port" "$(db_name recorded)"
}

main() {
  [[ $# -ge 2 ]] || usage
  local cmd="$1"
  DIR="$(realpath -m -- "$2")"
  DATA="$DIR/data"
  shift 2
  BINDIR="$(find_bindir)"
  pick_run_user

  case "$cmd" in
    start) [[ $# -le 1 ]] || usage; cmd_start "$@" ;;
    stop) [[ $# -le 1 ]] || usage; cmd_stop "$@" ;;
    status) [[ $# -eq 0 ]] || usage; cmd_status ;;
    dsn) [[ $# -eq 0 ]] || usage; cmd_dsn ;;
    *) usage ;;
  esac
}

main "$@"
