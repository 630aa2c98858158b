#!/usr/bin/env bash
# huifang's search benchmark (issue 12, "Benchmark"; results go to
# docs/PERFORMANCE.md): PostgreSQL (127.0.0.1:5432, trust auth) seeded with
# BENCH_RECORDINGS recorded calls across BENCH_CLIENTS clients (a fresh
# throwaway database, dropped at the end), a release `huifang serve` with
# its web door on it, then for BENCH_SECONDS each:
#   1. GET /api/v1/clients/{id}/recordings for random clients from
#      BENCH_CONNECTIONS concurrent connections (a compliance token);
#   2. the same query straight against PostgreSQL (Store::calls_page from
#      as many connections: what the database alone costs);
#   3. BENCH_LOGINS logins one after the other (Argon2id's cost).
# Prints the machine (nproc, load), then one line per run: requests/s,
# p50/p99 latency.
#
#   scripts/bench/search.sh
#   BENCH_RECORDINGS=100000 BENCH_CLIENTS=10000 BENCH_SECONDS=10 scripts/bench/search.sh
#
# Knobs: BENCH_RECORDINGS (10000000), BENCH_CLIENTS (1000000),
# BENCH_CONNECTIONS (50), BENCH_SECONDS (60), BENCH_LOGINS (20),
# BENCH_PORT (18080), HUIFANG_TEST_PG_URL (admin URL, default
# postgres://postgres@127.0.0.1:5432/test), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

RECORDINGS=${BENCH_RECORDINGS:-10000000}
CLIENTS=${BENCH_CLIENTS:-1000000}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
SECONDS_EACH=${BENCH_SECONDS:-60}
LOGINS=${BENCH_LOGINS:-20}
PORT=${BENCH_PORT:-18080}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG_ADMIN=${HUIFANG_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_DB=huifang_bench_search_$$
WORK=$(mktemp -d)
SERVE_PID=""

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
cleanup() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
    fi
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

command -v psql >/dev/null || die "psql is missing (PostgreSQL client tools)"
pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432 (scripts/test.sh starts it)"

cargo build --release --bin huifang --example search_bench >&2
HUIFANG=$TARGET/release/huifang
BENCH=$TARGET/release/examples/search_bench

psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
URL="${PG_ADMIN%/*}/$PG_DB"
cat > "$WORK/huifang.toml" <<TOML
[sip]
listen = "127.0.0.1:$((PORT + 1))"
[database]
url = "$URL"
[spool]
path = "spool"
[archive]
backend = "local"
path = "archive"
[calendar]
holidays = "$ROOT/config/holidays/cn-exchanges.toml"
[dialer]
enabled = false
[media]
rtp_ports = "$((PORT + 2))-$((PORT + 101))"
[log]
level = "warn"
[http]
listen = "127.0.0.1:$PORT"
TOML
# a made-up password for a throwaway user of a throwaway database
BENCH_PASSWORD="throwaway-$(date +%s%N)-secret"
export BENCH_PASSWORD
# the first command migrates the database
printf '%s\n' "$BENCH_PASSWORD" | "$HUIFANG" user add bench --role compliance --password-stdin -c "$WORK/huifang.toml" >&2

log "seeding $RECORDINGS recorded calls across $CLIENTS clients"
t0=$(date +%s)
psql -q "$URL" <<SQL
INSERT INTO calls (id, task_id, client_id, agent_uri, client_uri, started_at, kind, agent_id,
                   answered_at, ended_at, outcome)
SELECT md5('call' || g)::uuid, 'T' || g, 'C' || lpad((g % $CLIENTS)::text, 7, '0'),
       'sip:agent@bench', 'sip:client@bench',
       timestamptz '2026-01-01' + g * interval '2 second', 'new_account', 'A' || (g % 200),
       timestamptz '2026-01-01' + g * interval '2 second' + interval '10 second',
       timestamptz '2026-01-01' + g * interval '2 second' + interval '130 second', 'completed'
FROM generate_series(1, $RECORDINGS) g;
INSERT INTO recordings (id, call_id, path, state, sha256, bytes, duration_ms, started_at, sealed_at)
SELECT id, id, 'spool/sealed/' || id || '.wav', 'sealed', encode(sha256(id::text::bytea), 'hex'),
       1920044, 120000, answered_at, ended_at
FROM calls;
ANALYZE;
SQL
log "seeded in $(( $(date +%s) - t0 )) s"
TOKEN=$("$HUIFANG" user token bench --role compliance --expires-days 1 -c "$WORK/huifang.toml")

"$HUIFANG" serve -c "$WORK/huifang.toml" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || die "serve did not come up (see $WORK/serve.log)"

echo "nproc: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postgres: $(psql -qAt "$PG_ADMIN" -c 'SHOW server_version'); recordings: $RECORDINGS; clients: $CLIENTS; connections: $CONNECTIONS; seconds: $SECONDS_EACH"
printf '%-6s %10s %10s %9s %9s %9s %7s\n' RUN REQUESTS PER_S P50_MS P99_MS MAX_MS ERRORS
row() {
    python3 - "$1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"{r['mode']:<6} {r['requests']:>10} {r['per_s']:>10.0f} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['max_ms']:>9.2f} {r['errors']:>7}")
PY
}
row "$("$BENCH" --mode api --base "http://127.0.0.1:$PORT" --token "$TOKEN" --clients "$CLIENTS" --connections "$CONNECTIONS" --seconds "$SECONDS_EACH")"
echo "load after api: $(cut -d' ' -f1-3 /proc/loadavg)"
row "$("$BENCH" --mode db --url "$URL" --clients "$CLIENTS" --connections "$CONNECTIONS" --seconds "$SECONDS_EACH")"
echo "load after db: $(cut -d' ' -f1-3 /proc/loadavg)"
row "$("$BENCH" --mode login --base "http://127.0.0.1:$PORT" --login bench --logins "$LOGINS")"
