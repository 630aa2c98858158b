#!/usr/bin/env bash
# Start/stop the test Kamailio (SIP switch) for huifang's integration tests.
#   scripts/peers/kamailio.sh start|stop|status|restart
# Listens on udp+tcp 127.0.0.1:${HUIFANG_KAMAILIO_PORT:-25060}.
# State (pid file, log, db copy, ctl socket path) lives in
# ${HUIFANG_PEERS_DIR:-<repo>/target/peers}/kamailio.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${HUIFANG_KAMAILIO_PORT:-25060}
PEERS_DIR=${HUIFANG_PEERS_DIR:-$ROOT/target/peers}
STATE=$PEERS_DIR/kamailio
CFG=$ROOT/tests/peers/kamailio.cfg
DB_SRC=$ROOT/tests/peers/kamailio-db
PIDFILE=$STATE/kamailio.pid
LOG=$STATE/kamailio.log
START_TIMEOUT=${HUIFANG_KAMAILIO_START_TIMEOUT:-20}

log() { printf 'kamailio.sh: %s\n' "$*"; }
die() { printf 'kamailio.sh: ERROR: %s\n' "$*" >&2; exit 1; }

pid_alive() {
    [ -s "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # guard against a recycled pid: it must still be a kamailio
    [ "$(cat "/proc/$pid/comm" 2>/dev/null || echo kamailio)" = kamailio ]
}

ctl_sock_path() {
    # unix socket paths are limited to 108 bytes; fall back to /tmp if needed
    local p=$STATE/kamailio_ctl
    if [ "${#p}" -gt 100 ]; then
        p=${TMPDIR:-/tmp}/huifang-kamctl-$(printf '%s' "$STATE" | cksum | cut -d' ' -f1).sock
    fi
    printf '%s' "$p"
}

# One SIP OPTIONS round trip over UDP with SIPp (exit 0 on a 200).
sip_ping() {
    local dir=$STATE/ping
    mkdir -p "$dir"
    local cp lp
    cp=$(free_port)
    lp=$(free_port)
    (cd "$dir" && timeout 10 sipp "127.0.0.1:$PORT" -sf "$ROOT/tests/peers/options.xml" \
        -i 127.0.0.1 -p "$lp" -cp "$cp" -m 1 -timeout 3s -timeout_error \
        -nostdin -trace_err -error_file "$dir/errors.log" >/dev/null 2>&1)
}

# A random high port for SIPp's local/control sockets. Checked with ss when
# available; a clash only makes one ping attempt fail, and start() retries.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((40000 + RANDOM % 20000))
        if ! command -v ss >/dev/null 2>&1 || ! ss -Hlnut "sport = :$p" 2>/dev/null | grep -q .; then
            break
        fi
    done
    printf '%s' "$p"
}

port_busy() {
    command -v ss >/dev/null 2>&1 || return 1
    ss -Hlnut "sport = :$PORT" 2>/dev/null | grep -q .
}

start() {
    command -v kamailio >/dev/null 2>&1 || die "kamailio is not installed: run scripts/install-peers.sh"
    command -v sipp >/dev/null 2>&1 || die "sipp is not installed: run scripts/install-peers.sh"
    if pid_alive; then
        log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
        return 0
    fi
    if port_busy; then
        die "127.0.0.1:$PORT is already in use by another process (set HUIFANG_KAMAILIO_PORT)"
    fi
    mkdir -p "$STATE"
    rm -f "$PIDFILE"
    rm -rf "$STATE/db"
    cp -r "$DB_SRC" "$STATE/db"
    local sock
    sock=$(ctl_sock_path)
    rm -f "$sock"
    printf 'unix:%s\n' "$sock" >"$STATE/ctl.path"
    printf '%s\n' "$PORT" >"$STATE/port"

    log "checking $CFG"
    local args=(-f "$CFG" -P "$PIDFILE" -w "$STATE" -Y "$STATE" -E -m 64 -M 8
        -l "udp:127.0.0.1:$PORT" -l "tcp:127.0.0.1:$PORT"
        -A "DBURL=\"text://$STATE/db\"" -A "CTLSOCK=\"unix:$sock\"")
    if ! kamailio "${args[@]}" -c >"$STATE/check.log" 2>&1; then
        cat "$STATE/check.log" >&2
        die "config check failed (see above)"
    fi
    log "starting on udp+tcp 127.0.0.1:$PORT (log $LOG)"
    {
        printf '==== start %s\n' "$(date '+%F %T')"
    } >>"$LOG"
    # Daemon mode: kamailio forks, writes the pid file and returns.
    if ! kamailio "${args[@]}" </dev/null >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "kamailio failed to start (log $LOG)"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if pid_alive && sip_ping; then
            log "running (pid $(cat "$PIDFILE")), answers OPTIONS on 127.0.0.1:$PORT"
            return 0
        fi
        if [ -s "$PIDFILE" ] && ! pid_alive; then
            break
        fi
        sleep 0.3
    done
    tail -n 30 "$LOG" >&2
    if pid_alive; then
        stop || true
    fi
    die "kamailio did not come up on 127.0.0.1:$PORT within ${START_TIMEOUT}s (log $LOG)"
}

stop() {
    if ! [ -s "$PIDFILE" ]; then
        log "not running (no pid file)"
        return 0
    fi
    local pid
    pid=$(cat "$PIDFILE")
    if ! pid_alive; then
        log "not running (stale pid file, pid $pid)"
        rm -f "$PIDFILE"
        return 0
    fi
    log "stopping pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still alive after 10 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

status() {
    if pid_alive; then
        log "running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT, state $STATE"
        return 0
    fi
    log "not running"
    return 3
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    *) printf 'usage: %s start|stop|status|restart\n' "$0" >&2; exit 2 ;;
esac
