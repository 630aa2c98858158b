#!/usr/bin/env bash
# huifang's crash-and-outage soak (issue 16, deliverable 1).
#
# `huifang serve` on PostgreSQL with the S3 archive on the test Ceph RGW,
# the dialer working a queue of SOAK_TASKS complaint callbacks: agents are
# `huifang softphone`s registered to serve's built-in registrar (playing
# config/demo/audio/agent.wav, hanging up SOAK_CALL_SECS after the answer),
# clients are examples/phones (one UDP port answering every client leg,
# streaming config/demo/audio/client.wav). During the run `serve` is
# killed with SIGKILL at SOAK_KILLS random moments (random points of the
# queue's progress, plus a random fraction of a second) and restarted at
# once as a supervisor would; the RGW is stopped for SOAK_OUTAGE_SECS when
# about SOAK_OUTAGE_AT of the queue is done, then started again. At the
# end the script waits for the queue to drain and the uploader to archive
# everything, stops serve cleanly and checks, printing a table:
#   - every attempt (calls row) of every task has exactly one outcome;
#   - every answered call has one recording, sealed (or interrupted),
#     archived; through RGW's S3 API: exactly one version per key, no delete
#     marker, the version the row names, COMPLIANCE-locked until its row's
#     retain_until, which is call start + the kind's retention;
#   - every recording cut by a kill is sealed `interrupted` and archived;
#   - `huifang verify --deep`: 0 findings;
#   - no task had two calls at once (overlapping calls of one task);
#   - the audit chain is whole (`huifang verify`), every ended call has its
#     `call.ended` event and every archived recording its events;
#   - every restart reached the agents' softphones at once (they register
#     for 10 minutes: the restarted serve knows them from the bindings it
#     kept).
# Ends with one line
#   soak: N tasks, K kills, outage S s: A answered, R recordings archived and verified, L lost, F findings
# and exits 0 only when nothing was lost and every check held.
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust auth), Ceph (scripts/install-peers.sh),
# and the release binaries target/release/huifang and
# target/release/examples/phones (built first by the script; set
# SOAK_NO_BUILD=1 to use them as they are).
#
#   scripts/bench/soak.sh                                   # 10,000 tasks, 10 kills, 5-minute outage
#   SOAK_TASKS=200 SOAK_KILLS=2 SOAK_OUTAGE_SECS=30 scripts/bench/soak.sh
#   # 100,000 tasks (about 72 min with 128 agents): about 10 GB of locked
#   # objects, on a Ceph cluster of its own with a bigger OSD
#   HUIFANG_PEERS_DIR=$PWD/target/peers-soak HUIFANG_CEPH_OSD_GB=32 \
#   HUIFANG_RGW_PORT=7490 HUIFANG_CEPH_MON_PORT=3310 \
#   SOAK_TASKS=100000 SOAK_AGENTS=128 scripts/bench/soak.sh
#
# Knobs: SOAK_TASKS (10000), SOAK_KILLS (10), SOAK_OUTAGE_SECS (300),
# SOAK_AGENTS (16: calls at once), SOAK_CALL_SECS (3: the agent hangs up
# this long after the answer), SOAK_OUTAGE_AT (0.4: share of the queue
# done when the RGW stops), SOAK_DRAIN_SECS (900: longest wait for the
# queue and the uploads after the dialing), SOAK_STALL_SECS (300: no
# progress this long fails the run), SOAK_SEED (random: the kill moments),
# SOAK_KEEP (0; 1 keeps the database even when everything held — it is kept
# anyway when a check failed), SOAK_PG_ADMIN (postgres://postgres@127.0.0.1:5432/test),
# HUIFANG_RGW_PORT (7480), CARGO_TARGET_DIR. Everything of a run (config,
# logs, spool, CSVs, the check results) is in target/bench/soak-<time>/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
HERE=$ROOT/scripts/bench

TASKS=${SOAK_TASKS:-10000}
KILLS=${SOAK_KILLS:-10}
OUTAGE_SECS=${SOAK_OUTAGE_SECS:-300}
AGENTS=${SOAK_AGENTS:-16}
CALL_SECS=${SOAK_CALL_SECS:-3}
OUTAGE_AT=${SOAK_OUTAGE_AT:-0.4}
DRAIN_SECS=${SOAK_DRAIN_SECS:-900}
STALL_SECS=${SOAK_STALL_SECS:-300}
SEED=${SOAK_SEED:-$(( $(date +%s) % 32768 ))}
KEEP=${SOAK_KEEP:-0}
PG_ADMIN=${SOAK_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HUIFANG=$TARGET/release/huifang
PHONES=$TARGET/release/examples/phones
export HUIFANG_RGW_PORT=${HUIFANG_RGW_PORT:-7480}
RGW=$ROOT/scripts/peers/ceph-rgw.sh
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN=$TARGET/bench/soak-$STAMP
DB=soak_$(date -u +%Y%m%d%H%M%S)_$$
DB_URL=${PG_ADMIN%/*}/$DB
BUCKET=huifang-soak-$(date -u +%Y%m%d%H%M%S)-$$
CONF=$RUN/huifang.toml
T0=$SECONDS

log() { printf 'soak: [%5ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf 'soak: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/bench/dialer_common.sh
. "$HERE/dialer_common.sh"

for n in TASKS KILLS OUTAGE_SECS AGENTS CALL_SECS DRAIN_SECS STALL_SECS; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "SOAK_$n must be a whole number (got '${!n}')"
done
[ "$TASKS" -ge 1 ] && [ "$AGENTS" -ge 1 ] || die "SOAK_TASKS and SOAK_AGENTS must be at least 1"
if [ "${SOAK_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --bin huifang --example phones >&2
fi
[ -x "$HUIFANG" ] || die "$HUIFANG is missing (cargo build --release)"
[ -x "$PHONES" ] || die "$PHONES is missing (cargo build --release --example phones)"
for b in psql pg_isready python3 curl; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found"
done

# ---- processes this script started (stopped by PID only) -------------------
SERVE_PID=
PHONES_PID=
RGW_START_PID=
AGENT_PIDS=()
STARTED_RGW=0
RGW_DOWN=0
CHECKS_FAILED=1

cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    stop_pid "$SERVE_PID"
    stop_pid "$PHONES_PID"
    for p in "${AGENT_PIDS[@]}"; do stop_pid "$p"; done
    stop_pid "$RGW_START_PID"
    if [ "$RGW_DOWN" = 1 ]; then
        log "the radosgw was stopped by this run: starting it again"
        rgw_up >>"$RUN/rgw.log" 2>&1
    fi
    if [ "$STARTED_RGW" = 1 ]; then
        log "stopping the Ceph RGW this script started"
        "$RGW" stop >>"$RUN/rgw.log" 2>&1
    fi
    if [ -n "${DB_CREATED:-}" ]; then
        if [ "$CHECKS_FAILED" = 0 ] && [ "$KEEP" != 1 ]; then
            psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
        else
            log "database kept for inspection: $DB_URL"
        fi
    fi
    log "run directory: $RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RUN"
log "machine: $(nproc) cores (nproc), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
log "$TASKS tasks, $KILLS kills, outage $OUTAGE_SECS s at ${OUTAGE_AT} of the queue, $AGENTS agents, calls of ~$CALL_SECS s, seed $SEED"
RANDOM=$SEED

sql() { psql -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }

# ---- PostgreSQL --------------------------------------------------------------
pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432"
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null || die "could not create database $DB"
DB_CREATED=1
log "database $DB_URL"

# ---- Ceph RGW ----------------------------------------------------------------
if "$RGW" status >/dev/null 2>&1; then
    log "using the running Ceph RGW on 127.0.0.1:$HUIFANG_RGW_PORT"
else
    log "starting Ceph RGW on 127.0.0.1:$HUIFANG_RGW_PORT (scripts/peers/ceph-rgw.sh)"
    STARTED_RGW=1
    "$RGW" start >>"$RUN/rgw.log" 2>&1 || { tail -n 20 "$RUN/rgw.log" >&2; die "Ceph RGW did not start"; }
fi
# the plain S3 test user, never the admin keyring
# shellcheck disable=SC1091
. "$ROOT/tests/peers/rgw-user.env"
S3_ENDPOINT=http://127.0.0.1:$HUIFANG_RGW_PORT
export HUIFANG_S3_ACCESS_KEY=$HUIFANG_RGW_ACCESS_KEY
export HUIFANG_S3_SECRET_KEY=$HUIFANG_RGW_SECRET_KEY
export SOAK_S3_SECRET=$HUIFANG_RGW_SECRET_KEY

# The outage stops the radosgw process alone (mon and osd keep running) and
# starts it again as scripts/peers/ceph-rgw.sh does (same command, same pid
# file): `ceph-rgw.sh stop; ceph-rgw.sh start` restarts the whole cluster,
# and when the reused cluster does not come up healthy at once that script
# wipes and recreates it — the archive, bucket and all, gone (seen here).
CEPH_STATE=${HUIFANG_PEERS_DIR:-$ROOT/target/peers}/ceph-rgw
RGW_PIDFILE=$CEPH_STATE/rgw.pid
rgw_down() {
    local pid
    pid=$(cat "$RGW_PIDFILE" 2>/dev/null) || { echo "no $RGW_PIDFILE"; return 1; }
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = radosgw ] || { echo "pid $pid is not radosgw"; return 1; }
    echo "stopping radosgw pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
rgw_up() {
    local t
    for t in 1 2 3; do
        printf '==== start %s: radosgw (soak.sh, try %s)\n' "$(date '+%F %T')" "$t" >>"$CEPH_STATE/log/rgw.out"
        setsid nohup radosgw -c "$CEPH_STATE/ceph.conf" -n client.rgw.a -f </dev/null >>"$CEPH_STATE/log/rgw.out" 2>&1 &
        echo $! >"$RGW_PIDFILE"
        for _ in $(seq 1 180); do
            [ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "$S3_ENDPOINT/" 2>/dev/null)" = 200 ] && { echo "radosgw up, pid $(cat "$RGW_PIDFILE")"; return 0; }
            kill -0 "$(cat "$RGW_PIDFILE")" 2>/dev/null || break
            sleep 0.5
        done
        echo "radosgw did not come up (try $t)"
        sleep 2
    done
    return 1
}

# ---- the configuration -------------------------------------------------------
SIP_PORT=$(free_port)
PHONES_PORT=$(free_port)
AGENT_PW=soak-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
export SOAK_AGENT_PASSWORD=$AGENT_PW
AS_OF=$(TZ=Asia/Shanghai date +%F)
{
    cat <<EOF
# written by scripts/bench/soak.sh for one run
[log]
level = "info"

[sip]
listen = "127.0.0.1:$SIP_PORT"
shutdown_grace_ms = 2000

[sip.registrar]
realm = "huifang-soak"
digest_algorithms = ["SHA-256", "MD5"]
# registrations of 10 minutes, as phones do (3,600 s is common): a serve
# killed and restarted still reaches them through the bindings it kept in
# the database (before that was built, the soak registered every 10 s)

EOF
    for i in $(seq 1 "$AGENTS"); do
        printf '[[sip.users]]\nname = "agent%d"\npassword_env = "SOAK_AGENT_PASSWORD"\n\n' "$i"
    done
    cat <<EOF
[media]
address = "127.0.0.1"
rtp_ports = "20000-23999"
recorder_threads = 2

[database]
url = "$DB_URL"

[spool]
path = "var/spool"
min_free_mb = 512

[call]
agent_ring_secs = 10
client_ring_secs = 10
max_call_secs = 60

[archive]
backend = "s3"
retry_min_secs = 2
retry_max_secs = 60
parallel_uploads = 32

[archive.s3]
endpoint = "$S3_ENDPOINT"
bucket = "$BUCKET"
region = "us-east-1"
path_style = true
access_key_id = "$HUIFANG_S3_ACCESS_KEY"
secret_access_key_env = "SOAK_S3_SECRET"

[calendar]
holidays = "$ROOT/config/holidays/cn-exchanges.toml"

# only the complaints of the soak's events make tasks
$(complaints_only_toml)

[dialer]
enabled = true
instance_id = "soak-1"
max_concurrent_calls = $AGENTS
poll_interval_ms = 200
lease_secs = 15
wrap_up_secs = 0
shutdown_deadline_secs = 10
client_uri = "sip:{phone}@127.0.0.1:$PHONES_PORT"
max_attempts = 3
retry_spacing_secs = [5]
retry_failed_secs = 5
# the calling window open at any hour of any day, on the real clock
$(all_day_every_day_toml)

[http]
enabled = false
EOF
} >"$CONF"
chmod 600 "$CONF"
mkdir -p "$RUN/var/spool"
hf() { "$HUIFANG" "$@" --config "$CONF"; }

log "creating bucket $BUCKET (huifang archive init: Object Lock, versioning)"
hf archive init >>"$RUN/cli.log" 2>&1 || { tail -n 20 "$RUN/cli.log" >&2; die "archive init failed"; }

# ---- staff, clients, events → tasks -----------------------------------------
plan_callbacks "$AGENTS" "$TASKS" "$AS_OF" 127.0.0.1 soak
for i in $(seq 1 "$AGENTS"); do
    hf agent login "$(agent_id "$i")" >>"$RUN/cli.log" 2>&1 || die "agent login $(agent_id "$i") failed"
done
log "imported $AGENTS agents and $TASKS clients, planned $TASKS complaint callbacks, agents logged in"

# ---- serve, phones, softphones ----------------------------------------------
SERVE_STARTS=0
start_serve() {
    SERVE_STARTS=$((SERVE_STARTS + 1))
    printf '==== soak: serve start %d at %s\n' "$SERVE_STARTS" "$(date -u +%FT%T.%NZ)" >>"$RUN/serve.log"
    (cd "$RUN" && exec env -u RUST_LOG NO_COLOR=1 "$HUIFANG" serve --config "$CONF" >>"$RUN/serve.log" 2>&1) &
    SERVE_PID=$!
}
PHONES_STARTS=0
start_phones() {
    PHONES_STARTS=$((PHONES_STARTS + 1))
    "$PHONES" --sip "127.0.0.1:$PHONES_PORT" --rtp-ports 16000-19999 \
        --wav "$ROOT/config/demo/audio/client.wav" --max-calls 100000000 --duration 864000 \
        --stats "$RUN/phones-$PHONES_STARTS.json" >>"$RUN/phones.log" 2>&1 &
    PHONES_PID=$!
}
start_serve
start_phones
for _ in $(seq 1 100); do
    ss -Hlnu "sport = :$SIP_PORT" 2>/dev/null | grep -q . && break
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$RUN/serve.log" >&2; die "serve exited at start-up"; }
    sleep 0.2
done
for i in $(seq 1 "$AGENTS"); do
    "$HUIFANG" softphone --registrar "sip:127.0.0.1:$SIP_PORT" --user "agent$i" \
        --password-env SOAK_AGENT_PASSWORD --expires 600 --answer-after 0 \
        --hangup-after "$CALL_SECS" --play "$ROOT/config/demo/audio/agent.wav" --loop \
        >>"$RUN/agent$i.jsonl" 2>>"$RUN/agents.log" &
    AGENT_PIDS+=($!)
done
log "serve pid $SERVE_PID on 127.0.0.1:$SIP_PORT, phones pid $PHONES_PID on :$PHONES_PORT, $AGENTS agent softphones"

# ---- the run: progress, kills, outage ----------------------------------------
# settled: the dialer has nothing more to do with the task (a completed call
# awaits its record, or it was closed)
settled() { sql "SELECT count(*) FILTER (WHERE state <> 'open' OR awaiting_record_since IS NOT NULL), count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_until > now()) FROM tasks"; }

# kill points: random shares of the queue settled, sorted
KILL_AT=()
if [ "$KILLS" -gt 0 ]; then
    mapfile -t KILL_AT < <(for _ in $(seq 1 "$KILLS"); do echo $(( TASKS * (5 + RANDOM % 86) / 100 )); done | sort -n)
fi
OUTAGE_AT_N=$(python3 -c "print(int($TASKS * $OUTAGE_AT))")
log "kill points (tasks settled): ${KILL_AT[*]:-none}; RGW outage from $OUTAGE_AT_N settled"

KILLED=0
CRASHES=0
PAUSES_RESUMED=0
OUTAGE_START=
OUTAGE_DONE=0
[ "$OUTAGE_SECS" -gt 0 ] || OUTAGE_DONE=1
LAST_PROGRESS=-1
LAST_PROGRESS_AT=$SECONDS
LAST_LOG=0
DIAL_T0=$SECONDS
: >"$RUN/events.log"
event() { printf '%s %s\n' "$(date -u +%FT%T.%3NZ)" "$*" >>"$RUN/events.log"; log "$*"; }

while :; do
    IFS=$'\t' read -r DONE LEASED < <(settled)
    now=$SECONDS
    if [ "$DONE" != "$LAST_PROGRESS" ]; then LAST_PROGRESS=$DONE; LAST_PROGRESS_AT=$now; fi
    if [ $((now - LAST_LOG)) -ge 15 ]; then
        LAST_LOG=$now
        log "settled $DONE/$TASKS, on call $LEASED, kills $KILLED/$KILLS, RGW $([ "$RGW_DOWN" = 1 ] && echo down || echo up), load $(cut -d' ' -f1 /proc/loadavg)"
    fi
    # the supervisor: serve died without us
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then
        wait "$SERVE_PID" 2>/dev/null && rc=0 || rc=$?
        CRASHES=$((CRASHES + 1))
        event "UNEXPECTED: serve pid $SERVE_PID exited by itself (status $rc); restarting"
        start_serve
    fi
    # the kills
    if [ "$KILLED" -lt "$KILLS" ] && [ "$DONE" -ge "${KILL_AT[$KILLED]}" ]; then
        sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
        open=$(sql "SELECT count(*) FROM calls WHERE outcome IS NULL")
        kill -KILL "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        KILLED=$((KILLED + 1))
        printf '==== soak: kill -9 %d at %s\n' "$KILLED" "$(date -u +%FT%T.%NZ)" >>"$RUN/serve.log"
        event "kill -9 #$KILLED of serve pid $SERVE_PID at $DONE settled, $open calls open"
        # the clients of the cut calls hang up: their phones start afresh
        stop_pid "$PHONES_PID"
        start_phones
        sleep 1
        start_serve
        event "serve restarted: pid $SERVE_PID"
    fi
    # the outage
    if [ "$OUTAGE_DONE" = 0 ] && [ -z "$OUTAGE_START" ] && [ "$DONE" -ge "$OUTAGE_AT_N" ]; then
        OUTAGE_START=$SECONDS
        RGW_DOWN=1
        event "stopping the RGW (radosgw) for $OUTAGE_SECS s"
        rgw_down >>"$RUN/rgw.log" 2>&1 || die "could not stop the radosgw (see $RUN/rgw.log)"
        event "RGW stopped"
        OUTAGE_START=$SECONDS
    fi
    if [ -n "$OUTAGE_START" ] && [ "$OUTAGE_DONE" = 0 ] && [ -z "$RGW_START_PID" ] && [ $((SECONDS - OUTAGE_START)) -ge "$OUTAGE_SECS" ]; then
        event "starting the RGW again after $((SECONDS - OUTAGE_START)) s"
        rgw_up >>"$RUN/rgw.log" 2>&1 &
        RGW_START_PID=$!
    fi
    if [ -n "$RGW_START_PID" ] && ! kill -0 "$RGW_START_PID" 2>/dev/null; then
        wait "$RGW_START_PID" && rc=0 || rc=$?
        RGW_START_PID=
        [ "$rc" = 0 ] || die "the RGW did not come back (see $RUN/rgw.log)"
        RGW_DOWN=0
        OUTAGE_DONE=1
        event "RGW up again ($((SECONDS - OUTAGE_START)) s after it was stopped)"
    fi
    # agents paused by the dialer (their phone did not answer): noted, resumed
    paused=$(sql "SELECT string_agg(staff_id, ' ') FROM agent_sessions WHERE state = 'paused'")
    if [ -n "$paused" ]; then
        for a in $paused; do
            why=$(sql "SELECT reason FROM agent_sessions WHERE staff_id = '$a'" 2>/dev/null || true)
            event "agent $a was paused ($why): resuming"
            hf agent resume "$a" --by M01 >>"$RUN/cli.log" 2>&1 || true
            PAUSES_RESUMED=$((PAUSES_RESUMED + 1))
        done
    fi
    if [ "$DONE" -ge "$TASKS" ] && [ "$KILLED" -ge "$KILLS" ] && [ "$OUTAGE_DONE" = 1 ]; then
        break
    fi
    if [ "$DONE" -ge "$TASKS" ] && [ "$KILLED" -lt "$KILLS" ]; then
        event "the queue was done before kill #$((KILLED + 1)) (kill point ${KILL_AT[$KILLED]})"
        KILLS_MISSED=$((KILLS - KILLED)); KILLS=$KILLED
        continue
    fi
    if [ $((SECONDS - LAST_PROGRESS_AT)) -ge "$STALL_SECS" ] && [ "$DONE" -lt "$TASKS" ]; then
        log "no progress for $STALL_SECS s at $DONE/$TASKS settled:"
        hf status >&2 || true
        die "the queue stalled"
    fi
    sleep 1
done
DIAL_SECS=$((SECONDS - DIAL_T0))
log "queue worked in $DIAL_SECS s: $KILLED kills, outage ${OUTAGE_SECS} s; waiting for the uploads"

# ---- drain --------------------------------------------------------------------
deadline=$((SECONDS + DRAIN_SECS))
while :; do
    IFS=$'\t' read -r open_calls unsealed unarchived < <(sql "SELECT
        (SELECT count(*) FROM calls WHERE outcome IS NULL),
        (SELECT count(*) FROM recordings WHERE state = 'recording'),
        (SELECT count(*) FROM recordings WHERE archived_at IS NULL)")
    [ "$open_calls" = 0 ] && [ "$unsealed" = 0 ] && [ "$unarchived" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "drain timed out: $open_calls calls open, $unsealed recordings unsealed, $unarchived not archived"
        break
    fi
    kill -0 "$SERVE_PID" 2>/dev/null || { CRASHES=$((CRASHES + 1)); event "UNEXPECTED: serve exited during the drain; restarting"; start_serve; }
    sleep 2
done
DRAIN_WAIT=$((SECONDS - DIAL_T0 - DIAL_SECS))
log "drained in $DRAIN_WAIT s; stopping the softphones (they unregister), then serve (SIGTERM), then the phones"
for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "${AGENT_PIDS[@]}"; do stop_pid "$p"; done
AGENT_PIDS=()
kill -TERM "$SERVE_PID" 2>/dev/null || true
STOP_T0=$SECONDS
SERVE_RC=0
wait "$SERVE_PID" 2>/dev/null || SERVE_RC=$?
SERVE_PID=
[ "$SERVE_RC" = 0 ] || event "serve exited $SERVE_RC at SIGTERM"
log "serve stopped in $((SECONDS - STOP_T0)) s (exit $SERVE_RC)"
stop_pid "$PHONES_PID"; PHONES_PID=

# ---- checks -------------------------------------------------------------------
log "checking"
FAILS=0
ROWS=()
row() { # row NAME OK(0/1) DETAIL
    ROWS+=("$(printf '%-62s %-5s %s' "$1" "$([ "$2" = 1 ] && echo ok || echo FAIL)" "$3")")
    [ "$2" = 1 ] || FAILS=$((FAILS + 1))
}
q() { sql "$1"; }

CALLS=$(q "SELECT count(*) FROM calls")
ANSWERED=$(q "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL")
q "SELECT coalesce(outcome,'(none)'), count(*) FROM calls GROUP BY 1 ORDER BY 2 DESC" >"$RUN/outcomes.tsv"
OUTCOMES=$(awk -F'\t' '{ printf "%s%s %s", (NR>1 ? ", " : ""), $2, $1 }' "$RUN/outcomes.tsv")

# 1. every attempt of every task has exactly one outcome
no_outcome=$(q "SELECT count(*) FROM calls WHERE outcome IS NULL OR ended_at IS NULL")
no_task=$(q "SELECT count(*) FROM calls WHERE task_id IS NULL")
open_tasks=$(q "SELECT count(*) FROM tasks WHERE state = 'open' AND awaiting_record_since IS NULL")
leased=$(q "SELECT count(*) FROM tasks WHERE lease_owner IS NOT NULL")
bad_last=$(q "SELECT count(*) FROM tasks t WHERE t.last_call_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = t.last_call_id AND c.outcome IS NOT DISTINCT FROM t.last_outcome)")
uncalled=$(q "SELECT count(*) FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM calls c WHERE c.task_id = t.id::text)")
# attempts counted: every outcome but those "for reasons of ours" and the
# agent's phone not answering (docs/ARCHITECTURE.md, "The dialer")
COUNTED="c.task_id = t.id::text AND c.outcome NOT IN ('interrupted','cancelled','recording-failed','agent-unavailable')"
att_bad=$(q "SELECT count(*) FROM tasks t WHERE t.attempts <> (SELECT count(*) FROM calls c WHERE $COUNTED)")
q "SELECT t.idempotency_key, t.state, t.attempts, t.last_outcome, (SELECT string_agg(coalesce(c.outcome,'-'), ',' ORDER BY c.started_at) FROM calls c WHERE c.task_id = t.id::text) FROM tasks t WHERE t.attempts <> (SELECT count(*) FROM calls c WHERE $COUNTED) LIMIT 20" >"$RUN/check-attempts.tsv"
ok=1; [ "$no_outcome" = 0 ] && [ "$no_task" = 0 ] && [ "$bad_last" = 0 ] || ok=0
row "every attempt has exactly one outcome ($CALLS calls)" "$ok" "$no_outcome without outcome/end, $no_task without task, $bad_last tasks whose last outcome differs from their call"
ok=1; [ "$open_tasks" = 0 ] && [ "$leased" = 0 ] && [ "$uncalled" = 0 ] || ok=0
row "every task worked to its end" "$ok" "$open_tasks open and not awaiting a record, $leased still leased, $uncalled never called"
ok=1; [ "$att_bad" = 0 ] || ok=0
row "tasks' attempt counters = their counted calls" "$ok" "$att_bad differ (check-attempts.tsv)"

# 2. no task called twice at once
overlap=$(q "SELECT count(*) FROM calls a JOIN calls b ON a.task_id = b.task_id AND a.id < b.id
    AND a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity')")
q "SELECT a.task_id, a.id, a.started_at, a.ended_at, a.outcome, b.id, b.started_at, b.ended_at, b.outcome FROM calls a JOIN calls b ON a.task_id = b.task_id AND a.id < b.id
    AND a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity') LIMIT 50" >"$RUN/check-overlaps.tsv"
agent_overlap=$(q "SELECT count(*) FROM calls a JOIN calls b ON a.agent_uri = b.agent_uri AND a.id < b.id
    AND a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity')")
q "SELECT a.agent_uri, a.id, a.started_at, a.ended_at, a.outcome, a.reason, b.id, b.started_at, b.ended_at, b.outcome, b.reason FROM calls a JOIN calls b ON a.agent_uri = b.agent_uri AND a.id < b.id
    AND a.started_at < coalesce(b.ended_at, 'infinity') AND b.started_at < coalesce(a.ended_at, 'infinity') LIMIT 50" >"$RUN/check-agent-overlaps.tsv"
row "no task called twice at once" "$([ "$overlap" = 0 ] && echo 1 || echo 0)" "$overlap overlapping pairs (check-overlaps.tsv)"
row "no agent on two calls at once" "$([ "$agent_overlap" = 0 ] && echo 1 || echo 0)" "$agent_overlap overlapping pairs (check-agent-overlaps.tsv)"

# 3. every answered call: one recording, final, archived
ans_norec=$(q "SELECT count(*) FROM calls c WHERE c.answered_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.call_id = c.id)")
ans_unarch=$(q "SELECT count(*) FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.answered_at IS NOT NULL AND (r.state NOT IN ('sealed','interrupted') OR r.archived_at IS NULL OR r.sha256 IS NULL)")
# a recording is `interrupted` only for a call cut by a kill; a call cut by
# a kill may have a `sealed` (whole) recording when the kill came after
# the recording's seal and before the call's outcome was written
ans_state=$(q "SELECT count(*) FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.answered_at IS NOT NULL AND r.state = 'interrupted' AND c.outcome <> 'interrupted'")
cut_whole=$(q "SELECT count(*) FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.outcome = 'interrupted' AND r.state = 'sealed'")
q "SELECT c.id, c.outcome, c.reason, c.answered_at, c.ended_at, r.state, r.sealed_at, r.archived_at FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.answered_at IS NOT NULL AND ((c.outcome = 'interrupted') <> (r.state = 'interrupted')) LIMIT 50" >"$RUN/check-answered-state.tsv"
RECS=$(q "SELECT count(*) FROM recordings")
SEALED=$(q "SELECT count(*) FROM recordings WHERE state = 'sealed'")
INTERRUPTED=$(q "SELECT count(*) FROM recordings WHERE state = 'interrupted'")
ARCHIVED=$(q "SELECT count(*) FROM recordings WHERE archived_at IS NOT NULL")
unarch_all=$(q "SELECT count(*) FROM recordings WHERE archived_at IS NULL OR state = 'recording'")
ok=1; [ "$ans_norec" = 0 ] && [ "$ans_unarch" = 0 ] || ok=0
row "every answered call has a final, archived recording ($ANSWERED)" "$ok" "$ans_norec without recording, $ans_unarch not final/archived"
row "interrupted recordings only for calls cut by a kill" "$([ "$ans_state" = 0 ] && echo 1 || echo 0)" "$ans_state differ (check-answered-state.tsv); $cut_whole cut calls with a whole (sealed) recording"
row "every recording final and archived ($RECS)" "$([ "$unarch_all" = 0 ] && echo 1 || echo 0)" "$SEALED sealed, $INTERRUPTED interrupted, $ARCHIVED archived"

# 4. retain_until = call start + the kind's years (complaint: minimum_years
# 15), rounded up to the second
RETAIN_BAD="r.archived_at IS NOT NULL AND NOT (r.retain_until >= c.started_at + interval '15 years' AND r.retain_until < c.started_at + interval '15 years 2 seconds')"
bad_retain=$(q "SELECT count(*) FROM recordings r JOIN calls c ON c.id = r.call_id WHERE $RETAIN_BAD")
q "SELECT r.id, c.started_at, r.started_at, r.retain_until FROM recordings r JOIN calls c ON c.id = r.call_id WHERE $RETAIN_BAD LIMIT 20" >"$RUN/check-retain.tsv"
row "retain_until = call start + 15 years (to the second)" "$([ "$bad_retain" = 0 ] && echo 1 || echo 0)" "$bad_retain differ (check-retain.tsv)"

# 5. through RGW's S3 API: one version per key, the recorded one, locked until its date
q "SELECT id, archive_key, coalesce(object_version,''), manifest_key, coalesce(manifest_version,''), extract(epoch FROM retain_until) FROM recordings WHERE archived_at IS NOT NULL" >"$RUN/archived.tsv"
python3 "$HERE/soak_s3.py" check --endpoint "$S3_ENDPOINT" --bucket "$BUCKET" <"$RUN/archived.tsv" >"$RUN/check-s3.json" || die "the S3 check failed to run"
read -r S3_OK S3_BAD S3_MULTI S3_ORPHAN S3_VERSIONS S3_MARKERS < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['recordings_ok'], d['recordings_bad'], d['keys_not_one_version'], d['orphan_keys'], d['object_versions'], d['delete_markers'])" "$RUN/check-s3.json")
ok=1; [ "$S3_BAD" = 0 ] && [ "$S3_MULTI" = 0 ] && [ "$S3_MARKERS" = 0 ] || ok=0
row "S3: one version per key, recorded version, COMPLIANCE to date" "$ok" "$S3_OK ok, $S3_BAD bad; $S3_VERSIONS versions, $S3_MULTI keys not 1 version, $S3_MARKERS delete markers (check-s3.json)"
row "S3: no object without a row" "$([ "$S3_ORPHAN" = 0 ] && echo 1 || echo 0)" "$S3_ORPHAN orphan keys"

# 6. recordings cut by a kill: sealed interrupted, archived
KILL_INT=$(q "SELECT count(*) FROM calls WHERE outcome = 'interrupted'")
kill_rec_bad=$(q "SELECT count(*) FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.outcome = 'interrupted' AND (r.state NOT IN ('interrupted', 'sealed') OR r.archived_at IS NULL)")
KILL_REC=$(q "SELECT count(*) FROM calls c JOIN recordings r ON r.call_id = c.id WHERE c.outcome = 'interrupted'")
ok=1; [ "$kill_rec_bad" = 0 ] || ok=0
[ "$KILLED" -gt 0 ] && [ "$KILL_INT" = 0 ] && ok=0
row "recordings cut by a kill: final and archived" "$ok" "$KILL_INT interrupted calls, $KILL_REC with a recording, $kill_rec_bad not final+archived"

# 7. audit events: every ended call its call.ended, every archived recording its seal
no_ended=$(q "SELECT count(*) FROM calls c WHERE c.outcome IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'call.ended' AND e.subject = c.id::text)")
dup_ended=$(q "SELECT count(*) FROM (SELECT subject FROM audit_events WHERE action = 'call.ended' GROUP BY subject HAVING count(*) > 1) x")
no_sealed=$(q "SELECT count(*) FROM recordings r WHERE r.state <> 'recording' AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'recording.sealed' AND e.subject = r.id::text)")
no_upl=$(q "SELECT count(*) FROM recordings r WHERE r.archived_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.action IN ('recording.uploaded','recording.verified') AND e.subject = r.id::text)")
ok=1; [ "$no_ended" = 0 ] && [ "$dup_ended" = 0 ] && [ "$no_sealed" = 0 ] && [ "$no_upl" = 0 ] || ok=0
row "audit: each call ended once, each recording sealed, uploaded" "$ok" "$no_ended calls without call.ended, $dup_ended with several, $no_sealed recordings without recording.sealed, $no_upl archived without upload event"

# 8. huifang verify --deep, and the audit chain (huifang verify)
set +e
hf verify --deep >"$RUN/verify-deep.txt" 2>"$RUN/verify-deep.err"; VDEEP_RC=$?
hf verify >"$RUN/verify.txt" 2>"$RUN/verify.err"; V_RC=$?
set -e
FINDINGS=$(grep -v '^verify: OK' "$RUN/verify-deep.txt" | grep -c . || true)
row "huifang verify --deep: 0 findings" "$([ "$VDEEP_RC" = 0 ] && [ "$FINDINGS" = 0 ] && echo 1 || echo 0)" "exit $VDEEP_RC, $FINDINGS lines (verify-deep.txt)"
chain_bad=$(grep -v '^verify: OK' "$RUN/verify.txt" | grep -ci 'audit\|chain' || true)
row "the audit chain is whole (huifang verify)" "$([ "$V_RC" = 0 ] && [ "$chain_bad" = 0 ] && echo 1 || echo 0)" "exit $V_RC, $chain_bad audit findings, $(q "SELECT count(*) FROM audit_events") events"

# 9. the supervisor's view
row "serve never died by itself" "$([ "$CRASHES" = 0 ] && echo 1 || echo 0)" "$CRASHES unexpected exits; SIGTERM at the end: exit $SERVE_RC"
row "no agent paused by the dialer" "$([ "$PAUSES_RESUMED" = 0 ] && echo 1 || echo 0)" "$PAUSES_RESUMED pauses resumed by the soak (events.log)"
row "kills done as asked" "$([ -z "${KILLS_MISSED:-}" ] && echo 1 || echo 0)" "$KILLED kill -9 (${KILLS_MISSED:-0} missed: queue done first)"
panics=$(grep -c -i 'panicked' "$RUN/serve.log" || true)
row "no panic in serve's log" "$([ "$panics" = 0 ] && echo 1 || echo 0)" "$panics"
# the softphones register for 10 minutes: a restarted serve reaches them only
# through the bindings it kept (sip_bindings), restored at start-up
restores=$(grep -c "registrar: bindings from before the restart" "$RUN/serve.log" || true)
short=$(grep "registrar: bindings from before the restart" "$RUN/serve.log" | grep -o 'restored=[0-9]*' | cut -d= -f2 | awk -v a="$AGENTS" '$1 < a' | wc -l)
row "each restart restored every agent's registration" "$([ "$restores" -ge "$KILLED" ] && [ "$short" = 0 ] && echo 1 || echo 0)" "$restores restarts restored bindings, $short of them fewer than $AGENTS"

# lost: answered calls without a good archived recording, and recordings
# that are not archived or fail the S3 check
LOST=$(( ans_norec + unarch_all + S3_BAD ))
VERIFIED=$S3_OK
[ "$VDEEP_RC" = 0 ] || VERIFIED=$(( S3_OK > FINDINGS ? S3_OK - FINDINGS : 0 ))

printf '\nsoak run %s (seed %s), %s cores, load %s; dialing %d s, drain %d s, total %d s\n' \
    "$STAMP" "$SEED" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$DIAL_SECS" "$DRAIN_WAIT" "$((SECONDS - T0))"
printf 'calls %s: %s\n\n' "$CALLS" "$OUTCOMES"
printf '%-62s %-5s %s\n' "check" "" "detail"
for r in "${ROWS[@]}"; do printf '%s\n' "$r"; done
printf '\n'
[ "$FAILS" = 0 ] && [ "$LOST" = 0 ] && CHECKS_FAILED=0
echo "soak: $TASKS tasks, $KILLED kills, outage $OUTAGE_SECS s: $ANSWERED answered, $VERIFIED recordings archived and verified, $LOST lost, $FINDINGS findings"
[ "$CHECKS_FAILED" = 0 ]
