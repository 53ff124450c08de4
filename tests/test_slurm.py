"""The workflow on a real one-node SLURM cluster through `profiles/slurm` (issue 6).

The cluster is the one `.ci/slurm/start.sh` starts on localhost (no accounting database, so job
status comes from `squeue`). The main test runs a tiny demo config once through the profile and
once locally with `--cores`, and checks that every non-local job went through `sbatch` (SLURM's
own job records, not only Snakemake's log), that a batch of shapes is one SLURM job per stage,
and that both runs give the same metrics. The bad-input tests check that the plugin's messages
reach the user.

Tests marked `slurm` need the daemons: they use a running cluster, else start one (root with
apt-get), else skip with the reason; with STEIK_REQUIRE_SLURM=1 (set by .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import job_counts, rule_counts

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"
START = ROOT / ".ci" / "slurm" / "start.sh"
STOP = ROOT / ".ci" / "slurm" / "stop.sh"
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"

# Commands of SLURM's client and daemons, hidden to simulate a machine without SLURM.
SLURM_COMMANDS = (
    "sbatch srun salloc squeue sinfo sacct sacctmgr scontrol scancel sshare sstat sprio sreport "
    "sdiag strigger sattach sbcast scrontab sview slurmd slurmctld"
).split()

# Options that make the status loop of the plugin quick on the local cluster (as the CI profile
# of .ci/slurm/ci_profile.py does); on a real cluster the plugin's defaults are kept.
FAST_STATUS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]

# Metrics row columns that measure time, or the checkout's state at the moment a job ran (the
# git suffix of steik_version changes when the tree is edited during the test), not the result.
NOT_COMPARED = {"train_seconds", "ms_per_iter", "extract_seconds", "steik_version"}

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def _env(path: str | None = None) -> dict[str, str]:
    """Environment for a Snakemake run: the venv first on PATH (SLURM jobs inherit it)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{path if path is not None else env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _snakemake(args: list[str], cwd: Path, timeout: float, path: str | None = None):
    """Run snakemake; return the completed process (stdout and stderr merged)."""
    return subprocess.run(
        [str(SNAKEMAKE), *args],
        cwd=cwd,
        env=_env(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def _node_cpus_and_memory() -> tuple[int, int] | None:
    """(CPUs, RealMemory MB) of the idle node localhost, or None when the cluster is not up."""
    if shutil.which("sinfo") is None:
        return None
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-n", "localhost", "-o", "%T %c %m"],
            capture_output=True, text=True, timeout=20, check=False,
        ).stdout.split()
    except subprocess.TimeoutExpired:
        return None
    if len(out) != 3 or out[0] not in ("idle", "mixed"):
        return None
    return int(out[1]), int(out[2])


def _why_no_cluster() -> str | None:
    """Why this machine cannot run the test cluster, or None when it can."""
    if sys.platform != "linux":
        return "the SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "starting the SLURM daemons needs root (run as root or start .ci/slurm/start.sh)"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and apt-get is not available to install it"
    return None


@pytest.fixture(scope="session")
def slurm_node():
    """(CPUs, memory MB) of a running one-node cluster; starts it (and stops it) if needed."""
    node = _node_cpus_and_memory()
    if node is not None:
        yield node
        return
    reason = _why_no_cluster()
    if reason is not None:
        if os.environ.get("STEIK_REQUIRE_SLURM") == "1":
            pytest.fail(f"STEIK_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    started = subprocess.run(
        ["bash", str(START)], capture_output=True, text=True, timeout=600, check=False
    )
    assert started.returncode == 0, f"{START} failed:\n{started.stdout}\n{started.stderr}"
    try:
        node = _node_cpus_and_memory()
        assert node is not None, f"{START} returned but the node is not idle"
        yield node
    finally:
        subprocess.run(["bash", str(STOP)], capture_output=True, timeout=120, check=False)


def _ci_profile_module():
    """.ci/slurm/ci_profile.py, which writes the profile as the GPU-less test node can run it."""
    spec = importlib.util.spec_from_file_location("ci_profile", ROOT / ".ci/slurm/ci_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _slurm_jobs(run_id: str) -> list[dict[str, str]]:
    """SLURM's records of one Snakemake run's jobs (job name = run id): id, state, comment."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%T|%k"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        job_id, state, comment = line.strip().split("|", 2)
        rows.append({"id": job_id, "state": state, "comment": comment.strip()})
    return rows


# ------------------------------------------------------------------ the tiny demo config

SHAPES = {"demo3d": ["sphere", "csg"], "demo2d": ["circle"]}
METHODS = ["steik"]
N_RUNS = sum(len(shapes) for shapes in SHAPES.values()) * len(METHODS)
N_BATCHES = len(SHAPES) * len(METHODS)  # every dataset's shapes fit one batch


def _tiny_workdir(workdir: Path) -> list[str]:
    """Write the tiny config into `workdir`; return the snakemake arguments that run it there."""
    workdir.mkdir(parents=True)
    config = workdir / "config.yaml"
    tiny = _ci_profile_module().small_config(
        workdir / "results", workdir / "resources", SHAPES, METHODS
    )
    config.write_text(yaml.safe_dump(tiny))
    return ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config)]


def _start_tiny(workdir: Path, extra: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start the tiny config in `workdir` (its own results, resources, logs, .snakemake)."""
    args = _tiny_workdir(workdir)
    log = workdir / "snakemake.out"
    process = subprocess.Popen(
        [str(SNAKEMAKE), *args, *extra],
        cwd=workdir, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT, text=True,
    )
    return process, log


def _wait(process: subprocess.Popen, log: Path, timeout: float) -> str:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        pytest.fail(f"snakemake ran past {timeout} s:\n{log.read_text()[-4000:]}")
    text = log.read_text()
    assert process.returncode == 0, f"snakemake failed:\n{text[-6000:]}"
    return text


def _metrics(workdir: Path) -> pd.DataFrame:
    tables = workdir / "results" / "tables"
    rows = pd.concat([pd.read_parquet(tables / f"{dataset}.parquet") for dataset in SHAPES])
    return rows.sort_values(["dataset", "method", "shape"]).reset_index(drop=True)


@pytest.mark.slurm
@pytest.mark.slow
def test_demo_config_through_slurm_profile_matches_local_run(slurm_node, tmp_path):
    cpus, _ = slurm_node
    # The shipped profile with gpu: 0, requests capped to this node, squeue status (no sacct).
    profile = _ci_profile_module().write_ci_profile(tmp_path / "profile")

    # The local run shares the CPUs with the cluster's jobs; starting it first overlaps it with
    # the SLURM run's queueing and status polling.
    local, local_log = _start_tiny(tmp_path / "local", ["--cores", str(cpus)])
    cluster, cluster_log = _start_tiny(tmp_path / "slurm", ["--profile", str(profile)])
    try:
        cluster_text = _wait(cluster, cluster_log, timeout=600)
        _wait(local, local_log, timeout=600)
    finally:
        for process in (local, cluster):
            if process.poll() is None:
                process.kill()

    # Every non-local job went through sbatch: SLURM's own records (kept by MinJobAge) of this
    # run's jobs match what Snakemake planned, rule by rule, and all completed.
    run_id = RUN_ID.search(cluster_text).group(1)
    records = _slurm_jobs(run_id)
    submitted = dict(SUBMITTED.findall(cluster_text))
    assert sorted(r["id"] for r in records) == sorted(submitted.values())
    assert {r["state"] for r in records} == {"COMPLETED"}, records

    planned = rule_counts(cluster_text)
    local_rules = {"all", "fetch"}
    expected = Counter({rule: n for rule, n in planned.items() if rule not in local_rules})
    seen = Counter(
        record["comment"].removeprefix("rule_").split("_wildcards_")[0] for record in records
    )
    assert seen == expected
    # Training, extraction and evaluation ran once per batch (a rule per batch, named like
    # train_demo3d_steik_b): 3 shapes, 2 SLURM jobs each.
    stages = job_counts(cluster_text)
    for stage in ("train", "extract", "evaluate"):
        assert stages[stage] == N_BATCHES == 2 and N_RUNS == 3
    # Local rules ran in this process, nothing else did.
    ran_locally = re.findall(r"^local(?:rule|checkpoint) (\w+):", cluster_text, re.MULTILINE)
    assert "fetch" in ran_locally and set(ran_locally) <= local_rules

    # Results exist with status ok, and equal those of the local run (same seeds, CPU).
    on_slurm, on_host = _metrics(tmp_path / "slurm"), _metrics(tmp_path / "local")
    assert len(on_slurm) == N_RUNS
    assert (on_slurm["status"] == "ok").all(), on_slurm[["method", "shape", "status", "message"]]
    for dataset, shapes in SHAPES.items():
        for shape in shapes:
            for method in METHODS:
                assert (tmp_path / "slurm" / "results" / dataset / method / shape
                        / "metrics.parquet").is_file()
    assert list(on_slurm.columns) == list(on_host.columns)
    numeric = [c for c in on_slurm.columns
               if c not in NOT_COMPARED and pd.api.types.is_float_dtype(on_slurm[c])]
    assert {"chamfer", "hausdorff", "iou"} <= set(numeric)
    other = [c for c in on_slurm.columns if c not in NOT_COMPARED and c not in numeric]
    pd.testing.assert_frame_equal(on_slurm[other], on_host[other])
    np.testing.assert_allclose(
        on_slurm[numeric].to_numpy(float), on_host[numeric].to_numpy(float),
        rtol=1e-6, atol=1e-9, equal_nan=True,
    )


# ------------------------------------------------------------------ bad input


def _path_without(names: list[str], farm: Path) -> str:
    """A PATH with every command of the current PATH except `names` (symlinks in `farm`)."""
    farm.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for entry in Path(folder).iterdir():
            target = farm / entry.name
            if entry.name in names or target.exists() or not os.access(entry, os.X_OK):
                continue
            target.symlink_to(entry)
    return str(farm)


def test_no_slurm_commands_surfaces_the_plugin_message(tmp_path):
    """Off-cluster, the plugin's own error names the missing SLURM command; the run ends."""
    args = _tiny_workdir(tmp_path / "wf")
    path = _path_without(SLURM_COMMANDS, tmp_path / "bin")
    result = _snakemake([*args, "--profile", str(PROFILE.parent), *FAST_STATUS[2:]],
                        tmp_path / "wf", timeout=240, path=path)
    assert result.returncode != 0
    # The plugin guesses the account with sacct before it calls sbatch.
    assert re.search(r"Exception in run_job for rule sample_\w+: \[Errno 2\] No such file or "
                     r"directory: '(sacct|sinfo|sbatch)'", result.stdout), result.stdout[-3000:]
    assert "has been submitted with SLURM jobid" not in result.stdout
    assert not (tmp_path / "wf" / "results" / "demo2d" / "samples").exists()


@pytest.mark.slurm
def test_missing_sbatch_surfaces_the_plugin_message(slurm_node, tmp_path):
    args = _tiny_workdir(tmp_path / "wf")
    path = _path_without(["sbatch"], tmp_path / "bin")
    result = _snakemake([*args, "--profile", str(PROFILE.parent), *FAST_STATUS],
                        tmp_path / "wf", timeout=240, path=path)
    assert result.returncode != 0
    assert re.search(r"SLURM sbatch failed\. The error message was '\S*sh: (\d+: )?sbatch: "
                     r"(command )?not found'", result.stdout), result.stdout[-3000:]


@pytest.mark.slurm
def test_unknown_partition_surfaces_sbatch_message_unchanged(slurm_node, tmp_path):
    args = _tiny_workdir(tmp_path / "wf")
    result = _snakemake(
        [*args, "--profile", str(PROFILE.parent), *FAST_STATUS,
         "--default-resources", "slurm_partition=no_such_partition"],
        tmp_path / "wf", timeout=240,
    )
    assert result.returncode != 0
    assert (
        "SLURM sbatch failed. The error message was 'sbatch: error: invalid partition specified: "
        "no_such_partition\nsbatch: error: Batch job submission failed: Invalid partition name "
        "specified'"
    ) in result.stdout, result.stdout[-3000:]
    run_id = RUN_ID.search(result.stdout).group(1)
    assert _slurm_jobs(run_id) == []
