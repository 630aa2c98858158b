#!/usr/bin/env bash
# huifang's screen-pop benchmark (issue 13, "Benchmark"; results go to
# docs/PERFORMANCE.md): a release `huifang serve` on a throwaway PostgreSQL
# database with BENCH_AGENTS agents and BENCH_TASKS complaint callbacks, its
# dialer calling simulated phones (examples/phones.rs answers every agent
# and client leg, calls end after call.max_call_secs), and
# examples/screenpop_bench.rs holding one /ws/agent connection per agent.
# All agents go available; for BENCH_SECONDS the dialer claims tasks and
# offers them. Prints the machine (nproc, load), then the time from each
# claim (the agent's trace, written in the claim's transaction) to the
# `offered` message at the client — p50/p99/max, and the server's part
# (claim → the message's `at`) — and serve's resident memory per connected
# agent.
#
#   scripts/bench/screenpop.sh
#   BENCH_AGENTS=100 BENCH_SECONDS=10 scripts/bench/screenpop.sh
#
# Knobs: BENCH_AGENTS (500), BENCH_TASKS (5000), BENCH_SECONDS (60),
# BENCH_MAX_CALLS (50: dialer.max_concurrent_calls), BENCH_PORT (18180),
# HUIFANG_TEST_PG_URL (admin URL, default
# postgres://postgres@127.0.0.1:5432/test), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

AGENTS=${BENCH_AGENTS:-500}
TASKS=${BENCH_TASKS:-5000}
SECONDS_RUN=${BENCH_SECONDS:-60}
MAX_CALLS=${BENCH_MAX_CALLS:-50}
PORT=${BENCH_PORT:-18180}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG_ADMIN=${HUIFANG_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_DB=huifang_bench_screenpop_$$
WORK=$(mktemp -d)
SERVE_PID=""
PHONES_PID=""

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
cleanup() {
    for pid in $SERVE_PID $PHONES_PID; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v psql >/dev/null || die "psql is missing (PostgreSQL client tools)"
pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432 (scripts/test.sh starts it)"

cargo build --release --bin huifang --example screenpop_bench --example phones >&2
HUIFANG=$TARGET/release/huifang
BENCH=$TARGET/release/examples/screenpop_bench
PHONES=$TARGET/release/examples/phones

psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
URL="${PG_ADMIN%/*}/$PG_DB"
SIP=$((PORT + 1))
PHONES_SIP=$((PORT + 2))
# every call: 4 RTP ports in huifang, 2 in the phones
RTP_FIRST=$((PORT + 10))
RTP_LAST=$((RTP_FIRST + 8 * MAX_CALLS + 99))
PH_FIRST=$((RTP_LAST + 1))
# the phones bind a port per leg and free it at the BYE: room for many in flight
PH_LAST=$((PH_FIRST + 24000))

cat > "$WORK/huifang.toml" <<TOML
[sip]
listen = "127.0.0.1:$SIP"
[database]
url = "$URL"
[spool]
path = "spool"
min_free_mb = 1
[archive]
backend = "local"
path = "archive"
[calendar]
holidays = "$ROOT/config/holidays/cn-exchanges.toml"
[media]
rtp_ports = "$RTP_FIRST-$RTP_LAST"
[log]
level = "warn"
[call]
agent_ring_secs = 5
client_ring_secs = 5
max_call_secs = 1
[dialer]
poll_interval_ms = 100
max_concurrent_calls = $MAX_CALLS
lease_secs = 30
wrap_up_secs = 0
drill = true
clock_start = "2026-11-30T10:00:00+08:00"
client_uri = "sip:{phone}@127.0.0.1:$PHONES_SIP"
[rules.new_account]
enabled = false
[rules.important]
enabled = false
[rules.dormant]
enabled = false
[rules.existing]
enabled = false
[http]
listen = "127.0.0.1:$PORT"
TOML

log "seeding $AGENTS agents, $TASKS clients with a complaint each"
python3 - "$WORK" "$AGENTS" "$TASKS" "$PHONES_SIP" <<'PY'
import sys
work, agents, tasks, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(f"{work}/staff.csv", "w") as f:
    f.write("staff_id,name,role,branch,manager_id,sip_uri,active,left_on\n")
    for i in range(1, agents + 1):
        f.write(f"A{i:04},Agent {i},service,SH01,,sip:bench{i:04}@127.0.0.1:{port},true,\n")
with open(f"{work}/clients.csv", "w") as f:
    f.write("client_id,name,phone,branch,opened_on,introducer_id,broker_introduced,assets_cny,"
            "yearly_commission_cny,monthly_turnover_cny,last_trade_on\n")
    for i in range(tasks):
        f.write(f"C{i:07},Client {i},139{i:08},SH01,2025-03-01,,0,,,,2026-11-20\n")
with open(f"{work}/events.csv", "w") as f:
    f.write("event_id,client_id,kind,occurred_on,amount_cny,staff_id,note\n")
    for i in range(tasks):
        f.write(f"E{i:07},C{i:07},complaint,2026-11-27,,,\n")
PY
for what in staff clients events; do
    "$HUIFANG" import "$what" "$WORK/$what.csv" -c "$WORK/huifang.toml" >/dev/null
done
"$HUIFANG" plan --as-of 2026-11-30 -c "$WORK/huifang.toml" >/dev/null
# a made-up password for throwaway users of a throwaway database
BENCH_PASSWORD="throwaway-$(date +%s%N)-secret"
export BENCH_PASSWORD
"$BENCH" --mode seed --url "$URL" --agents "$AGENTS" --tokens "$WORK/tokens.txt"

"$PHONES" --sip "127.0.0.1:$PHONES_SIP" --rtp-ports "$PH_FIRST-$PH_LAST" \
    --wav "$ROOT/tests/fixtures/audio/agent.wav" --max-calls 1000000 \
    --duration $((SECONDS_RUN + 120)) --stats "$WORK/phones.json" >"$WORK/phones.log" 2>&1 &
PHONES_PID=$!
"$HUIFANG" serve -c "$WORK/huifang.toml" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || die "serve did not come up (see $WORK/serve.log)"
sleep 2

echo "nproc: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $(psql -qAt "$PG_ADMIN" -c 'SHOW server_version'); agents: $AGENTS; tasks: $TASKS; max calls: $MAX_CALLS; seconds: $SECONDS_RUN"
R=$("$BENCH" --mode run --url "$URL" --base "http://127.0.0.1:$PORT" --tokens "$WORK/tokens.txt" \
    --seconds "$SECONDS_RUN" --serve-pid "$SERVE_PID")
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$R" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"connections: {r['agents']} (all connected in {r['connect_s']:.1f} s); offers: {r['offers']} (matched to their claim: {r['matched']})")
print(f"claim -> offered at the client: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
print(f"  of which in the server (claim -> the message's at): p50 {r['server_p50_ms']:.1f} ms, p99 {r['server_p99_ms']:.1f} ms")
print(f"serve's memory: {r['rss_before_kib']} KiB before, {r['rss_after_kib']} KiB with the connections: {r['kib_per_connection']:.1f} KiB per connected agent")
PY
calls=$(psql -qAt "$URL" -c "SELECT string_agg(n || ' ' || coalesce(outcome, 'running') || coalesce(' (' || reason || ')', ''), ', ' ORDER BY n DESC) FROM (SELECT outcome, reason, count(*) AS n FROM calls GROUP BY outcome, reason) o")
echo "calls: $calls"
