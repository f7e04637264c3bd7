#!/bin/sh
# Removes the live-gauge files (hookline_tasks_running, hookline_build_info)
# of processes that no longer exist from PROMETHEUS_MULTIPROC_DIR, as
# prometheus_client.multiprocess.mark_process_dead would have had the process
# ended cleanly. The units run it after every stop, crash or SIGKILL included,
# so a killed worker's running tasks do not stay in the sums.
set -eu
dir="${PROMETHEUS_MULTIPROC_DIR:?PROMETHEUS_MULTIPROC_DIR is not set}"
for file in "$dir"/gauge_live*_*.db; do
    [ -e "$file" ] || continue
    pid="${file##*_}"
    pid="${pid%.db}"
    [ -d "/proc/$pid" ] || rm -f -- "$file"
done
