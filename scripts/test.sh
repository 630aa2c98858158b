#!/usr/bin/env bash
# The project's single test command (also run by .ci/run):
# installs the test peers, checks the toolchain and services, starts the test
# Kamailio and the test S3 (Ceph RGW; both stopped again on exit, whatever
# happens), then runs
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
export HUIFANG_RGW_PORT=${HUIFANG_RGW_PORT:-7480}
stop_peers() {
    local rc=$?
    step "stop Ceph RGW"
    scripts/peers/ceph-rgw.sh stop || true
    step "stop Kamailio"
    scripts/peers/kamailio.sh stop || true
    exit "$rc"
}
trap stop_peers EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "start Kamailio on 127.0.0.1:$HUIFANG_KAMAILIO_PORT (scripts/peers/kamailio.sh)"
# restart so that a Kamailio left running uses the current config
scripts/peers/kamailio.sh stop
scripts/peers/kamailio.sh start

step "start Ceph RGW (S3 with Object Lock) on 127.0.0.1:$HUIFANG_RGW_PORT (scripts/peers/ceph-rgw.sh)"
# restart so that daemons left running use the current config; the cluster
# (buckets, the test user) is reused when healthy
scripts/peers/ceph-rgw.sh stop
scripts/peers/ceph-rgw.sh start
# the plain S3 test user (tests/peers/rgw-user.env), never the admin keyring
# shellcheck disable=SC1091
. tests/peers/rgw-user.env
export HUIFANG_S3_ENDPOINT=http://127.0.0.1:$HUIFANG_RGW_PORT
export HUIFANG_S3_ACCESS_KEY=$HUIFANG_RGW_ACCESS_KEY
export HUIFANG_S3_SECRET_KEY=$HUIFANG_RGW_SECRET_KEY

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test $*"
cargo test "$@"
