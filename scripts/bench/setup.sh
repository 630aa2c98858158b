#!/usr/bin/env bash
# huifang's call set-up rate (issue 16, deliverable 2).
#
# `huifang serve` on PostgreSQL with its dialer working a queue of complaint
# callbacks — the real path: claim (one transaction), E7 check again on
# fresh rows, screen-pop, `calls` row and `call.placed` event, agent leg
# INVITE, answer, client leg INVITE, answer, bridge and recorder — to one
# examples/phones process that answers every leg at once (180 then 200)
# and streams speech both ways. The agents are SETUP_AGENTS staff rows
# whose softphone URIs point at that process (sip:agentN@127.0.0.1:PORT);
# it hangs up each agent leg SETUP_CALL_SECS after its ACK, and serve ends
# the client leg. The archive is `local` (the S3 uploads are the soak's and
# the archive benchmark's business, and radosgw would take a core of its
# own here).
#
# The offered rate is set by dialer.max_concurrent_calls: for each value of
# SETUP_STEPS, serve is (re)started with it, warms up for SETUP_WARMUP_SECS,
# then holds for SETUP_HOLD_SECS (60). Over that window, from the calls
# table: set-ups per second (calls whose client was bridged), failed calls
# (claimed in the window, ended other than `completed`), and the time from
# the claim of the task (calls.claimed_at) to both legs answered
# (calls.answered_at), p50 and p99; from /proc: the CPU of serve, of
# PostgreSQL (all its processes), of the phones and of the whole machine.
# The step with the highest rate and under 1 % failed is the result.
#
#   scripts/bench/setup.sh                                   # steps 25 50 100 200 400 800
#   SETUP_STEPS="100 200" SETUP_HOLD_SECS=30 scripts/bench/setup.sh
#
# Knobs: SETUP_STEPS (max_concurrent_calls per step), SETUP_AGENTS (1.25 ×
# the largest step + 20), SETUP_CALL_SECS (2), SETUP_HOLD_SECS (60),
# SETUP_WARMUP_SECS (10), SETUP_PG_ADMIN (postgres://postgres@127.0.0.1:5432/test),
# SETUP_NO_BUILD=1 (use target/release as it is), SETUP_KEEP=1 (keep the
# database), CARGO_TARGET_DIR. Everything of a run is in
# target/bench/setup-<time>/ (the spool and archive are removed at the end);
# the results are also written as JSON lines to target/bench/setup-<time>.jsonl.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

STEPS=${SETUP_STEPS:-"25 50 100 200 400 800"}
CALL_SECS=${SETUP_CALL_SECS:-2}
HOLD_SECS=${SETUP_HOLD_SECS:-60}
WARMUP_SECS=${SETUP_WARMUP_SECS:-10}
KEEP=${SETUP_KEEP:-0}
PG_ADMIN=${SETUP_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/test}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
HUIFANG=$TARGET/release/huifang
PHONES=$TARGET/release/examples/phones
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN=$TARGET/bench/setup-$STAMP
OUT=$TARGET/bench/setup-$STAMP.jsonl
DB=setup_$(date -u +%Y%m%d%H%M%S)_$$
DB_URL=${PG_ADMIN%/*}/$DB
CONF=$RUN/huifang.toml
T0=$SECONDS

log() { printf 'setup: [%5ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/bench/dialer_common.sh
. "$ROOT/scripts/bench/dialer_common.sh"

MAX_STEP=0
for s in $STEPS; do
    [[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] || die "SETUP_STEPS: '$s' is not a whole number ≥ 1"
    [ "$s" -gt "$MAX_STEP" ] && MAX_STEP=$s
done
AGENTS=${SETUP_AGENTS:-$(( MAX_STEP * 5 / 4 + 20 ))}
for n in AGENTS HOLD_SECS WARMUP_SECS; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "SETUP_$n must be a whole number (got '${!n}')"
done
[[ $CALL_SECS =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SETUP_CALL_SECS must be a number of seconds"
# enough tasks for every step at its best (calls of CALL_SECS + ~0.3 s)
TASKS=0
for s in $STEPS; do
    TASKS=$(python3 -c "import math; print($TASKS + math.ceil($s / ($CALL_SECS + 0.3) * ($WARMUP_SECS + $HOLD_SECS + 20) * 1.2))")
done

if [ "${SETUP_NO_BUILD:-0}" != 1 ]; then
    cargo build --release --bin huifang --example phones >&2
fi
[ -x "$HUIFANG" ] || die "$HUIFANG is missing (cargo build --release)"
[ -x "$PHONES" ] || die "$PHONES is missing (cargo build --release --example phones)"
for b in psql pg_isready python3; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found"
done

# ---- processes this script started (stopped by PID only) -------------------
SERVE_PID=
PHONES_PID=
CHECKS_DONE=0
cleanup() {
    local rc=$?
    trap - EXIT
    set +e
    stop_pid "$SERVE_PID" TERM 20
    stop_pid "$PHONES_PID"
    rm -rf "$RUN/var"
    if [ -n "${DB_CREATED:-}" ]; then
        if [ "$KEEP" != 1 ]; then
            psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
        else
            log "database kept: $DB_URL"
        fi
    fi
    [ "$CHECKS_DONE" = 1 ] || log "run directory: $RUN"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RUN/var/spool" "$RUN/var/archive"
CORES=$(nproc)
MACHINE="$CORES cores (nproc), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
log "machine: $MACHINE; load $(cut -d' ' -f1-3 /proc/loadavg)"
log "steps (max_concurrent_calls): $STEPS; $AGENTS agents; calls of $CALL_SECS s; hold $HOLD_SECS s after $WARMUP_SECS s; $TASKS tasks"

sql() { psql -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }

pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432"
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB" >/dev/null || die "could not create database $DB"
DB_CREATED=1

SIP_PORT=$(free_port)
PHONES_PORT=$(free_port)
AS_OF=$(TZ=Asia/Shanghai date +%F)
write_config() { # write_config MAX_CONCURRENT
    cat >"$CONF" <<EOF
# written by scripts/bench/setup.sh for one run
[log]
level = "warn"

[sip]
listen = "127.0.0.1:$SIP_PORT"
shutdown_grace_ms = 3000

[media]
address = "127.0.0.1"
rtp_ports = "20000-29999"
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
backend = "local"
path = "var/archive"
parallel_uploads = 8

[calendar]
holidays = "$ROOT/config/holidays/cn-exchanges.toml"

$(complaints_only_toml)

[dialer]
enabled = true
instance_id = "setup-1"
max_concurrent_calls = $1
poll_interval_ms = 100
lease_secs = 30
wrap_up_secs = 0
shutdown_deadline_secs = 10
client_uri = "sip:{phone}@127.0.0.1:$PHONES_PORT"
max_attempts = 3
retry_spacing_secs = [5]
retry_failed_secs = 5
$(all_day_every_day_toml)

[http]
enabled = false
EOF
}
write_config 1
hf() { "$HUIFANG" "$@" --config "$CONF"; }

# ---- staff, clients, events → tasks; agents logged in -------------------------
plan_callbacks "$AGENTS" "$TASKS" "$AS_OF" "127.0.0.1:$PHONES_PORT" setup
log "imported $AGENTS agents and $TASKS clients, planned $TASKS callbacks; logging the agents in"
for i in $(seq 1 "$AGENTS"); do agent_id "$i"; echo; done \
    | xargs -P 4 -I@ "$HUIFANG" agent login @ --config "$CONF" >>"$RUN/cli.log" 2>&1 \
    || die "agent login failed (see $RUN/cli.log)"
[ "$(sql "SELECT count(*) FROM agent_sessions WHERE state = 'available'")" = "$AGENTS" ] || die "not every agent is logged in"

# ---- CPU accounting (clock ticks) -------------------------------------------
HZ=$(getconf CLK_TCK)
pid_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() { # every postgres process's utime+stime (the server and its backends)
    local sum=0 p c
    for p in /proc/[0-9]*; do
        c=$(cat "$p/comm" 2>/dev/null) || continue
        case $c in postgres|postmaster) sum=$((sum + $(awk '{ print $14 + $15 }' "$p/stat" 2>/dev/null || echo 0))) ;; esac
    done
    echo "$sum"
}
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# ---- the phones ----------------------------------------------------------------
"$PHONES" --sip "127.0.0.1:$PHONES_PORT" --rtp-ports 30000-39999 \
    --wav "$ROOT/config/demo/audio/client.wav" --max-calls 100000000 --duration 864000 \
    --hangup-after "$CALL_SECS" --hangup-users agent \
    --stats "$RUN/phones.json" >>"$RUN/phones.log" 2>&1 &
PHONES_PID=$!

# ---- the steps -------------------------------------------------------------------
RESULTS=()
printf '' >"$OUT"
for step in $STEPS; do
    # agents the dialer paused in the step before (their phone did not
    # answer): counted there, resumed here so each step starts whole
    paused=$(sql "SELECT staff_id FROM agent_sessions WHERE state = 'paused'")
    if [ -n "$paused" ]; then
        log "resuming $(wc -w <<<"$paused") agents paused in the step before"
        printf '%s\n' $paused | xargs -P 4 -I@ "$HUIFANG" agent resume @ --by M01 --config "$CONF" >>"$RUN/cli.log" 2>&1 \
            || die "agent resume failed (see $RUN/cli.log)"
    fi
    write_config "$step"
    (cd "$RUN" && exec env -u RUST_LOG NO_COLOR=1 "$HUIFANG" serve --config "$CONF" >>"$RUN/serve-$step.log" 2>&1) &
    SERVE_PID=$!
    for _ in $(seq 1 100); do
        ss -Hlnu "sport = :$SIP_PORT" 2>/dev/null | grep -q . && break
        kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$RUN/serve-$step.log" >&2; die "serve exited at start-up"; }
        sleep 0.2
    done
    sleep "$WARMUP_SECS"
    left=$(sql "SELECT count(*) FROM tasks WHERE state = 'open' AND lease_owner IS NULL AND attempts = 0")
    W0=$(sql "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
    S0=$(pid_ticks "$SERVE_PID"); P0=$(pg_ticks); F0=$(pid_ticks "$PHONES_PID"); read -r M0 A0 < <(machine_ticks)
    LOAD0=$(cut -d' ' -f1 /proc/loadavg)
    sleep "$HOLD_SECS"
    S1=$(pid_ticks "$SERVE_PID"); P1=$(pg_ticks); F1=$(pid_ticks "$PHONES_PID"); read -r M1 A1 < <(machine_ticks)
    W1=$(sql "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
    kill -0 "$SERVE_PID" 2>/dev/null || die "serve died during step $step (see $RUN/serve-$step.log)"
    stop_pid "$SERVE_PID" TERM 20; SERVE_PID=
    # the window's calls: set-ups (bridged in it) and claims in it with their outcome
    IFS=$'\t' read -r setups claimed failed p50 p99 pmax open paused < <(sql "
        WITH w AS (SELECT '$W0'::timestamptz AS a, '$W1'::timestamptz AS b)
        SELECT
          (SELECT count(*) FROM calls, w WHERE answered_at >= w.a AND answered_at < w.b),
          (SELECT count(*) FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b),
          (SELECT count(*) FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b
                AND outcome IS DISTINCT FROM 'completed' AND outcome IS DISTINCT FROM 'interrupted'),
          (SELECT coalesce(round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY answered_at - claimed_at)))::int, 0)
             FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b AND answered_at IS NOT NULL),
          (SELECT coalesce(round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY answered_at - claimed_at)))::int, 0)
             FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b AND answered_at IS NOT NULL),
          (SELECT coalesce(round(1000 * extract(epoch FROM max(answered_at - claimed_at)))::int, 0)
             FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b AND answered_at IS NOT NULL),
          (SELECT count(*) FROM calls, w WHERE claimed_at >= w.a AND claimed_at < w.b AND outcome = 'interrupted'),
          (SELECT count(*) FROM agent_events, w WHERE to_state = 'paused' AND at >= w.a AND at < w.b)")
    sql "SELECT coalesce(outcome, '(open)'), count(*) FROM calls
         WHERE claimed_at >= '$W0'::timestamptz AND claimed_at < '$W1'::timestamptz GROUP BY 1 ORDER BY 2 DESC" >"$RUN/outcomes-$step.tsv"
    secs=$(python3 -c "from datetime import datetime as d; f=lambda s: d.fromisoformat(s.replace('Z','+00:00')); print(round((f('$W1')-f('$W0')).total_seconds(), 3))")
    line=$(python3 - "$step" "$secs" "$setups" "$claimed" "$failed" "$open" "$p50" "$p99" "$pmax" \
        "$((S1 - S0))" "$((P1 - P0))" "$((F1 - F0))" "$((M1 - M0))" "$((A1 - A0))" "$HZ" "$CORES" "$LOAD0" "$left" "$paused" <<'EOF'
import json, sys
(step, secs, setups, claimed, failed, cut, p50, p99, pmax,
 serve, pg, phones, busy, total, hz, cores, load, left, paused) = sys.argv[1:]
secs = float(secs); hz = int(hz)
cpu = lambda t: round(int(t) / hz / secs, 2)          # cores used on average
claimed, failed = int(claimed), int(failed)
print(json.dumps({
    "bench": "setup", "max_concurrent_calls": int(step), "window_s": secs,
    "setups_per_s": round(int(setups) / secs, 1), "claimed": claimed, "failed": failed,
    "failed_pct": round(100 * failed / claimed, 2) if claimed else None,
    "cut_by_the_step_end": int(cut), "agents_paused": int(paused),
    "claim_to_answered_ms": {"p50": int(p50), "p99": int(p99), "max": int(pmax)},
    "cpu_cores": {"serve": cpu(serve), "postgres": cpu(pg), "phones": cpu(phones),
                  "machine": round(int(busy) / int(total) * int(cores), 2) if int(total) else None},
    "cores": int(cores), "load_at_start": float(load), "tasks_left_at_start": int(left),
}))
EOF
)
    echo "$line" >>"$OUT"
    RESULTS+=("$line")
    log "step $step: $(python3 -c "import json,sys; d=json.loads(sys.argv[1]); c=d['cpu_cores']; print(f\"{d['setups_per_s']}/s, {d['failed']} failed of {d['claimed']}, claim→answered p50 {d['claim_to_answered_ms']['p50']} ms p99 {d['claim_to_answered_ms']['p99']} ms; cores: serve {c['serve']}, postgres {c['postgres']}, phones {c['phones']}, machine {c['machine']}\")" "$line")"
    [ "$left" -gt 0 ] || log "WARNING: the queue ran dry during step $step (SETUP_TASKS too small?)"
done
stop_pid "$PHONES_PID"; PHONES_PID=

# ---- the table -------------------------------------------------------------------
printf '\ncall set-up rate, %s; %s agents, calls of %s s, %s s held per step\n\n' "$MACHINE" "$AGENTS" "$CALL_SECS" "$HOLD_SECS"
python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
hdr = f"{'max calls':>9} {'set-ups/s':>9} {'claimed':>8} {'failed':>7} {'failed %':>8} {'p50 ms':>7} {'p99 ms':>7} {'serve':>6} {'postgres':>8} {'phones':>6} {'machine':>7}"
print(hdr); print("-" * len(hdr))
best = None
for d in rows:
    c = d["cpu_cores"]; l = d["claim_to_answered_ms"]
    fp = d["failed_pct"] if d["failed_pct"] is not None else float("nan")
    print(f"{d['max_concurrent_calls']:>9} {d['setups_per_s']:>9} {d['claimed']:>8} {d['failed']:>7} {fp:>8.2f} {l['p50']:>7} {l['p99']:>7} {c['serve']:>6} {c['postgres']:>8} {c['phones']:>6} {c['machine']:>7}")
    if d["failed_pct"] is not None and d["failed_pct"] < 1 and (best is None or d["setups_per_s"] > best["setups_per_s"]):
        best = d
print("\n(cpu columns: cores used on average over the window; postgres = all its processes)")
if best:
    l = best["claim_to_answered_ms"]; c = best["cpu_cores"]
    share = round(100 * c["postgres"] / c["machine"]) if c["machine"] else 0
    print(f"setup: highest rate held {best['window_s']:.0f} s with under 1 % failed: {best['setups_per_s']} set-ups/s "
          f"(max_concurrent_calls {best['max_concurrent_calls']}), claim → both answered p50 {l['p50']} ms, p99 {l['p99']} ms; "
          f"CPU {c['machine']} of {best['cores']} cores, PostgreSQL {c['postgres']} ({share} %)")
else:
    print("setup: no step held under 1 % failed")
    sys.exit(1)
EOF
CHECKS_DONE=1
log "JSON lines: $OUT"
