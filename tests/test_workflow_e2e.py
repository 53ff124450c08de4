"""End to end: a tiny config (2 shapes x 2 methods, 150 iterations) through the whole DAG.

One run in a temporary folder checks the outputs (DESIGN 2 columns, one row per (method,
shape), finite metrics, status ok, figures), that a second call has nothing to do, and that
the report builds.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import ROOT, job_counts, snakemake

from steik.tables import ROW_COLUMNS

TINY = {
    "datasets": ["demo3d", "demo2d"],
    "methods": ["siren_wo_n", "steik"],
    "shapes": {"demo3d": ["sphere"], "demo2d": ["circle"]},
    "sample": {
        "defaults": {"n_points": 2000, "n_gt": 4000, "n_occ": 4000, "seed": 0},
        "per_dataset": {"demo2d": {"n_points": 400, "n_gt": 2000, "n_occ": 4096, "seed": 0}},
    },
    "train": {
        "overrides": [
            # lr 10x the presets': the sphere-initialised networks must reach the shapes in a
            # few iterations for every run to have a surface (status ok).
            {"set": {"iterations": 150, "lr": 1e-3, "log_every": 10, "checkpoint_every": 50,
                     "n_manifold": 400, "n_offsurface": 400}},
            {"neurons": ["linear"], "set": {"hidden": 32, "layers": 2}},
            {"neurons": ["quadratic"], "set": {"hidden": 16, "layers": 2}},
        ],
    },
    "extract": {"defaults": {"resolution": 32}, "per_dataset": {"demo2d": {"resolution": 64}}},
    "evaluate": {"defaults": {"n_samples": 2000, "seed": 0}},
    "figures": {"enabled": True, "render_shapes": 1, "render_size": 96},
}

# Metrics that apply to a ground-truth mesh (demo3d) and to an exact 2D curve (demo2d).
METRICS_3D = ("chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "chamfer_sq", "iou",
              "chamfer_l1", "normal_consistency", "fscore")
METRICS_2D = ("chamfer", "hausdorff", "chamfer_sq", "chamfer_l1", "iou")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    config = workdir / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = snakemake(workdir, "--cores", "2", "--configfile", str(config), "--profile",
                       str(ROOT / "profiles" / "default"), timeout=850)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir, config


@pytest.mark.slow
def test_tables_have_one_ok_row_per_method_and_shape(tiny_run):
    workdir, _ = tiny_run
    for dataset, metrics in (("demo3d", METRICS_3D), ("demo2d", METRICS_2D)):
        rows = pd.read_parquet(workdir / "results" / "tables" / f"{dataset}.parquet")
        assert list(rows.columns) == list(ROW_COLUMNS)
        shape = TINY["shapes"][dataset][0]
        assert sorted(zip(rows["method"], rows["shape"], strict=True)) == [
            ("siren_wo_n", shape), ("steik", shape)
        ]
        assert (rows["status"] == "ok").all(), rows[["method", "status", "message"]]
        assert (rows["dataset"] == dataset).all()
        for metric in metrics:
            assert np.isfinite(rows[metric]).all(), (dataset, metric)
        # Provenance from evaluate: non-empty version strings and config hash, iterations done.
        for column in ("config_hash", "steik_version", "torch_version", "device"):
            assert rows[column].astype(str).str.len().gt(0).all(), column
        assert (rows["iterations"] == 150).all()
        assert (rows["n_points"] == 800).all()
        structures = dict(zip(rows["method"], rows["structure"], strict=True))
        assert structures == {"siren_wo_n": "2 x 32", "steik": "2 x 16"}
        summary = pd.read_parquet(workdir / "results" / "tables" / f"{dataset}_summary.parquet")
        for method, group in rows.groupby("method"):
            line = summary.set_index("method").loc[method]
            assert line["n_shapes"] == 1 and line["n_failures"] == 0
            assert math.isclose(line["chamfer_mean"], group["chamfer"].mean())
    runtime = pd.read_parquet(workdir / "results" / "tables" / "runtime.parquet")
    assert set(runtime["method"]) == {"siren_wo_n", "steik"}
    assert runtime["ms_per_iter"].gt(0).all()


@pytest.mark.slow
def test_outputs_logs_and_figures(tiny_run):
    workdir, _ = tiny_run
    for run in ("siren_wo_n", "steik"):
        folder = workdir / "results" / "demo3d" / run / "sphere"
        for name in ("model.pt", "train_log.parquet", "mesh.ply", "mesh.json", "metrics.parquet"):
            assert (folder / name).is_file(), folder / name
        assert not (folder / "checkpoint.pt").exists()
        log = pd.read_parquet(folder / "train_log.parquet")
        assert log["iteration"].max() == 149
        assert (workdir / "benchmarks" / "train" / "demo3d" / run / "sphere.tsv").is_file()
        assert (workdir / "logs" / "train" / "demo3d" / run / "sphere.log").is_file()
    import matplotlib.image as mpimg

    for name in ("demo3d_renders", "demo3d_losses", "demo2d_levelsets", "demo2d_losses"):
        image = mpimg.imread(workdir / "results" / "figures" / f"{name}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100
        assert image[..., :3].std() > 0.02, name  # not blank


@pytest.mark.slow
def test_rerun_is_a_noop_and_report_builds(tiny_run):
    workdir, config = tiny_run
    result = snakemake(workdir, "-n", "--configfile", str(config))
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr
    with pytest.raises(IndexError):
        job_counts(result.stdout + result.stderr)
    report = workdir / "results" / "report.zip"
    result = snakemake(workdir, "--configfile", str(config), "--report", str(report))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
    for expected in ("demo3d.html", "demo2d_levelsets.png", "demo3d_renders.png", "runtime.html"):
        assert any(name.endswith(expected) for name in names), expected


@pytest.mark.slow
def test_killed_training_resumes_from_checkpoint(tmp_path):
    """Stop the workflow (SIGTERM to its process group, as a scheduler's preemption does) once
    training has written a checkpoint; the rerun (rerun-incomplete from the default profile)
    resumes from it and completes every iteration."""
    import os
    import signal
    import subprocess
    import time

    from test_workflow import SNAKEMAKE

    config = {
        "datasets": ["demo3d"], "methods": ["steik"], "shapes": {"demo3d": ["sphere"]},
        "sample": {"defaults": {"n_points": 1000, "n_gt": 1000, "n_occ": 1000}},
        "train": {"overrides": [{"set": {
            "iterations": 300, "log_every": 10, "checkpoint_every": 20, "n_manifold": 200,
            "n_offsurface": 200, "hidden": 16, "layers": 2}}]},
        "figures": {"enabled": False},
    }
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["--cores", "1", "--configfile", str(path), "--profile",
            str(ROOT / "profiles" / "default"), "--until", "train"]
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), *args]
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
           "HOME": str(tmp_path)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "results" / "demo3d" / "steik" / "sphere"
    deadline = time.monotonic() + 240
    while not (folder / "checkpoint.pt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the workflow ended before writing a checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=120)
    assert (folder / "checkpoint.pt").exists() and not (folder / "model.pt").exists()
    result = snakemake(tmp_path, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "train" / "demo3d" / "steik" / "sphere.log").read_text()
    assert log.startswith("resuming from ")
    frame = pd.read_parquet(folder / "train_log.parquet")
    assert list(frame["iteration"]) == [*range(0, 300, 10), 299]
    assert not (folder / "checkpoint.pt").exists()
