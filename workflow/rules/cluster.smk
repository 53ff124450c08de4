# Preflight for `--profile profiles/slurm` (executor slurm): before the first sbatch, check that
# this machine can submit, so that a run started off-cluster or with a wrong partition stops at
# once with the underlying message instead of failing silently later.
#
# Why not leave it to the plugin: for a group job (the profile groups evaluate),
# Snakemake 9.27 prints "Error in group ..." without the plugin's message, so sbatch's reason
# (e.g. "invalid partition specified") never reaches the user; and snakemake-executor-plugin-slurm
# 2.8 waits forever when a SLURM command is missing for a group job (its error handler reads
# `job.rule`, which group jobs lack). The checks run only in the main Snakemake process of a slurm
# run: not in dry runs, and not inside SLURM jobs (they skip hooks).

import shutil
import subprocess

from snakemake.exceptions import WorkflowError

SLURM_COMMANDS = ("sbatch", "squeue", "sinfo")


def check_slurm_reachable():
    """Raise WorkflowError when a slurm run cannot submit: commands missing or no controller."""
    missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
    if missing:
        raise WorkflowError(
            f"--executor slurm (profiles/slurm) needs the SLURM commands {', '.join(missing)} "
            "on PATH, and they are not there. Run Snakemake on a login node of the cluster "
            "(after e.g. `module load slurm`), or run locally without the profile: "
            "`snakemake --cores N`."
        )
    probe = subprocess.run(
        ["sinfo", "--noheader", "--format=%P"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if probe.returncode != 0:
        raise WorkflowError(
            "--executor slurm (profiles/slurm): `sinfo` cannot reach the SLURM controller; "
            f"its message was:\n{probe.stderr.strip()}"
        )


def check_slurm_submission(jobs):
    """Ask `sbatch --test-only` about every (partition, account) the jobs use; raise with its
    message, unchanged, when it refuses (unknown partition, account or combination)."""
    targets = set()
    for job in jobs:
        if job.is_local:
            continue
        partition = job.resources.get("slurm_partition") or ""
        account = job.resources.get("slurm_account") or ""
        targets.add((str(partition), str(account)))
    for partition, account in sorted(targets):
        command = ["sbatch", "--test-only", "--wrap", "true"]
        command += ["--partition", partition] if partition else []
        command += ["--account", account] if account else []
        probe = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if probe.returncode != 0:
            raise WorkflowError(
                f"--executor slurm (profiles/slurm): sbatch refuses partition "
                f"{partition or '(default)'!r}, account {account or '(none)'!r}; sbatch said:\n"
                f"{probe.stderr.strip()}\nSet slurm_partition / slurm_account in "
                "profiles/slurm/config.yaml (default-resources) or on the command line."
            )


onstart:
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.name == "slurm":
        check_slurm_reachable()
        check_slurm_submission(workflow.dag.needrun_jobs())
