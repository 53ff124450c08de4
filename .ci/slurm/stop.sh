#!/usr/bin/env bash
# Stop the test cluster started by start.sh: slurmd, slurmctld and munged, each by the pid it
# recorded. Cancels leftover jobs first. Safe to call when nothing runs.
set -uo pipefail

state=${STEIK_SLURM_DIR:-/var/tmp/steik-slurm}

stop_pid_file() {
    local name=$1 pid_file=$2 pid
    [ -s "$pid_file" ] || return 0
    pid=$(cat "$pid_file")
    if kill -0 "$pid" 2>/dev/null; then
        echo "[slurm-ci] stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "[slurm-ci] $name did not stop in 10s; sending SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file"
}

if [ -s "$state/slurmctld.pid" ] && kill -0 "$(cat "$state/slurmctld.pid")" 2>/dev/null; then
    scancel --user root >/dev/null 2>&1 || true
fi
stop_pid_file slurmd "$state/slurmd.pid"
stop_pid_file slurmctld "$state/slurmctld.pid"
stop_pid_file munged /run/munge/munged.pid
exit 0
