#!/usr/bin/env bash
# Install the real SIP peers huifang's integration tests run against (see
# shared PEERS.md): Kamailio (switch), baresip-core (softphone), SIPp (scripted
# UA), sox and espeak-ng (audio), and Ceph (mon, osd, radosgw: the real S3 with
# Object Lock, run by scripts/peers/ceph-rgw.sh), and Debian's Chromium,
# ChromeDriver and a CJK font (fonts-wqy-microhei) for the browser tests. Idempotent: installs only
# what is missing (a few dpkg-query calls when everything is there).
set -euo pipefail

PACKAGES=(kamailio baresip-core sip-tester sox espeak-ng ceph-mon ceph-osd radosgw ceph-common
    chromium chromium-driver fonts-wqy-microhei)
# Binaries the tests need, checked after the install.
BINARIES=(kamailio kamcmd baresip sipp sox espeak-ng
    ceph ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool
    chromium chromedriver)

log() { printf 'install-peers: %s\n' "$*"; }
die() { printf 'install-peers: ERROR: %s\n' "$*" >&2; exit 1; }

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    if is_installed "$p"; then
        log "$p already installed ($(dpkg-query -W -f='${Version}' "$p"))"
    else
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "need root to install: ${missing[*]}"
    fi
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install ${missing[*]} by hand"

    # The kamailio package's postinst runs `invoke-rc.d kamailio start`, which
    # would start a system Kamailio on 5060. A policy-rc.d that exits 101 makes
    # invoke-rc.d skip it. Only add one if the machine has none, and remove
    # only the one we added.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# added by huifang install-peers.sh during install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        added_policy=1
        # shellcheck disable=SC2064
        trap "rm -f '$policy'" EXIT
        log "temporarily added $policy so no packaged daemon starts"
    fi

    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
        || die "apt-get update failed"
    log "installing: ${missing[*]}"
    start=$(date +%s)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}"; then
        die "apt-get install ${missing[*]} failed"
    fi
    log "installed ${missing[*]} in $(($(date +%s) - start)) s"
    if [ "$added_policy" -eq 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    for p in "${missing[@]}"; do
        is_installed "$p" || die "$p is still not installed after apt-get install"
        log "$p $(dpkg-query -W -f='${Version}' "$p")"
    done
else
    log "nothing to install"
fi

for b in "${BINARIES[@]}"; do
    command -v "$b" >/dev/null 2>&1 || die "$b not found on PATH after install"
done
log "peers ready: ${BINARIES[*]}"
