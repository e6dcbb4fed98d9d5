#!/usr/bin/env bash
# A test's Debian packages, installed with apt-get when its commands are missing (as root),
# for `make test`'s set-up targets (slurm-setup, report-setup). It never fails `make test`:
# whatever it could not do is written to the status file, and the test skips with that reason.
# Nothing here starts a service (package scripts are kept from starting daemons).
# Usage: apt_setup.sh NAME STATUS_FILE "COMMANDS NEEDED" PACKAGE...
set -u
NAME=$1
STATUS=$2
NEEDED=$3
shift 3
PACKAGES="$*"
mkdir -p "$(dirname "$STATUS")"

missing() { for c in $NEEDED; do command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$c" >/dev/null 2>&1 || echo "$c"; done; }
report() { echo "$*" >"$STATUS"; echo "$NAME: $*"; }

[ -n "$(missing)" ] || { report "ok: $PACKAGES already installed"; exit 0; }
if [ "$(id -u)" != 0 ]; then
    report "not installed (missing: $(missing | xargs)); cannot install them: not root"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    report "not installed (missing: $(missing | xargs)); cannot install them: no apt-get"; exit 0
fi

POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod +x "$POLICY" && OWN_POLICY=1
fi
LOG=$(mktemp)
install() {
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
        $PACKAGES >>"$LOG" 2>&1
}
echo "$NAME: installing $PACKAGES with apt-get"
if ! install; then
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q >>"$LOG" 2>&1
    install
fi
rc=$?
[ -n "$OWN_POLICY" ] && rm -f "$POLICY"
if [ $rc -ne 0 ] || [ -n "$(missing)" ]; then
    report "apt-get install $PACKAGES failed (exit $rc; missing: $(missing | xargs)): $(tail -n 5 "$LOG" | tr '\n' ' ')"
else
    report "ok: installed $PACKAGES"
fi
rm -f "$LOG"
exit 0
