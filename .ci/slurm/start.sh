#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost for the workflow's cluster test (tests/test_slurm.py).
#
# Installs Debian's slurm-wlm daemons and munge when they are missing, writes a minimal
# /etc/slurm/slurm.conf (one node = this machine, CPUs and memory from `slurmd -C`, no accounting
# database), starts munged, slurmctld and slurmd, and waits until `sinfo` shows the node idle.
# Idempotent: a second call with the daemons up only re-checks the node. Stop with stop.sh,
# which kills the daemons by the pids recorded here.
#
# Needs root and apt-get (a Debian/Ubuntu CI machine). Refuses to touch a slurm.conf it did not
# write, so it cannot clobber a real cluster's configuration.
#
# Environment: STEIK_SLURM_DIR (state, logs, pid files; default /var/tmp/steik-slurm),
# STEIK_SLURM_WAIT (seconds to wait for the node, default 90).
set -euo pipefail

state=${STEIK_SLURM_DIR:-/var/tmp/steik-slurm}
wait_s=${STEIK_SLURM_WAIT:-90}
conf=/etc/slurm/slurm.conf
marker="# written by steik-pipeline .ci/slurm/start.sh"

log() { echo "[slurm-ci] $*"; }
die() { echo "[slurm-ci] error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- 1. packages ---------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || die "slurm is not installed and apt-get is not available"
    log "installing slurmctld slurmd slurm-client munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# --- 2. munge key and directories ----------------------------------------------------------
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# --- 3. slurm.conf -------------------------------------------------------------------------
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; refusing to overwrite a real cluster's configuration"
fi
mkdir -p "$state/ctld" "$state/d" /etc/slurm
# `slurmd -C` prints this machine's node line: CPUs, sockets/cores/threads and RealMemory (MB).
hw=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
[ -n "$hw" ] || die "slurmd -C did not report this machine's CPUs and memory"
tmp_conf=$(mktemp /etc/slurm/.slurm.conf.XXXXXX)
cat > "$tmp_conf" <<CONF
$marker
# A one-node test cluster on localhost. No accounting database: job state comes from slurmctld
# only, so MinJobAge keeps finished jobs visible to `squeue` for an hour (the Snakemake SLURM
# executor needs at least 3 x its first status-check delay to trust squeue).
ClusterName=steikci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
KillWait=10
NodeName=localhost NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
chmod 0644 "$tmp_conf"
if [ -e "$conf" ] && cmp -s "$tmp_conf" "$conf"; then
    rm -f "$tmp_conf"
else
    mv -f "$tmp_conf" "$conf"
    changed=1
fi

# --- 4. daemons ----------------------------------------------------------------------------
if ! alive /run/munge/munged.pid; then
    log "starting munged"
    runuser -u munge -- munged
fi
for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.2; done
munge -n | unmunge >/dev/null || die "munged does not answer (log: /var/log/munge/munged.log)"

if [ "${changed:-0}" = 1 ]; then
    # A new configuration: restart our daemons so that they read it.
    for d in slurmd slurmctld; do
        if alive "$state/$d.pid"; then
            log "restarting $d (slurm.conf changed)"
            kill "$(cat "$state/$d.pid")"
            for _ in $(seq 50); do alive "$state/$d.pid" || break; sleep 0.2; done
        fi
    done
fi
if ! alive "$state/slurmctld.pid"; then
    log "starting slurmctld (log: $state/slurmctld.log)"
    slurmctld -i
fi
if ! alive "$state/slurmd.pid"; then
    log "starting slurmd (log: $state/slurmd.log)"
    slurmd -N localhost
fi

# --- 5. wait for the node ------------------------------------------------------------------
node_state=""
for _ in $(seq "$wait_s"); do
    node_state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -n 1 || true)
    case "$node_state" in
        idle|mixed|allocated) break ;;
        down*|drain*)
            # A node that was down in saved state comes back with an explicit resume.
            scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 1
done
case "$node_state" in
    idle|mixed|allocated) ;;
    *) tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
       die "node localhost is '${node_state:-unknown}' after ${wait_s}s, not idle" ;;
esac
log "cluster up: $(sinfo -h -o '%P %D %T %c CPUs %m MB')"
