#!/usr/bin/env bash
# Test set-up for the report test (tests/test_workflow.py, test_report_reads_in_a_browser),
# run by `make test` before pytest (target report-setup): installs Debian's chromium when it
# is missing and this is root with apt. It never fails `make test`: whatever it could not do
# is written to the status file, and the test then skips with that reason.
exec bash "$(dirname "$0")/../apt_setup.sh" report-setup "${1:-build/report-setup.txt}" \
    chromium chromium
