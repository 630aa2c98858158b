#!/usr/bin/env bash
# huifang's task-claim benchmark (issue 6, "Benchmark"; results go to
# docs/PERFORMANCE.md): on PostgreSQL (127.0.0.1:5432, trust auth), with 1,
# 2 and 4 claimers at once — as many `serve` instances would — each with
# its own connection pool and agents, claim tasks from one queue of
# BENCH_TASKS open tasks (avoidance checked, lease taken, the attempt
# written back), BENCH_CLAIMS claims per run. Each run gets a fresh
# throwaway database (created and dropped). Prints `nproc`, then per run
# the claims per second and the p50/p99 latency of one claim.
#
#   scripts/bench/claim.sh
#   BENCH_CLAIMERS="1 2 4 8" BENCH_TASKS=100000 scripts/bench/claim.sh
#   BENCH_PROFILE=debug scripts/bench/claim.sh
#
# Knobs: BENCH_CLAIMERS ("1 2 4"), BENCH_TASKS (20000), BENCH_CLAIMS
# (4000), BENCH_AGENTS (agents per claimer, 8), BENCH_PROFILE (release),
# HUIFANG_TEST_PG_URL (admin URL, default
# postgres://postgres@127.0.0.1:5432/test), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

CLAIMERS=${BENCH_CLAIMERS:-"1 2 4"}
TASKS=${BENCH_TASKS:-20000}
CLAIMS=${BENCH_CLAIMS:-4000}
AGENTS=${BENCH_AGENTS:-8}
PROFILE=${BENCH_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PG_ADMIN=${HUIFANG_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
PG_DB=""

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
drop_db() {
    if [ -n "$PG_DB" ]; then
        psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
        PG_DB=""
    fi
}
trap drop_db EXIT

command -v psql >/dev/null || die "psql is missing (PostgreSQL client tools)"
pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432 (scripts/test.sh starts it)"

if [ "$PROFILE" = release ]; then
    cargo build --release --example claim_bench >&2
else
    cargo build --example claim_bench >&2
fi
BIN=$TARGET/$PROFILE/examples/claim_bench
[ -x "$BIN" ] || die "$BIN not found"

echo "nproc: $(nproc)"
echo "postgres: $(psql -qAt "$PG_ADMIN" -c 'SHOW server_version') (synchronous_commit=$(psql -qAt "$PG_ADMIN" -c 'SHOW synchronous_commit'))"
echo "profile: $PROFILE; tasks: $TASKS; claims per run: $CLAIMS; agents per claimer: $AGENTS"
printf '%-9s %10s %10s %13s %13s\n' CLAIMERS CLAIMS CLAIMS/S P50_MS P99_MS
for n in $CLAIMERS; do
    PG_DB=huifang_bench_claim_$$_$n
    psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_DB" >/dev/null
    url="${PG_ADMIN%/*}/$PG_DB"
    line=$("$BIN" --url "$url" --tasks "$TASKS" --claims "$CLAIMS" --claimers "$n" --agents "$AGENTS")
    python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"{r['claimers']:<9} {r['claims']:>10} {r['claims_per_s']:>10.0f} {r['claim_p50_ms']:>13.2f} {r['claim_p99_ms']:>13.2f}")
PY
    drop_db
done
