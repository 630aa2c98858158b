#!/usr/bin/env bash
# Self-test of the huifang-facing SIPp scenarios in tests/peers/: runs each
# against SIPp stand-ins for a correct and a broken UAS and checks that the
# scenario passes and fails respectively. Needs only sipp; 127.0.0.1 only.
#   tests/peers/selftest/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PEERS=$ROOT/tests/peers
WORK=${HUIFANG_PEERS_DIR:-$ROOT/target/peers}/selftest
mkdir -p "$WORK"
command -v sipp >/dev/null 2>&1 || { echo "sipp is not installed: run scripts/install-peers.sh" >&2; exit 1; }

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -Hlnut "sport = :$p" 2>/dev/null | grep -q . || { printf '%s' "$p"; return; }
    done
}

passed=0
failed=0
# check UAS_SCENARIO UAC_SCENARIO EXPECTED_RC [TRANSPORT: u1 (default) | t1]
check() {
    local uas=$1 uac=$2 want=$3 t=${4:-u1} name
    name="$(basename "$uac" .xml) vs $(basename "$uas" .xml) ($t)"
    local uport uac_port rc
    uport=$(free_port)
    uac_port=$(free_port)
    (cd "$WORK" && exec timeout 25 sipp -sf "$PEERS/selftest/$uas" -t "$t" -i 127.0.0.1 -p "$uport" \
        -cp "$(free_port)" -m 1 -nostdin -timeout 12s >/dev/null 2>&1) &
    local upid=$!
    sleep 0.3
    set +e
    (cd "$WORK" && exec timeout 25 sipp "127.0.0.1:$uport" -sf "$PEERS/$uac" -t "$t" -i 127.0.0.1 \
        -p "$uac_port" -cp "$(free_port)" -m 1 -nostdin -timeout 10s -timeout_error \
        -trace_logs -log_file "$WORK/$(basename "$uac" .xml).log" >/dev/null 2>&1)
    rc=$?
    set -e
    wait "$upid" 2>/dev/null || true
    if [ "$rc" -eq "$want" ]; then
        echo "ok   $name (exit $rc)"
        passed=$((passed + 1))
    else
        echo "FAIL $name: exit $rc, want $want"
        failed=$((failed + 1))
    fi
}

check uas-404.xml invite-unknown.xml 0
check uas-404-retrans-after-ack.xml invite-unknown.xml 1
check uas-404.xml invite-unknown-noack.xml 0
check uas-404-no-retrans.xml invite-unknown-noack.xml 1
check uas-404.xml invite-unknown.xml 0 t1
check uas-404-retrans-after-ack.xml invite-unknown.xml 1 t1

echo "selftest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
