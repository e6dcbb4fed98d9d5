#!/usr/bin/env bash
# Test set-up for tests/test_slurm.py, run by `make test` before pytest (target slurm-setup):
# installs Debian's SLURM daemons and munge when they are missing and this is root with apt.
# It never fails `make test`: whatever it could not do is written to the status file, and the
# SLURM test then skips with that reason. The test starts and stops the daemons itself
# (tests/slurm/cluster.py); nothing here starts a service.
set -u
STATUS=${1:-build/slurm-setup.txt}
mkdir -p "$(dirname "$STATUS")"
NEEDED="slurmctld slurmd munged munge sbatch squeue sinfo scontrol scancel srun"
PACKAGES="slurmctld slurmd slurm-client munge"

missing() { for c in $NEEDED; do command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$c" >/dev/null 2>&1 || echo "$c"; done; }
report() { echo "$*" >"$STATUS"; echo "slurm-setup: $*"; }

[ -n "$(missing)" ] || { report "ok: SLURM and munge already installed"; exit 0; }
if [ "$(id -u)" != 0 ]; then
    report "not installed (missing: $(missing | xargs)); cannot install them: not root"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    report "not installed (missing: $(missing | xargs)); cannot install them: no apt-get"; exit 0
fi

# Keep package scripts from starting the daemons (the test runs its own, on loopback).
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
echo "slurm-setup: installing $PACKAGES with apt-get"
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
