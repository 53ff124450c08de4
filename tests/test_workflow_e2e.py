"""End to end: a tiny config (2 methods on a 3D and a 2D shape, 150 iterations) through the
whole DAG.

One run in a temporary folder checks the outputs (DESIGN 2 columns, one row per (method,
shape, seed), finite metrics, status ok, figures), that a second call has nothing to do, and
that the report builds; a killed run resumes from its batch checkpoint.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import ROOT, _python_path, job_counts, rule_counts, snakemake

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
        "per_dataset": {"demo2d": {"seeds": [0, 1], "snapshots": [0.5, 1.0]}},
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
METRICS_2D = ("chamfer", "hausdorff", "iou", "eikonal", "n_components", "spurious")
SEEDS = {"demo3d": [0], "demo2d": [0, 1]}


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
        assert sorted(zip(rows["method"], rows["shape"], rows["seed"], strict=True)) == [
            (m, shape, seed) for m in ("siren_wo_n", "steik") for seed in SEEDS[dataset]
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
            assert line["n_runs"] == len(SEEDS[dataset]) and line["n_failures"] == 0
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
        batch = workdir / "results" / "demo3d" / run / "batches" / "b"
        assert sorted(p.name for p in batch.iterdir()) == [
            "extract.json", "metrics.parquet", "snapshot_metrics.parquet", "train.json"
        ]  # the checkpoint is gone once the batch is trained
        log = pd.read_parquet(folder / "train_log.parquet")
        assert log["iteration"].max() == 149
        assert (workdir / "benchmarks" / "train" / "demo3d" / run / "b.tsv").is_file()
        assert (workdir / "logs" / "train" / "demo3d" / run / "b.log").is_file()
    snapshots = pd.read_parquet(workdir / "results" / "tables" / "demo2d_snapshots.parquet")
    assert len(snapshots) == 2 * 2 * 2  # methods x seeds x fractions (one shape)
    import matplotlib.image as mpimg

    for name in ("demo3d_renders", "demo3d_losses", "demo2d_levelsets", "demo2d_losses",
                 "demo2d_snapshots"):
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
    training has written its batch checkpoint; the rerun (rerun-incomplete from the default
    profile) resumes from it and completes every iteration."""
    import os
    import signal
    import subprocess
    import time

    from test_workflow import SNAKEMAKE

    config = {
        "datasets": ["demo3d"], "methods": ["steik"], "shapes": {"demo3d": ["sphere", "csg"]},
        "sample": {"defaults": {"n_points": 1000, "n_gt": 1000, "n_occ": 1000}},
        "train": {"overrides": [{"set": {
            "iterations": 300, "log_every": 10, "checkpoint_every": 20, "n_manifold": 200,
            "n_offsurface": 200, "hidden": 16, "layers": 2}}]},
        "figures": {"enabled": False},
    }  # fmt: skip
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["--cores", "1", "--configfile", str(path), "--profile",
            str(ROOT / "profiles" / "default"), "--until", "train"]  # fmt: skip
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), *args]
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path), **_python_path()}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    batch = tmp_path / "results" / "demo3d" / "steik" / "batches" / "b"
    deadline = time.monotonic() + 240
    while not (batch / "checkpoint.pt").exists() and time.monotonic() < deadline:
        assert process.poll() is None, "the workflow ended before writing a checkpoint"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=120)
    assert (batch / "checkpoint.pt").exists() and not (batch / "train.json").exists()
    result = snakemake(tmp_path, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "logs" / "train" / "demo3d" / "steik" / "b.log").read_text()
    assert log.startswith("resuming from ")
    for shape in ("sphere", "csg"):
        frame = pd.read_parquet(tmp_path / "results" / "demo3d" / "steik" / shape /
                                "train_log.parquet")  # fmt: skip
        assert list(frame["iteration"]) == [*range(0, 300, 10), 299]
    assert not (batch / "checkpoint.pt").exists() and (batch / "train.json").is_file()


@pytest.mark.slow
def test_a_batch_gives_the_rows_of_single_shape_jobs(tmp_path):
    """Three shapes trained as one batch (one train, extract and evaluate job per method) and as
    three single-shape batches give the same metrics rows, each naming its own shape.

    Tolerance: relative 1e-4. In float32 a K-batched matrix product may round differently from
    K = 1 ones (weights then differ by ~1e-7 relative after 40 steps at the presets' learning
    rate); at 10x that rate SIREN-type training is chaotic and such differences grow to percents
    within 40 steps, so the presets' rate is kept here.
    """
    config = {
        "datasets": ["demo3d"], "methods": ["siren_wo_n", "steik"],
        "shapes": {"demo3d": ["sphere", "grooved_box", "csg"]},
        "sample": {"defaults": {"n_points": 1000, "n_gt": 2000, "n_occ": 2000}},
        "train": {"overrides": [{"set": {"iterations": 40, "log_every": 10, "n_manifold": 300,
                                         "n_offsurface": 300, "hidden": 16, "layers": 2}}]},
        "extract": {"defaults": {"resolution": 32}},
        "evaluate": {"defaults": {"n_samples": 2000, "seed": 0}},
        "figures": {"enabled": False},
    }  # fmt: skip
    rows = {}
    for size in (3, 1):
        work = tmp_path / f"batch{size}"
        work.mkdir()
        path = work / "config.yaml"
        path.write_text(yaml.safe_dump({**config, "train": {**config["train"],
                                                             "batch_size": size}}))  # fmt: skip
        result = snakemake(work, "--cores", "2", "--configfile", str(path))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        counts = job_counts(result.stdout + result.stderr)
        assert counts["train"] == counts["evaluate"] == (2 if size == 3 else 6)
        frame = pd.read_parquet(work / "results" / "tables" / "demo3d.parquet")
        rows[size] = frame.set_index(["method", "shape"]).sort_index()
    batched, single = rows[3], rows[1]
    assert list(batched.index) == [(m, s) for m in ("siren_wo_n", "steik")
                                   for s in ("csg", "grooved_box", "sphere")]  # fmt: skip
    assert (batched["n_shapes_batch"] == 3).all() and (single["n_shapes_batch"] == 1).all()
    # Each row names its own shape: its source is that shape's generated mesh.
    assert all(batched.loc[key, "source"] == f"generated:{key[1]}" for key in batched.index)
    metrics = ["chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "chamfer_sq", "iou",
               "chamfer_l1", "normal_consistency", "fscore"]  # fmt: skip
    assert np.isfinite(batched.loc["siren_wo_n", metrics].to_numpy(float)).all()
    np.testing.assert_allclose(batched[metrics].to_numpy(float), single[metrics].to_numpy(float),
                               rtol=1e-4, atol=1e-7, equal_nan=True)  # fmt: skip
    same = ["seed", "structure", "n_params", "iterations", "status", "config_hash"]
    pd.testing.assert_frame_equal(batched[same], single[same])


@pytest.mark.slow
def test_the_spec11_baselines_and_poisson_run_through_the_workflow(tmp_path):
    """SAL, IGR (its own recipe), IGR+FF, PHASE+FF at tiny sizes and screened Poisson on a demo
    shape: every row finite, Poisson without a training job, its time in the runtime table."""
    config = {
        "datasets": ["demo3d"], "shapes": {"demo3d": ["sphere"]},
        "methods": ["igr_wo_n", "sal", "igr_ff", "phase_ff", "poisson"],
        "sample": {"defaults": {"n_points": 3000, "n_gt": 4000, "n_occ": 4000, "seed": 0}},
        "train": {"overrides": [
            {"set": {"iterations": 120, "log_every": 20, "n_manifold": 1000, "n_offsurface": 500,
                     "hidden": 32, "layers": 3, "skip_in": [2], "sal_pool_size": 20000}},
            {"methods": ["sal"], "set": {"skip_in": []}},
            {"methods": ["igr_ff", "phase_ff"], "set": {"fourier_features": 8}}]},
        "extract": {"defaults": {"resolution": 40}},
        "evaluate": {"defaults": {"n_samples": 4000, "seed": 0}},
        "poisson": {"depth": 6},
        "figures": {"enabled": True, "render_shapes": 1, "render_size": 96},
    }  # fmt: skip
    path = tmp_path / "baselines.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "2", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    assert counts["train"] == 4 and counts["reconstruct"] == 1 and counts["evaluate"] == 5
    rows = pd.read_parquet(tmp_path / "results" / "tables" / "demo3d.parquet").set_index("method")
    assert (rows["status"] == "ok").all(), rows[["status", "message"]]
    for metric in ("chamfer", "hausdorff", "chamfer_scan", "iou", "normal_consistency"):
        assert np.isfinite(rows[metric]).all(), metric
    assert rows.loc["poisson", "structure"] == "depth 6" and rows.loc["poisson", "n_params"] == 0
    assert rows.loc["igr_wo_n", "structure"] == "3 x 32"
    # Poisson on a smooth sphere: close to the ground truth and inside where the ball is.
    assert rows.loc["poisson", "chamfer"] < 0.02 and rows.loc["poisson", "iou"] > 0.95
    runtime = pd.read_parquet(tmp_path / "results" / "tables" / "runtime.parquet")
    poisson = runtime.set_index("method").loc["poisson"]
    assert np.isnan(poisson["ms_per_iter"]) and poisson["seconds_per_shape"] > 0
    assert (runtime.set_index("method").drop("poisson")["ms_per_iter"] > 0).all()
    assert "Screened Poisson" in (tmp_path / "results" / "tables" / "runtime.md").read_text()


@pytest.mark.slow
def test_folder_files_with_dashes_and_spaces_run_end_to_end(tmp_path):
    """`scan-01.ply` keeps its name; `my scan.ply` becomes shape `my_scan`, and the tables show
    its file beside it."""
    import trimesh

    scans = tmp_path / "my scans"
    scans.mkdir()
    trimesh.creation.icosphere(3).export(scans / "scan-01.ply")
    trimesh.creation.box().export(scans / "my scan.ply")
    config = {
        "datasets": [{"name": "mine", "kind": "folder", "path": str(scans), "pattern": "*.ply"}],
        "methods": ["siren_wo_n"],
        "sample": {"defaults": {"n_points": 1000, "n_gt": 2000, "n_occ": 2000}},
        "train": {"overrides": [{"set": {"iterations": 20, "n_manifold": 200, "n_offsurface": 200,
                                         "hidden": 16, "layers": 2}}]},
        "extract": {"defaults": {"resolution": 24}},
        "evaluate": {"defaults": {"n_samples": 1000}},
        "figures": {"enabled": True, "render_shapes": 2, "render_size": 64},
    }  # fmt: skip
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "2", "--configfile", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = pd.read_parquet(tmp_path / "results" / "tables" / "mine.parquet")
    assert sorted(rows["shape"]) == ["my_scan", "scan-01"]
    assert sorted(Path(s).name for s in rows["source"]) == ["my scan.ply", "scan-01.ply"]
    markdown = (tmp_path / "results" / "tables" / "mine.md").read_text()
    assert "my scan.ply" in markdown and "| file" in markdown
    assert (tmp_path / "results" / "mine" / "siren_wo_n" / "scan-01" / "mesh.ply").is_file()


def _ran(output: str) -> list[str]:
    """The rules of the jobs a real run started, in order."""
    import re

    return re.findall(r"^(?:local)?rule (\w+):", output, re.MULTILINE)


def _per_shape_files(workdir: Path) -> list[Path]:
    """model.pt, mesh.ply and metrics.parquet of every (dataset, run, shape) of TINY."""
    files = []
    for dataset, seeds in SEEDS.items():
        shape = TINY["shapes"][dataset][0]
        for method in TINY["methods"]:
            for seed in seeds:
                run = method if seed == 0 else f"{method}-seed{seed}"
                for name in ("model.pt", "mesh.ply", "metrics.parquet"):
                    files.append(workdir / "results" / dataset / run / shape / name)
    return files


@pytest.mark.slow
def test_summary_lists_every_per_shape_file(tiny_run):
    """Every per-shape file is a declared output: `--summary` lists each with its rule and
    `--delete-all-output` would delete it."""
    workdir, config = tiny_run
    result = snakemake(workdir, "--summary", "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split("\t")[0]: line.split("\t")[2] for line in result.stdout.splitlines()
            if "\t" in line}  # fmt: skip
    files = _per_shape_files(workdir)
    assert len(files) == 3 * 2 * (1 + 2)  # files x methods x (demo3d + demo2d's two seeds)
    stage = {"model.pt": "train", "mesh.ply": "extract", "metrics.parquet": "evaluate"}
    for path in files:
        relative = str(path.relative_to(workdir))
        assert path.is_file() and relative in rows, relative
        assert rows[relative].startswith(f"{stage[path.name]}_"), (relative, rows[relative])
    result = snakemake(workdir, "--delete-all-output", "--dry-run", "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert all(f"Would delete {path.relative_to(workdir)}\n" in output for path in files)
    assert all(path.is_file() for path in files)


@pytest.mark.slow
def test_deleted_models_and_samples_are_made_again(tiny_run):
    """After a full run, a deleted model.pt makes exactly its batch train again, and what reads
    that model or follows from it (extract and evaluate of that batch, the dataset's tables and
    figures, the runtime table), nothing else; a deleted sample file makes its batch sample
    again, then every run of that batch. Snakemake's own check of missing outputs finds them
    (the per-shape files are declared outputs); then nothing is left to do."""
    workdir, config = tiny_run
    results = workdir / "results" / "demo3d"
    model = results / "steik" / "sphere" / "model.pt"
    untouched = [path for path in _per_shape_files(workdir)
                 if "/demo2d/" in str(path) or "/siren_wo_n/" in str(path)]  # fmt: skip
    stamps = {path: path.stat().st_mtime_ns for path in untouched}
    model.unlink()
    expected = {"train_demo3d_steik_b": 1, "extract_demo3d_steik_b": 1,
                "evaluate_demo3d_steik_b": 1, "tables": 1, "runtime_table": 1, "renders": 1,
                "losses": 1, "all": 1}  # fmt: skip
    result = snakemake(workdir, "-n", "--configfile", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert rule_counts(output) == expected
    assert "Missing output files: results/demo3d/steik/sphere/model.pt" in output
    result = snakemake(workdir, "--cores", "2", "--configfile", str(config), timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert sorted(_ran(output)) == sorted(expected)
    assert model.is_file()
    assert {path: path.stat().st_mtime_ns for path in untouched} == stamps
    sample = results / "samples" / "sphere.npz"
    sample.unlink()
    result = snakemake(workdir, "-n", "--configfile", str(config))
    output = result.stdout + result.stderr
    counts = job_counts(output)
    assert counts["sample"] == 1 and counts["train"] == 2  # both methods of demo3d
    assert "fetch" not in counts and not any("demo2d" in rule for rule in rule_counts(output))
    result = snakemake(workdir, "--cores", "2", "--configfile", str(config), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert model.is_file() and sample.is_file()
    result = snakemake(workdir, "-n", "--configfile", str(config))
    assert "Nothing to be done" in result.stdout + result.stderr
