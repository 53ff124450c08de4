"""Batch checkpoints survive a kill -9 at any moment of any write, and a changed configuration
after a kill starts over with one warning instead of blocking the rerun.

Each kill happens in a real `steik train` process: a small driver replaces `os.replace` (the
rename that completes every atomic write) and `torch.save` so that the process SIGKILLs itself at
the chosen moment; the rerun is the command the workflow runs (`--resume-if-compatible`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_sphere_sample

DRIVER = """
import io, os, signal, sys
import torch
target, phase, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = {"replace": 0, "save": 0}
real_replace, real_save = os.replace, torch.save

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst):
    if os.path.basename(str(dst)) == target:
        seen["replace"] += 1
        if seen["replace"] == count and phase == "before-rename":
            die()
        real_replace(src, dst)
        if seen["replace"] == count and phase == "after-rename":
            die()
        return
    real_replace(src, dst)

def save(obj, f, *args, **kwargs):
    if phase == "mid-write" and ".tmp" in str(f) and target.split(".")[0] in str(f):
        seen["save"] += 1
        if seen["save"] == count:
            buffer = io.BytesIO()
            real_save(obj, buffer)
            with open(f, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            die()
    real_save(obj, f, *args, **kwargs)

os.replace, torch.save = replace, save
from steik.cli import main
sys.exit(main(sys.argv[4:]))
"""

OVERRIDES = ('{"iterations": 12, "checkpoint_every": 4, "log_every": 2, "hidden": 8, '
             '"layers": 2, "n_manifold": 64, "n_offsurface": 64}')  # fmt: skip


def _train_args(samples: list[Path], out: Path, overrides: str = OVERRIDES) -> list[str]:
    return ["train", "--points", *map(str, samples), "--method", "steik", "--experiment", "srb",
            "--out", str(out), "--checkpoint", str(out / "batch" / "checkpoint.pt"),
            "--record", str(out / "batch" / "train.json"), "--resume-if-compatible",
            "--device", "cpu", "--overrides", overrides]  # fmt: skip


def _run(args: list[str], kill: tuple[str, str, int] | None = None):
    """`steik ARGS` in a fresh process, killed at `kill` = (file name, phase, n-th write)."""
    if kill is None:
        command = [sys.executable, "-m", "steik", *args]
    else:
        command = [sys.executable, "-c", DRIVER, kill[0], kill[1], str(kill[2]), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})  # fmt: skip


def _weights(out: Path, shape: str) -> dict[str, torch.Tensor]:
    return torch.load(out / shape / "model.pt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Two sample files and the models of an uninterrupted run of both as one batch."""
    root = tmp_path_factory.mktemp("ckpt")
    samples = [write_sphere_sample(root / f"s{i}.npz", n=200, radius=0.5 + 0.2 * i, seed=i)
               for i in range(2)]  # fmt: skip
    result = _run(_train_args(samples, root / "straight"))
    assert result.returncode == 0, result.stderr
    return root, samples


KILLS = [
    ("checkpoint.pt", "mid-write", 2),  # half-written temporary file of the 2nd checkpoint
    ("checkpoint.pt", "before-rename", 2),  # 2nd checkpoint complete but not yet in place
    ("checkpoint.pt", "after-rename", 2),  # 2nd checkpoint in place, training not yet on
    ("checkpoint.pt", "after-rename", 3),  # the last checkpoint (before the outputs)
    ("model.pt", "after-rename", 1),  # one shape's model written, the other's not
    ("train_log.parquet", "before-rename", 2),  # second shape's log not in place
    ("train.json", "after-rename", 1),  # record written, checkpoint not yet removed
]


@pytest.mark.parametrize(("target", "phase", "count"), KILLS)
def test_kill_9_at_any_write_resumes_to_the_same_weights(batch, tmp_path, target, phase, count):
    root, samples = batch
    out = tmp_path / "run"
    killed = _run(_train_args(samples, out), kill=(target, phase, count))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = _run(_train_args(samples, out))
    assert resumed.returncode == 0, resumed.stderr
    assert "does not fit" not in resumed.stderr  # the checkpoint was usable: no start over
    for shape in ("s0", "s1"):
        a, b = _weights(root / "straight", shape), _weights(out, shape)
        assert all(torch.equal(a[n], b[n]) for n in a), (shape, target, phase)
    assert (out / "batch" / "train.json").is_file()
    assert not (out / "batch" / "checkpoint.pt").exists()
    leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_changed_config_after_a_kill_starts_over_with_one_warning(batch, tmp_path):
    _, samples = batch
    out = tmp_path / "run"
    killed = _run(_train_args(samples, out), kill=("checkpoint.pt", "after-rename", 2))
    assert killed.returncode == -signal.SIGKILL
    changed = OVERRIDES.replace('"hidden": 8', '"hidden": 12')
    rerun = _run(_train_args(samples, out, changed))
    assert rerun.returncode == 0, rerun.stderr
    warnings = [line for line in rerun.stderr.splitlines() if "does not fit this run" in line]
    assert len(warnings) == 1 and "config_digest differs" in warnings[0]
    assert (out / "batch" / "checkpoint.incompatible.pt").is_file()
    # Trained from scratch with the new setting: the same weights as a fresh run of it.
    fresh = _run(_train_args(samples, tmp_path / "fresh", changed))
    assert fresh.returncode == 0, fresh.stderr
    for shape in ("s0", "s1"):
        a, b = _weights(tmp_path / "fresh", shape), _weights(out, shape)
        assert a["layers.0.weight12"].shape[1] == 2 * 12
        assert all(torch.equal(a[n], b[n]) for n in a)


def test_strict_resume_refuses_a_checkpoint_of_another_batch(batch, tmp_path):
    """`--resume` (no fallback) names the difference: here the batch's shapes."""
    _, samples = batch
    out = tmp_path / "run"
    killed = _run(_train_args(samples, out), kill=("checkpoint.pt", "after-rename", 1))
    assert killed.returncode == -signal.SIGKILL
    args = _train_args(samples[:1], out)
    args[args.index("--resume-if-compatible")] = "--resume"
    refused = _run(args)
    assert refused.returncode == 2
    assert "checkpoint is from another run (shapes differs" in refused.stderr
    assert refused.stderr.count("\n") == 1
