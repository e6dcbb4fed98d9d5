#!/usr/bin/env bash
# Test set-up for tests/test_slurm.py, run by `make test` before pytest (target slurm-setup):
# installs Debian's SLURM daemons and munge when they are missing and this is root with apt.
# It never fails `make test`: whatever it could not do is written to the status file, and the
# SLURM test then skips with that reason. The test starts and stops the daemons itself
# (tests/slurm/cluster.py); nothing here starts a service.
exec bash "$(dirname "$0")/../apt_setup.sh" slurm-setup "${1:-build/slurm-setup.txt}" \
    "slurmctld slurmd munged munge sbatch squeue sinfo scontrol scancel srun" \
    slurmctld slurmd slurm-client munge
