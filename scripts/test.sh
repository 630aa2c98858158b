#!/usr/bin/env bash
# The project's single test command (also run by .ci/run):
# installs the test peers, checks the toolchain and services, starts the test
# Kamailio (stopped again on exit, whatever happens), then runs
# cargo fmt --check, cargo clippy --all-targets -D warnings and cargo test.
# Extra arguments are passed to `cargo test`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: ERROR: %s\n' "$*" >&2; exit 1; }

step "install test peers (scripts/install-peers.sh)"
scripts/install-peers.sh

step "check Rust components rustfmt and clippy"
for pair in fmt:rustfmt clippy:clippy; do
    sub=${pair%%:*}
    comp=${pair#*:}
    if cargo "$sub" --version >/dev/null 2>&1; then
        echo "$comp present"
    else
        command -v rustup >/dev/null 2>&1 || die "cargo $sub is missing and rustup is not available"
        echo "adding $comp"
        rustup component add "$comp"
    fi
done

step "check PostgreSQL on 127.0.0.1:5432"
command -v pg_isready >/dev/null 2>&1 || die "pg_isready not found: PostgreSQL client tools are missing"
if pg_isready -h 127.0.0.1 -p 5432 -q; then
    echo "PostgreSQL is up"
else
    [ -d /etc/postgresql ] || die "PostgreSQL is not running and no cluster under /etc/postgresql"
    pg_version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
    [ -n "$pg_version" ] || die "no PostgreSQL cluster under /etc/postgresql"
    echo "starting PostgreSQL $pg_version/main"
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start \
        || die "pg_ctlcluster $pg_version main start failed"
    for _ in $(seq 1 50); do
        pg_isready -h 127.0.0.1 -p 5432 -q && break
        sleep 0.2
    done
    pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL did not come up on 127.0.0.1:5432"
    echo "PostgreSQL is up"
fi

export HUIFANG_KAMAILIO_PORT=${HUIFANG_KAMAILIO_PORT:-25060}
step "start Kamailio on 127.0.0.1:$HUIFANG_KAMAILIO_PORT (scripts/peers/kamailio.sh)"
stop_kamailio() {
    local rc=$?
    step "stop Kamailio"
    scripts/peers/kamailio.sh stop || true
    exit "$rc"
}
trap stop_kamailio EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# restart so that a Kamailio left running uses the current config
scripts/peers/kamailio.sh stop
scripts/peers/kamailio.sh start

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test $*"
cargo test "$@"
