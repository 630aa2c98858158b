#!/usr/bin/env bash
# huifang's evidence export benchmark (issue 14, "Benchmark"; results go to
# docs/PERFORMANCE.md): client C1 with BENCH_RECORDINGS sealed recordings
# of BENCH_AUDIO_SECONDS each (examples/export_bench.rs seeds them, each
# with its recording.sealed audit event), archived to the local archive by
# `huifang archive drain`; then, in the same run:
#   1. `cat` of the same archived WAVs into one file, fsynced (the floor:
#      reading and writing the bytes once, durably);
#   2. `huifang export --client C1` (the zip: every WAV read from the
#      archive's recorded version, hashed, written; the JSON files; the
#      audit chain's links);
#   3. `huifang export verify` of that zip.
# Prints the machine (nproc, load), then MB/s and peak RSS of each (GNU
# time's maximum resident set size).
#
#   scripts/bench/export.sh                                        # 1000 x 30 s (960 KB each)
#   BENCH_RECORDINGS=100 scripts/bench/export.sh                   # a quick look
#
# Knobs: BENCH_RECORDINGS (1000), BENCH_AUDIO_SECONDS (30), CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

RECORDINGS=${BENCH_RECORDINGS:-1000}
AUDIO_SECONDS=${BENCH_AUDIO_SECONDS:-30}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package time)"

cargo build --release --bin huifang --example export_bench >&2
HUIFANG=$TARGET/release/huifang

log "seeding $RECORDINGS recordings of $AUDIO_SECONDS s"
"$TARGET/release/examples/export_bench" --dir "$WORK/site" --recordings "$RECORDINGS" --seconds "$AUDIO_SECONDS"
"$HUIFANG" archive drain -c "$WORK/site/huifang.toml" >/dev/null
# the export's own log says how long gathering (the database, the manifests) took
sed -i 's/level = "warn"/level = "info"/' "$WORK/site/huifang.toml"
sync

echo "nproc: $(nproc); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
BYTES=$(find "$WORK/site/archive" -name '*.wav' -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "recordings: $RECORDINGS x $AUDIO_SECONDS s; WAV bytes: $BYTES"
printf '%-8s %10s %10s %12s\n' RUN SECONDS MB_PER_S PEAK_RSS_KIB
run() {
    local name=$1; shift
    NO_COLOR=1 /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/$name.log"
    read -r secs rss < "$WORK/time"
    python3 -c "import sys; b,s=int(sys.argv[1]),float(sys.argv[2]); print(f'{sys.argv[3]:<8} {s:>10.2f} {b/1e6/max(s,0.001):>10.1f} {sys.argv[4]:>12}')" \
        "$BYTES" "$secs" "$name" "$rss"
}
# cat, then fsync the file: the export fsyncs its zip before renaming it
run cat sh -c "find '$WORK/site/archive' -name '*.wav' -print0 | sort -z | xargs -0 cat > '$WORK/all.bin' && sync '$WORK/all.bin'"
rm -f "$WORK/all.bin"; sync
run export "$HUIFANG" export --client C1 --user bench --out "$WORK/export.zip" -c "$WORK/site/huifang.toml"
run verify "$HUIFANG" export verify "$WORK/export.zip"
echo "export: $(grep -o 'export gathered.*ms=[0-9]*' "$WORK/export.log" | grep -o 'ms=[0-9]*') gathering, $(grep -o 'export written ms=[0-9]*' "$WORK/export.log" | grep -o 'ms=[0-9]*') in all"
echo "zip bytes: $(stat -c %s "$WORK/export.zip"); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
