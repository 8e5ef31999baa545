#!/usr/bin/env bash
# Local stack: PostgreSQL + Redis (scripts/services.sh) under .local/run, then the web
# server (gunicorn), a Celery worker and Celery beat in the background.
#
#   scripts/run.sh start   (make run)   idempotent: live processes are left alone
#   scripts/run.sh stop    (make stop)  stops exactly what the pidfiles under .local/run name
#
# WEB_PORT (default 8000) changes the web server's port.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
cd "$ROOT"

RUN=$ROOT/.local/run
LOGDIR=$RUN/log
WEB_PORT=${WEB_PORT:-8000}
BASE_URL=http://127.0.0.1:$WEB_PORT
PY=$ROOT/.venv/bin/python
NAMES=(web worker beat)

log() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 1; }

# pid_of NAME: print the pid from RUN/NAME.pid if that process is alive and is ours.
pid_of() {
    local name=$1 pidfile=$RUN/$1.pid pid pattern
    [ -f "$pidfile" ] || return 1
    pid=$(tr -d '[:space:]' <"$pidfile")
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    case $name in
        web) pattern=gunicorn ;;
        *) pattern=celery ;;
    esac
    # guard against a recycled pid belonging to an unrelated process
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$pattern" || return 1
    echo "$pid"
}

port_busy() {
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket()
# As gunicorn binds: connections of a stopped server in TIME_WAIT do not make the port busy.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

http_ok() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
    else
        "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "$1" 2>/dev/null
    fi
}

# Start a command in its own session, detached from this shell and its terminal.
spawn() {
    local logfile=$1
    shift
    if command -v setsid >/dev/null 2>&1; then
        setsid nohup "$@" >>"$logfile" 2>&1 </dev/null &
    else
        nohup "$@" >>"$logfile" 2>&1 </dev/null &
    fi
    SPAWNED=$!
}

# wait_pidfile NAME LAUNCHER_PID: wait until NAME's pidfile names a live process.
wait_pidfile() {
    local name=$1 launcher=${2:-} i
    for i in $(seq 1 300); do
        if pid_of "$name" >/dev/null; then return 0; fi
        if [ -n "$launcher" ] && ! kill -0 "$launcher" 2>/dev/null \
            && ! pid_of "$name" >/dev/null; then
            break
        fi
        sleep 0.1
    done
    tail -n 40 "$LOGDIR/$name.log" >&2 2>/dev/null || true
    die "$name did not start (log: $LOGDIR/$name.log)"
}

start_web() {
    local pid
    if pid=$(pid_of web); then
        log "web already running (pid $pid)"
        return
    fi
    rm -f "$RUN/web.pid"
    if port_busy "$WEB_PORT"; then
        die "127.0.0.1:$WEB_PORT is taken by another program; stop it or set WEB_PORT"
    fi
    log "starting web on $BASE_URL"
    "$ROOT/.venv/bin/gunicorn" marlin.wsgi:application --chdir "$ROOT" \
        --bind "127.0.0.1:$WEB_PORT" --workers 2 \
        --pid "$RUN/web.pid" --daemon \
        --error-logfile "$LOGDIR/web.log" --access-logfile "$LOGDIR/web-access.log" \
        </dev/null
    wait_pidfile web
}

start_worker() {
    local pid
    if pid=$(pid_of worker); then
        log "worker already running (pid $pid)"
        return
    fi
    rm -f "$RUN/worker.pid"
    log "starting celery worker"
    spawn "$LOGDIR/worker.log" "$ROOT/.venv/bin/celery" -A marlin.celery_app worker \
        --loglevel=INFO --concurrency=2 --pidfile="$RUN/worker.pid"
    wait_pidfile worker "$SPAWNED"
}

start_beat() {
    local pid
    if pid=$(pid_of beat); then
        log "beat already running (pid $pid)"
        return
    fi
    rm -f "$RUN/beat.pid"
    log "starting celery beat"
    spawn "$LOGDIR/beat.log" "$ROOT/.venv/bin/celery" -A marlin.celery_app beat \
        --loglevel=INFO --pidfile="$RUN/beat.pid" --schedule="$RUN/celerybeat-schedule"
    wait_pidfile beat "$SPAWNED"
}

cmd_start() {
    [ -x "$PY" ] || die ".venv is missing; run: make venv"
    mkdir -p "$LOGDIR"
    PG_PORT_PREFERRED=${PG_PORT_PREFERRED:-54329} REDIS_PORT_PREFERRED=${REDIS_PORT_PREFERRED:-63799} \
        scripts/services.sh start "$RUN"
    scripts/sandbox-tools.sh
    set -a
    # shellcheck disable=SC1091
    . "$RUN/env"
    set +a
    export DATABASE_URL REDIS_URL
    export DJANGO_SETTINGS_MODULE=marlin.settings
    export DEBUG=true
    # Evidence work trees, the repository cache and the demo repositories live with the run.
    export EVIDENCE_DIR=${EVIDENCE_DIR:-$RUN/evidence}

    "$PY" manage.py migrate --noinput
    "$PY" manage.py collectstatic --noinput >/dev/null
    "$PY" manage.py seed_demo

    start_web
    start_worker
    start_beat

    local i
    for i in $(seq 1 60); do
        if http_ok "$BASE_URL/healthz"; then break; fi
        if [ "$i" -eq 60 ]; then
            tail -n 40 "$LOGDIR/web.log" >&2 || true
            die "$BASE_URL/healthz did not answer within 60 s (logs: $LOGDIR)"
        fi
        sleep 1
    done

    echo
    echo "Marlin is running (logs in .local/run/log/, stop with: make stop)"
    echo "  app:      $BASE_URL/"
    echo "  API docs: $BASE_URL/api/docs/"
    echo "  admin:    $BASE_URL/admin/"
    echo "  database: $DATABASE_URL"
    echo "  redis:    $REDIS_URL"
    echo
    "$PY" manage.py seed_demo --print-logins
}

# stop_one NAME: TERM the pidfile's process and wait until it and its children (gunicorn
# workers, the Celery prefork pool) have exited; KILL them after 30 s.
stop_one() {
    local name=$1 pid i procs p alive
    if ! pid=$(pid_of "$name"); then
        rm -f "$RUN/$name.pid"
        log "$name: not running"
        return 0
    fi
    procs="$pid $(ps -o pid= --ppid "$pid" 2>/dev/null | tr '\n' ' ')"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do
        alive=""
        for p in $procs; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -n "$alive" ] || break
        sleep 0.1
    done
    if [ -n "$alive" ]; then
        log "$name did not exit within 30 s; killing pids:$alive"
        # shellcheck disable=SC2086
        kill -KILL $alive 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$RUN/$name.pid"
}

cmd_stop() {
    local name rc=0
    for name in "${NAMES[@]}"; do
        stop_one "$name" || rc=1
    done
    scripts/services.sh stop "$RUN" || rc=1
    return $rc
}

case ${1:-start} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    *)
        echo "usage: $0 {start|stop}" >&2
        exit 2
        ;;
esac
