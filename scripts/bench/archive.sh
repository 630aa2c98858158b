#!/usr/bin/env bash
# huifang's archive benchmark (issue 4, "Benchmark"; results in docs/PERFORMANCE.md).
#
# Seals BENCH_RECORDINGS (default 100) recordings at once and lets huifang's
# uploader (examples/archive_bench.rs, linking the library) take them to a
# real S3 with Object Lock (the test Ceph RGW), then PUTs the same bytes with
# a bare aws-sdk-s3 loop at the same concurrency to the same server in the
# same run. Reports hang-up → verified latency (p50, p99, max), where it goes
# (file seal, row seal, sealed → verified), upload throughput (MB/s,
# objects/s) and CPU seconds (huifang's process, and RGW + OSD + mon) for
# both, the machine's core count (nproc) and CPU, and appends the JSON lines
# to target/bench/archive-<time>.jsonl.
#
# Starts Ceph RGW with scripts/peers/ceph-rgw.sh when it is not running (and
# stops it again at the end); a running one is used and left running. Run
# after scripts/install-peers.sh. Every object is locked in COMPLIANCE mode
# for 15 years: each run leaves about 2 x N x size in the throwaway test
# cluster (`scripts/peers/ceph-rgw.sh wipe` resets it).
#
#   scripts/bench/archive.sh                           # 100 x 60 s recordings, 8 at once
#   BENCH_PARALLEL="8 32" scripts/bench/archive.sh     # several concurrencies, one run each
#   BENCH_AUDIO_SECONDS=300 scripts/bench/archive.sh   # 5-minute recordings (9.6 MB)
#
# Knobs: BENCH_RECORDINGS (100), BENCH_AUDIO_SECONDS (60: 1.92 MB each),
# BENCH_PARALLEL (8, the default archive.parallel_uploads; a list runs each),
# BENCH_RUNS (1, repetitions of each), HUIFANG_RGW_PORT (7480),
# HUIFANG_CEPH_MON_PORT (3300), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

RECORDINGS=${BENCH_RECORDINGS:-100}
AUDIO_SECONDS=${BENCH_AUDIO_SECONDS:-60}
PARALLEL=${BENCH_PARALLEL:-8}
RUNS=${BENCH_RUNS:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT_DIR=$ROOT/target/bench
OUT=$OUT_DIR/archive-$(date -u +%Y%m%dT%H%M%SZ).jsonl
export HUIFANG_RGW_PORT=${HUIFANG_RGW_PORT:-7480}
RGW=$ROOT/scripts/peers/ceph-rgw.sh

log() { printf 'bench: %s\n' "$*" >&2; }

STARTED_RGW=0
cleanup() {
    local rc=$?
    if [ "$STARTED_RGW" = 1 ]; then
        log "stopping the Ceph RGW this script started"
        "$RGW" stop >&2 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "machine: $(nproc) cores (nproc), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"

if "$RGW" status >/dev/null 2>&1; then
    log "using the running Ceph RGW on 127.0.0.1:$HUIFANG_RGW_PORT"
else
    log "starting Ceph RGW on 127.0.0.1:$HUIFANG_RGW_PORT (scripts/peers/ceph-rgw.sh)"
    STARTED_RGW=1
    "$RGW" start >&2
fi
# the plain S3 test user, never the admin keyring
# shellcheck disable=SC1091
. "$ROOT/tests/peers/rgw-user.env"
export HUIFANG_S3_ENDPOINT=http://127.0.0.1:$HUIFANG_RGW_PORT
export HUIFANG_S3_ACCESS_KEY=$HUIFANG_RGW_ACCESS_KEY
export HUIFANG_S3_SECRET_KEY=$HUIFANG_RGW_SECRET_KEY

# the server's processes, for its CPU time per phase
SERVER_PIDS=()
for d in rgw osd mon; do
    f=${HUIFANG_PEERS_DIR:-$ROOT/target/peers}/ceph-rgw/$d.pid
    if [ -s "$f" ]; then SERVER_PIDS+=(--server-pid "$(cat "$f")"); fi
done

log "building examples/archive_bench.rs (release)"
cargo build --release --example archive_bench >&2
mkdir -p "$OUT_DIR"

for parallel in $PARALLEL; do
    for run in $(seq 1 "$RUNS"); do
        log "run $run/$RUNS: $RECORDINGS recordings of $AUDIO_SECONDS s, $parallel uploads at once"
        "$TARGET/release/examples/archive_bench" \
            --recordings "$RECORDINGS" --seconds "$AUDIO_SECONDS" --parallel "$parallel" \
            "${SERVER_PIDS[@]}" --out "$OUT" >/dev/null
    done
done
log "JSON lines: $OUT"
