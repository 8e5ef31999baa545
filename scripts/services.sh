#!/usr/bin/env bash
# Manage a private PostgreSQL cluster and Redis server living under one folder.
#
#   scripts/services.sh start  DIR   start (or reuse) both servers, write DIR/env
#   scripts/services.sh stop   DIR   stop whatever runs from DIR (harmless if nothing)
#   scripts/services.sh status DIR   print whether each runs (exit 0 if both run, 3 otherwise)
#
# Environment:
#   PG_PORT_PREFERRED / REDIS_PORT_PREFERRED   port to try first (else any free port)
#   FAST_UNSAFE_PG=1                          fsync=off etc. (throwaway test clusters only)
#
# Layout: DIR/pg/data (cluster), DIR/pg/log/postgresql.log, DIR/pg (unix socket),
#         DIR/redis/{redis.pid,redis.log,port}, DIR/env (shell-sourceable).
# As root, PostgreSQL runs as the `postgres` system user (initdb refuses root).
set -euo pipefail

PROG=$(basename "$0")

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

usage() {
    echo "usage: $PROG {start|stop|status} DIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
CMD=$1
DIR_ARG=$2
[ -n "$DIR_ARG" ] || usage

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------- binaries --

find_pg_bin() {
    local ctl
    ctl=$(ls -1d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$ctl" ] && [ -x "$ctl" ] && dirname "$ctl"
}

install_packages() {
    local runner=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 \
            || die "PostgreSQL/Redis missing and not root without sudo; install: postgresql redis-server"
        runner=(sudo)
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install PostgreSQL and Redis yourself"
    log "installing postgresql and redis-server with apt-get"
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        postgresql redis-server
}

ensure_binaries() {
    PGBIN=$(find_pg_bin || true)
    if [ -z "$PGBIN" ] || ! command -v redis-server >/dev/null 2>&1 \
        || ! command -v redis-cli >/dev/null 2>&1; then
        install_packages
        PGBIN=$(find_pg_bin || true)
    fi
    [ -n "$PGBIN" ] || die "no /usr/lib/postgresql/*/bin/pg_ctl after install"
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found after install"
    command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found after install"
}

# ------------------------------------------------------------------ paths --

abspath() {
    # DIR may not exist yet for `stop`/`status`; resolve what we can.
    if [ -d "$1" ]; then (cd "$1" && pwd -P); else
        case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
    fi
}

set_paths() {
    DIR=$(abspath "$DIR_ARG")
    ENV_FILE=$DIR/env
    REDIS_DIR=$DIR/redis
    REDIS_PID=$REDIS_DIR/redis.pid
    # DIR/pg may be a symlink to a /tmp folder when the postgres user cannot
    # traverse DIR (e.g. a checkout under /root); always work on the real path.
    if [ -e "$DIR/pg" ]; then PGROOT=$(readlink -f "$DIR/pg"); else PGROOT=$DIR/pg; fi
    PGDATA_DIR=$PGROOT/data
    PGLOG_DIR=$PGROOT/log
}

# ------------------------------------------------------------------ ports --

port_is_free() {
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
# Redis and PostgreSQL bind with SO_REUSEADDR: closed connections in TIME_WAIT are no obstacle.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

any_free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# pick_port PREFERRED [AVOID]
pick_port() {
    local preferred=${1:-} avoid=${2:-} p i
    command -v python3 >/dev/null 2>&1 || die "python3 is needed to find free ports"
    if [ -n "$preferred" ] && [ "$preferred" != "$avoid" ] && port_is_free "$preferred"; then
        echo "$preferred"
        return
    fi
    [ -z "$preferred" ] || log "preferred port $preferred is busy; picking another"
    for i in 1 2 3 4 5 6 7 8 9 10; do
        p=$(any_free_port)
        if [ "$p" != "$avoid" ]; then echo "$p"; return; fi
    done
    die "could not find a free port"
}

# ------------------------------------------------------------- postgresql --

# Run a PostgreSQL server-side command as the cluster owner.
pg_as_owner() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            (cd "$PGROOT" && runuser -u postgres -- "$@")
        else
            local q
            q=$(printf '%q ' "$@")
            (cd "$PGROOT" && su postgres -s /bin/sh -c "$q")
        fi
    else
        (cd "$PGROOT" && "$@")
    fi
}

ensure_postgres_user() {
    is_root || return 0
    if ! id -u postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
            --shell /bin/bash postgres
    fi
}

# Create DIR/pg so that the cluster user can write it.
prepare_pg_root() {
    if [ -e "$DIR/pg" ]; then
        PGROOT=$(readlink -f "$DIR/pg")
    else
        mkdir -p "$DIR/pg"
        PGROOT=$DIR/pg
        if is_root; then
            chown postgres: "$PGROOT"
            if ! (cd / && runuser -u postgres -- test -w "$PGROOT" -a -x "$PGROOT") 2>/dev/null; then
                # The postgres user cannot reach DIR (a parent folder is private).
                rmdir "$PGROOT"
                PGROOT=$(mktemp -d /tmp/marlin-pg.XXXXXX)
                chmod 0755 "$PGROOT"
                ln -s "$PGROOT" "$DIR/pg"
                log "postgres user cannot traverse $DIR; cluster lives in $PGROOT (linked from $DIR/pg)"
            fi
        fi
    fi
    PGDATA_DIR=$PGROOT/data
    PGLOG_DIR=$PGROOT/log
    mkdir -p "$PGLOG_DIR"
    if is_root; then chown -R postgres: "$PGROOT"; fi
}

pg_running() {
    [ -f "$PGDATA_DIR/PG_VERSION" ] || return 1
    [ -f "$PGDATA_DIR/postmaster.pid" ] || return 1
    local pgbin=${PGBIN:-$(find_pg_bin || true)}
    [ -n "$pgbin" ] || return 1
    pg_as_owner "$pgbin/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

pg_running_port() {
    # line 4 of postmaster.pid is the port
    sed -n 4p "$PGDATA_DIR/postmaster.pid" 2>/dev/null | tr -d '[:space:]'
}

pg_running_pid() {
    sed -n 1p "$PGDATA_DIR/postmaster.pid" 2>/dev/null | tr -d '[:space:]'
}

pg_initdb() {
    [ -f "$PGDATA_DIR/PG_VERSION" ] && return 0
    log "initdb $PGDATA_DIR"
    if ! pg_as_owner "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -U postgres \
        --encoding=UTF8 --locale=C.UTF-8 >"$PGLOG_DIR/initdb.log" 2>&1; then
        log "initdb with --locale=C.UTF-8 failed; retrying with --no-locale"
        pg_as_owner rm -rf "$PGDATA_DIR"
        pg_as_owner "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -U postgres \
            --encoding=UTF8 --no-locale >>"$PGLOG_DIR/initdb.log" 2>&1 \
            || { cat "$PGLOG_DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    echo "include_if_exists = 'marlin.conf'" >>"$PGDATA_DIR/postgresql.conf"
}

pg_write_conf() {
    local port=$1 sockdir=$PGROOT
    # Unix socket paths are limited to ~107 bytes; disable the socket rather
    # than fail when DIR is very deep (we only use TCP anyway).
    if [ $(( ${#sockdir} + 20 )) -gt 100 ]; then sockdir=""; fi
    {
        echo "# written by scripts/services.sh on every start"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$sockdir'"
        echo "max_connections = 100"
        if [ "${FAST_UNSAFE_PG:-}" = "1" ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } >"$PGDATA_DIR/marlin.conf"
    if is_root; then chown postgres: "$PGDATA_DIR/marlin.conf"; fi
}

pg_psql() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

pg_create_role_db() {
    pg_psql <<'EOF'
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'marlin') THEN
        CREATE ROLE marlin LOGIN SUPERUSER;
    ELSE
        ALTER ROLE marlin LOGIN SUPERUSER;
    END IF;
END
$$;
SELECT 'CREATE DATABASE marlin OWNER marlin'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'marlin')\gexec
EOF
}

pg_start() {
    ensure_postgres_user
    prepare_pg_root
    if pg_running; then
        PG_PORT=$(pg_running_port)
        [ -n "$PG_PORT" ] || die "postgres runs in $PGDATA_DIR but its port is unknown"
        log "postgres already running on 127.0.0.1:$PG_PORT (reused)"
    else
        pg_initdb
        # A restart keeps the port of the last start, so clients' settings stay valid.
        local previous
        previous=$(sed -n 's/^port = //p' "$PGDATA_DIR/marlin.conf" 2>/dev/null || true)
        PG_PORT=$(pick_port "${previous:-${PG_PORT_PREFERRED:-}}")
        pg_write_conf "$PG_PORT"
        log "starting postgres on 127.0.0.1:$PG_PORT"
        # 9>&-: the daemon must not inherit (and keep holding) the DIR lock
        if ! pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG_DIR/postgresql.log" \
            -w -t 60 start >/dev/null 9>&-; then
            tail -n 30 "$PGLOG_DIR/postgresql.log" >&2 || true
            die "postgres failed to start (log: $PGLOG_DIR/postgresql.log)"
        fi
    fi
    pg_create_role_db
}

pg_stop() {
    if [ ! -f "$PGDATA_DIR/postmaster.pid" ]; then
        log "postgres: not running"
        return 0
    fi
    PGBIN=$(find_pg_bin || true)
    if [ -z "$PGBIN" ]; then
        log "postgres: no pg_ctl found; cannot stop"
        return 1
    fi
    if pg_running; then
        log "stopping postgres"
        pg_as_owner "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null
    else
        log "postgres: not running (stale pid file)"
    fi
}

# ------------------------------------------------------------------ redis --

redis_pid() {
    local pid
    [ -f "$REDIS_PID" ] || return 1
    pid=$(tr -d '[:space:]' <"$REDIS_PID")
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # make sure the pid was not recycled by some unrelated process
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server || return 1
    echo "$pid"
}

redis_running() { redis_pid >/dev/null; }

redis_running_port() { cat "$REDIS_DIR/port" 2>/dev/null | tr -d '[:space:]'; }

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

redis_start() {
    mkdir -p "$REDIS_DIR"
    if redis_running && REDIS_PORT=$(redis_running_port) && [ -n "$REDIS_PORT" ]; then
        log "redis already running on 127.0.0.1:$REDIS_PORT (reused)"
    else
        local previous
        previous=$(redis_running_port || true)
        rm -f "$REDIS_PID"
        REDIS_PORT=$(pick_port "${previous:-${REDIS_PORT_PREFERRED:-}}" "${PG_PORT:-}")
        log "starting redis on 127.0.0.1:$REDIS_PORT"
        echo "$REDIS_PORT" >"$REDIS_DIR/port"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
            --pidfile "$REDIS_PID" --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" \
            --save '' --appendonly no 9>&-
    fi
    local i
    for i in $(seq 1 100); do
        if redis_ping "$REDIS_PORT"; then return 0; fi
        sleep 0.1
    done
    tail -n 30 "$REDIS_DIR/redis.log" >&2 || true
    die "redis did not answer PING on port $REDIS_PORT (log: $REDIS_DIR/redis.log)"
}

redis_stop() {
    local pid i
    if ! pid=$(redis_pid); then
        log "redis: not running"
        rm -f "$REDIS_PID"
        return 0
    fi
    log "stopping redis (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$REDIS_PID"; return 0; }
        sleep 0.1
    done
    log "redis did not stop after 10s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$REDIS_PID"
}

# --------------------------------------------------------------- commands --

write_env() {
    local tmp=$ENV_FILE.tmp.$$
    cat >"$tmp" <<EOF
DATABASE_URL=postgres://marlin@127.0.0.1:$PG_PORT/marlin
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
PG_PORT=$PG_PORT
REDIS_PORT=$REDIS_PORT
EOF
    mv -f "$tmp" "$ENV_FILE"
}

lock_dir() {
    # serialise concurrent start/stop on the same DIR
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$DIR/.services.flock"
        flock -w 120 9 || die "another services.sh holds $DIR/.services.flock"
    fi
}

cmd_start() {
    ensure_binaries
    mkdir -p "$DIR_ARG"
    set_paths
    # mktemp -d makes 0700 folders; the postgres user must be able to traverse DIR.
    if is_root; then chmod go+rx "$DIR"; fi
    lock_dir
    pg_start
    redis_start
    write_env
    log "ready: $(head -n 2 "$ENV_FILE" | tr '\n' ' ')"
}

cmd_stop() {
    set_paths
    [ -d "$DIR" ] || { log "$DIR does not exist; nothing to stop"; return 0; }
    lock_dir
    local rc=0
    pg_stop || rc=1
    redis_stop || rc=1
    return $rc
}

cmd_status() {
    set_paths
    local rc=0
    PGBIN=$(find_pg_bin || true)
    if [ -d "$DIR" ] && pg_running; then
        echo "postgres: running (pid $(pg_running_pid), 127.0.0.1:$(pg_running_port), data $PGDATA_DIR)"
    else
        echo "postgres: not running"
        rc=3
    fi
    local pid
    if [ -d "$DIR" ] && pid=$(redis_pid); then
        echo "redis: running (pid $pid, 127.0.0.1:$(redis_running_port))"
    else
        echo "redis: not running"
        rc=3
    fi
    return $rc
}

case $CMD in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) usage ;;
esac
