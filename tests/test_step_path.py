"""The training step's derivative path as a method field: chosen by `step` (command line or
workflow config, no environment variable), resolved from `auto` as documented, recorded in
model.pt and in the metrics row."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import trimesh
import yaml
from test_workflow import _overrides_of, snakemake, train_commands

from steik import evaluate as ev
from steik import mesh
from steik.cli import main
from steik.data.sample import Sample, SampleConfig, sample_mesh, write_sample
from steik.derivatives import COMPILE_MIN_WORK, resolve_step
from steik.errors import SteikError
from steik.methods import STEPS, preset
from steik.model import build_network, load_model
from steik.poisson import PoissonConfig, reconstruct_file
from steik.rows import ROW_COLUMNS
from steik.trainer import Trainer, read_shape

TINY = {"hidden": 16, "layers": 2, "iterations": 3, "n_manifold": 128, "n_offsurface": 128,
        "sphere_radius": 0.5, "checkpoint_every": 0, "log_every": 1}  # fmt: skip
"""A method small enough to train in a second (sphere radius 0.5: a surface inside the box)."""


@pytest.fixture(scope="module")
def ball(tmp_path_factory):
    """A sample of a ball with ground truth, as `steik sample` writes one."""
    folder = tmp_path_factory.mktemp("ball")
    solid = trimesh.creation.icosphere(3, radius=2.0).apply_translation([5.0, 1.0, -2.0])
    arrays = sample_mesh(solid, SampleConfig(n_points=2000, n_gt=5000, n_occ=5000))
    sample = Sample(dataset="demo", shape="ball", ground_truth="mesh", source="generated:ball",
                    source_sha256="0" * 64, **arrays)  # fmt: skip
    return write_sample(folder / "ball.npz", sample), folder


def _train(sample, out, overrides: dict, method: str = "steik") -> int:
    """`steik train` of one shape with `--overrides JSON`; its exit status."""
    return main(["train", "--points", str(sample), "--method", method, "--experiment", "srb",
                 "--out", str(out), "--quiet", "--overrides", json.dumps(overrides)])  # fmt: skip


def _meta(model) -> dict:
    return torch.load(model, weights_only=False, map_location="cpu")


def _row(model, sample, folder) -> dict:
    """The metrics row of a model: its surface at a coarse grid, then `evaluate`."""
    network, _ = load_model(model)
    data = np.load(sample)
    result = mesh.extract_surface(
        network, data["points"], data["center"], float(data["scale"]), mesh.ExtractionConfig(24)
    )
    path = folder / "mesh.ply"
    mesh.write_surface(path, result)
    return ev.evaluate(path, model, sample, ev.EvaluationConfig(n_samples=2000))


@pytest.fixture(scope="module")
def trained(ball):
    """Models of the same method trained with `step` left at auto and set to autograd."""
    sample, folder = ball
    models = {}
    for name, extra in (("auto", {}), ("autograd", {"step": "autograd"})):
        assert _train(sample, folder / name, {**TINY, **extra}) == 0
        models[name] = folder / name / "ball" / "model.pt"
    return models


def test_model_file_and_metrics_row_record_the_path(trained, ball, tmp_path):
    sample, _ = ball
    # auto: a covered network and a short run take the explicit path
    assert _meta(trained["auto"])["step"] == "explicit"
    assert _meta(trained["auto"])["config"]["step"] == "auto"
    # the override alone, no environment variable, changes the path
    assert _meta(trained["autograd"])["step"] == "autograd"
    assert _meta(trained["autograd"])["config"]["step"] == "autograd"
    for name, path in (("explicit", "auto"), ("autograd", "autograd")):
        folder = tmp_path / name
        folder.mkdir()
        row = _row(trained[path], sample, folder)
        assert row["step"] == name and list(row) == list(ROW_COLUMNS)


def test_rows_without_a_recorded_path_have_none(trained, ball, tmp_path):
    """A model file from before the field, and screened Poisson (no network): step is None."""
    sample, _ = ball
    payload = _meta(trained["auto"])
    del payload["step"]
    old = tmp_path / "old" / "model.pt"
    old.parent.mkdir()
    torch.save(payload, old)
    assert _row(old, sample, old.parent)["step"] is None
    poisson = tmp_path / "poisson" / "mesh.ply"
    reconstruct_file(sample, poisson, PoissonConfig(depth=5, trim_quantile=0.0))
    row = ev.evaluate(poisson, None, sample, ev.EvaluationConfig(n_samples=2000))
    assert row["method"] == "poisson" and row["step"] is None


def test_auto_resolves_as_documented(ball):
    """Explicit for covered networks, compiled from COMPILE_MIN_WORK iterations x points on,
    autograd for networks the explicit passes do not cover and for the SPEC 11 objectives."""
    net = build_network(preset("steik", "srb", **TINY), 3)
    assert resolve_step(preset("steik", "srb", **TINY), net) == "explicit"
    points = int(COMPILE_MIN_WORK // 1000 // 2)
    long = preset("steik", "srb", **{**TINY, "iterations": 1000, "n_manifold": points,
                                     "n_offsurface": points})  # fmt: skip
    assert resolve_step(long, net) == "compiled"
    relu = preset("digs", "srb", **TINY, activation="relu")
    assert resolve_step(relu, build_network(relu, 3)) == "autograd"
    for method in ("igr_wo_n", "sal", "igr_ff", "phase_ff"):
        config = preset(method, "srb", hidden=16, layers=4, iterations=2)
        trainer = Trainer([read_shape(ball[0])], config, ball[1] / method)
        assert trainer.step_path == "autograd", method
        assert trainer.model_meta(0).step == "autograd"


def test_unknown_or_impossible_paths_fail_clearly(ball, tmp_path, capsys):
    with pytest.raises(SteikError) as error:
        preset("steik", "srb", step="fast")
    expected = f"step = 'fast' is not valid; choose one of {', '.join(STEPS)}"
    assert str(error.value).endswith(expected)
    sample, _ = ball
    assert _train(sample, tmp_path / "fast", {**TINY, "step": "fast"}) != 0
    assert "step = 'fast' is not valid; choose one of auto, explicit" in capsys.readouterr().err
    # the explicit passes do not cover IGR's objective: said before training starts
    igr = {"hidden": 16, "layers": 4, "iterations": 2, "step": "explicit"}
    assert _train(sample, tmp_path / "igr", igr, method="igr_wo_n") != 0
    err = capsys.readouterr().err
    assert "step = 'explicit' needs SPEC 3's loss" in err and "set step to auto or autograd" in err
    assert not (tmp_path / "igr" / "ball" / "model.pt").exists()


def test_default_step_keeps_every_digest():
    """Left at auto, the field is not part of a configuration's digest: the presets keep the
    digests they had before it existed (checkpoints and tables compare them)."""
    before = {
        ("steik", "srb"): "62709c6d7111",
        ("digs", "2d"): "1679ecfc7895",
        ("igr_wo_n", "srb"): "c8ae1c6eb856",
        ("siren_wo_n", "shapenet"): "991cdd193d43",
    }
    for (method, experiment), digest in before.items():
        assert preset(method, experiment).digest() == digest
        assert preset(method, experiment, step="auto").digest() == digest
    assert preset("steik", "srb", step="autograd").digest() != before[("steik", "srb")]


@pytest.mark.slow
def test_workflow_overrides_choose_the_path(ball, tmp_path):
    """`train.overrides` of a workflow config reaches `steik train --overrides` for the methods it
    names, and that command line trains on the path it sets."""
    config = {
        "datasets": ["demo3d"],
        "methods": ["siren_wo_n", "steik"],
        "shapes": {"demo3d": ["sphere"]},
        "train": {
            "overrides": [{"set": TINY}, {"methods": ["steik"], "set": {"step": "autograd"}}]
        },
    }
    path = tmp_path / "step.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    overrides = {
        line.split("--method ")[1].split()[0]: _overrides_of(line)
        for line in train_commands(result.stdout)
    }
    assert overrides["steik"]["step"] == "autograd" and "step" not in overrides["siren_wo_n"]
    sample, _ = ball
    for method, expected in (("steik", "autograd"), ("siren_wo_n", "explicit")):
        out = tmp_path / "runs" / method
        assert _train(sample, out, overrides[method], method=method) == 0
        assert _meta(out / "ball" / "model.pt")["step"] == expected
