#!/usr/bin/env bash
# huifang's media benchmark (issue 3, "Benchmark"; results in docs/PERFORMANCE.md).
#
# For N = 100, 250, 500 concurrent recorded calls (BENCH_CALLS), each held
# for a steady window of BENCH_SECONDS (default 30) seconds:
#   1. huifang: examples/media_bench.rs starts huifang (the library, App::start)
#      and places N calls with place_call to examples/phones.rs (agent and
#      client legs, both streaming 20 ms PCMU), and measures its own process;
#   2. rtpengine (Debian package, userspace: --table=-1, recording to pcap):
#      scripts/bench/rtpengine_driver.py sets up the same N calls over the ng
#      protocol and the same phones stream through it (--rtp-only mode).
# Prints a side-by-side table and writes the raw JSON lines to
# target/bench/media-<time>.jsonl. Installs rtpengine if missing. Everything
# it starts is stopped by PID on exit. Run after scripts/install-peers.sh.
#
#   scripts/bench/media.sh                          # full run, ~5 min + build
#   BENCH_SECONDS=10 BENCH_CALLS="100" scripts/bench/media.sh
#   BENCH_SKIP_RTPENGINE=1 scripts/bench/media.sh   # huifang only
#
# Knobs: BENCH_SECONDS, BENCH_CALLS, BENCH_RATE (calls started per second,
# default 50), BENCH_SKIP_RTPENGINE, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

SECONDS_WINDOW=${BENCH_SECONDS:-30}
CALLS=${BENCH_CALLS:-"100 250 500"}
RATE=${BENCH_RATE:-50}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
EXAMPLES=$TARGET/release/examples
WAV=$ROOT/tests/fixtures/audio/agent.wav
OUT_DIR=$ROOT/target/bench
OUT=$OUT_DIR/media-$(date -u +%Y%m%dT%H%M%SZ).jsonl
NG_PORT=22222
RTPE_PORTS=(28000 31999)

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------ clean-up by PID
PIDS=()
WORK=$(mktemp -d /tmp/huifang-media-bench.XXXXXX)
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------- machine
NPROC=$(nproc)
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
log "machine: $NPROC cores, $CPU_MODEL; $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
log "N = $CALLS, window $SECONDS_WINDOW s each, ramp-up $RATE calls/s"

# File descriptors: per call huifang holds 4 sockets and a file, the phones 2
# sockets, rtpengine 4 sockets and a pcap file.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want" || die "cannot raise ulimit -n to $want"
log "ulimit -n $(ulimit -n)"

# ------------------------------------------------------ rtpengine (installed?)
is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}
missing=()
if [ -z "${BENCH_SKIP_RTPENGINE:-}" ]; then
    # Only the daemon: the `rtpengine` metapackage pulls the kernel module
    # (dkms, kernel headers), which a userspace benchmark does not use.
    is_installed rtpengine-daemon || missing+=(rtpengine-daemon)
fi
command -v python3 >/dev/null || missing+=(python3) # the ng driver and the table
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "need root to install ${missing[*]}"
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then # keep the package's init script from starting it
        printf '#!/bin/sh\n# added by huifang scripts/bench/media.sh during install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
    fi
    log "installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/dev/null || die "apt-get install ${missing[*]} failed"
    if [ "$added_policy" -eq 1 ]; then rm -f "$policy"; fi
    for p in "${missing[@]}"; do is_installed "$p" || die "$p is still not installed"; done
fi
if [ -z "${BENCH_SKIP_RTPENGINE:-}" ]; then
    command -v rtpengine >/dev/null || die "rtpengine not on PATH"
    log "rtpengine $(dpkg-query -W -f='${Version}' rtpengine-daemon)"
fi

# --------------------------------------------------------------------- build
log "building the examples (release)"
cargo build --release --examples --quiet || die "cargo build --release --examples failed"
{ [ -x "$EXAMPLES/media_bench" ] && [ -x "$EXAMPLES/phones" ]; } || die "examples not found in $EXAMPLES"
mkdir -p "$OUT_DIR"

# ------------------------------------------------------------------- the runs
run_huifang() { # N
    local n=$1
    log "huifang, N=$n"
    "$EXAMPLES/media_bench" --calls "$n" --seconds "$SECONDS_WINDOW" --rate "$RATE" \
        --phones-bin "$EXAMPLES/phones" --wav "$WAV" --out "$OUT" >/dev/null &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || die "media_bench N=$n failed"
}

ng_ping() { # rtpengine answers an ng ping (bencoded {"command": "ping"})
    python3 - "$NG_PORT" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.sendto(b"ready d7:command4:pinge", ("127.0.0.1", int(sys.argv[1])))
try:
    sys.exit(0 if b"pong" in s.recv(4096) else 1)
except OSError:
    sys.exit(1)
PY
}

run_rtpengine() { # N
    local n=$1 dir="$WORK/rtpengine-$1"
    mkdir -p "$dir/rec"
    log "rtpengine, N=$n"
    # Userspace forwarding only (--table=-1: no kernel module); recording to
    # pcap (the proc method needs the kernel module, see docs/PERFORMANCE.md);
    # deleted calls are dropped at once (--delete-delay=0).
    rtpengine --config-file=none --table=-1 --interface=127.0.0.1 \
        --listen-ng=127.0.0.1:$NG_PORT --port-min="${RTPE_PORTS[0]}" --port-max="${RTPE_PORTS[1]}" \
        --recording-dir="$dir/rec" --recording-method=pcap --delete-delay=0 \
        --timeout=60 --foreground --log-stderr --log-level=5 \
        --pidfile="$dir/rtpengine.pid" >"$dir/rtpengine.log" 2>&1 &
    local rtpe=$!
    PIDS+=("$rtpe")
    local ok=0
    for _ in $(seq 1 50); do
        if ng_ping; then ok=1; break; fi
        kill -0 "$rtpe" 2>/dev/null || break
        sleep 0.1
    done
    [ "$ok" -eq 1 ] || { cat "$dir/rtpengine.log" >&2; die "rtpengine did not start"; }
    python3 "$ROOT/scripts/bench/rtpengine_driver.py" --calls "$n" --seconds "$SECONDS_WINDOW" \
        --rate "$RATE" --ng 127.0.0.1:$NG_PORT --pid "$rtpe" --rec-dir "$dir/rec" \
        --recording-method pcap --phones-bin "$EXAMPLES/phones" --wav "$WAV" \
        --workdir "$dir" --out "$OUT" >/dev/null &
    local drv=$!
    PIDS+=("$drv")
    wait "$drv" || die "rtpengine_driver N=$n failed (log: $dir/rtpengine.log)"
    kill "$rtpe" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$rtpe" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$dir" # the recordings: ~20 kB per call-second
}

start=$(date +%s)
for n in $CALLS; do
    run_huifang "$n"
    if [ -z "${BENCH_SKIP_RTPENGINE:-}" ]; then run_rtpengine "$n"; fi
done
log "done in $(($(date +%s) - start)) s; raw results: $OUT"

# --------------------------------------------------------------------- table
python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
h = {r["calls"]: r for r in rows if r["system"] == "huifang"}
e = {r["calls"]: r for r in rows if r["system"] == "rtpengine"}
any_row = rows[0]
print("\n%d cores, %s; %s s window per N\n" % (any_row["nproc"], any_row["cpu_model"], any_row["seconds"]))
print("| N | huifang µs/call-s | huifang RSS/call KiB | huifang lost/late | relay loss (huifang) "
      "| rtpengine µs/call-s | rtpengine RSS/call KiB | relay loss (rtpengine) | CPU ratio huifang/rtpengine "
      "| load 1m (h / r) |")
print("|---|---|---|---|---|---|---|---|---|---|")
fmt = lambda v: "-" if v is None else str(v)
for n in sorted(h):
    a, b = h[n], e.get(n)
    ratio = "-"
    if b and b.get("cpu_us_per_call_s"):
        ratio = "%.2f" % (a["cpu_us_per_call_s"] / b["cpu_us_per_call_s"])
    up = "" if a["calls_up_in_window"] == n else " (%d up)" % a["calls_up_in_window"]
    print("| %d%s | %.0f | %.1f | %d / %d | %d of %d | %s | %s | %s | %s | %s / %s |" % (
        n, up, a["cpu_us_per_call_s"], a["rss_per_call_kib"],
        a["recorded"]["lost"], a["recorded"]["late"],
        a["generator"]["lost"], a["generator"]["received"],
        fmt(b and b["cpu_us_per_call_s"]), fmt(b and b["rss_per_call_kib"]),
        ("%d of %d" % (b["generator"]["lost"], b["generator"]["received"])) if b else "-",
        ratio, fmt(a.get("loadavg_1m_at_window_end")),
        fmt(b and b.get("loadavg_1m_at_window_end"))))
print()
for n in sorted(h):
    a = h[n]
    print("huifang N=%d: answered %d, sealed %d (files %d), outcomes %s" % (
        n, a["answered"], a["sealed"], a["sealed_files"], a["outcomes"]))
for n in sorted(e):
    b = e[n]
    print("rtpengine N=%d: calls up %d, recording files %d (%.0f MB, %s)" % (
        n, b["calls_up_in_window"], b["recording_files"], b["recording_bytes"] / 1e6,
        b["recording_method"]))
EOF
