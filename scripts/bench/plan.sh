#!/usr/bin/env bash
# huifang's planning benchmark (issue 5, "Benchmark"; results go to
# docs/PERFORMANCE.md): import BENCH_CLIENTS clients (default 1,000,000) and
# BENCH_EVENTS events (default 200,000), then plan, on SQLite and on
# PostgreSQL (127.0.0.1:5432, trust auth; a throwaway database is created
# and dropped). For each step prints rows per second, peak memory
# (/usr/bin/time's maximum resident set size) and the 1-minute load average
# when it ended; first the machine (cores, CPU, memory).
#
#   scripts/bench/plan.sh                                   # full run
#   BENCH_CLIENTS=100000 BENCH_EVENTS=20000 scripts/bench/plan.sh
#   BENCH_BACKENDS=sqlite BENCH_PROFILE=debug scripts/bench/plan.sh
#
# Knobs: BENCH_CLIENTS, BENCH_EVENTS, BENCH_BACKENDS ("sqlite postgres"),
# BENCH_PROFILE (release), BENCH_DIR (where the CSV files and the SQLite
# database go, in a fresh subdirectory; default $TMPDIR or /tmp),
# HUIFANG_TEST_PG_URL (admin URL, default
# postgres://postgres@127.0.0.1:5432/test), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

CLIENTS=${BENCH_CLIENTS:-1000000}
EVENTS=${BENCH_EVENTS:-200000}
BACKENDS=${BENCH_BACKENDS:-"sqlite postgres"}
PROFILE=${BENCH_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG_ADMIN=${HUIFANG_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/huifang-bench.XXXXXX")
PG_DB=""

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
cleanup() {
    if [ -n "$PG_DB" ]; then
        psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
command -v python3 >/dev/null || die "python3 is missing"

if [ "$PROFILE" = release ]; then
    cargo build --release --bin huifang >&2
else
    cargo build --bin huifang >&2
fi
BIN=$TARGET/$PROFILE/huifang
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
echo "machine: $(nproc) cores ($cpu), $mem; load average $(cut -d' ' -f1-3 /proc/loadavg); huifang $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $PROFILE"

log "generating $CLIENTS clients, $EVENTS events, 200 staff in $WORK"
python3 - "$WORK" "$CLIENTS" "$EVENTS" <<'PY'
import random, sys
work, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(42)
with open(f"{work}/staff.csv", "w") as f:
    f.write("staff_id,name,role,branch,manager_id,active,left_on\n")
    for i in range(200):
        role = ["sales", "service", "sales", "reviewer", "supervisor"][i % 5]
        mgr = f"S{(i // 10) * 10:04d}" if i % 10 else ""
        left = "2026-11-10" if i % 97 == 0 and i else ""
        f.write(f"S{i:04d},staff{i},{role},B{i % 20:02d},{mgr},{'false' if left else 'true'},{left}\n")
with open(f"{work}/clients.csv", "w") as f:
    f.write("client_id,name,phone,branch,opened_on,introducer_id,broker_introduced,assets_cny,"
            "yearly_commission_cny,monthly_turnover_cny,last_trade_on\n")
    for i in range(n):
        opened = f"20{rnd.randint(15, 26)}-{rnd.randint(1, 11):02d}-{rnd.randint(1, 27):02d}"
        last = "" if rnd.random() < 0.1 else f"2026-{rnd.randint(1, 11):02d}-{rnd.randint(1, 27):02d}"
        if last and last < opened:
            last = opened
        f.write(f"C{i:08d},client{i},139{i:08d},B{i % 20:02d},{opened},S{rnd.randrange(200):04d},"
                f"{int(rnd.random() < 0.05)},{rnd.randint(0, 5_000_000)},{rnd.randint(0, 300_000)},"
                f"{rnd.randint(0, 12_000_000)},{last}\n")
kinds = ["asset_inflow", "asset_outflow", "turnover", "complaint", "abnormal_trading", "special_order"]
with open(f"{work}/events.csv", "w") as f:
    f.write("event_id,client_id,kind,occurred_on,amount_cny,staff_id,note\n")
    for i in range(m):
        k = kinds[i % 3] if i % 20 else kinds[3 + (i // 20) % 3]
        amount = rnd.randint(1_000, 9_000_000) if k in kinds[:3] else ""
        f.write(f"E{i:08d},C{rnd.randrange(n):08d},{k},2026-11-{rnd.randint(16, 27):02d},{amount},,\n")
PY

# step NAME ROWS CMD… → "NAME  seconds  rows/s  peak MiB  load (1 min) at the end"
step() {
    local name=$1 rows=$2
    shift 2
    local t="$WORK/time.txt"
    /usr/bin/time -f '%e %M' -o "$t" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" \
        || { cat "$WORK/err.txt" >&2; die "$name failed"; }
    read -r secs kib <"$t"
    read -r load _ </proc/loadavg
    python3 -c "import sys; s=float('$secs'); print(f'{sys.argv[1]:<28} {s:8.1f} s {int($rows)/max(s,0.001):12.0f} rows/s {int($kib)/1024:8.0f} MiB   load {sys.argv[2]}')" "$name" "$load"
}

for backend in $BACKENDS; do
    case $backend in
        sqlite) url="sqlite://$WORK/bench.db" ;;
        postgres)
            PG_DB="huifang_bench_$$"
            psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null || die "cannot create $PG_DB"
            url="${PG_ADMIN%/*}/$PG_DB"
            ;;
        *) die "unknown backend $backend" ;;
    esac
    cat >"$WORK/huifang.toml" <<TOML
[sip]
listen = "127.0.0.1:5070"
[database]
url = "$url"
[calendar]
holidays = "$ROOT/config/holidays/cn-exchanges.toml"
TOML
    echo "== $backend: $CLIENTS clients, $EVENTS events"
    step "import staff" 200 "$BIN" import staff "$WORK/staff.csv" --config "$WORK/huifang.toml"
    step "import clients" "$CLIENTS" "$BIN" import clients "$WORK/clients.csv" --config "$WORK/huifang.toml"
    step "import events" "$EVENTS" "$BIN" import events "$WORK/events.csv" --config "$WORK/huifang.toml"
    step "re-import clients (no-op)" "$CLIENTS" "$BIN" import clients "$WORK/clients.csv" --config "$WORK/huifang.toml"
    step "plan (clients/s)" "$CLIENTS" "$BIN" plan --as-of 2026-11-27 --config "$WORK/huifang.toml"
    grep -v '^KIND' "$WORK/out.txt" | awk '{printf "    %-18s %s planned\n", $1, $3}'
    step "plan again (clients/s)" "$CLIENTS" "$BIN" plan --as-of 2026-11-27 --config "$WORK/huifang.toml"
    if [ "$backend" = postgres ]; then
        psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        PG_DB=""
    fi
done
