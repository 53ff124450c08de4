"""The training loop: K-batch independence, divergence freezing, resume, bad input, convergence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_sphere_sample

from steik.cli import main
from steik.methods import preset
from steik.model import load_model
from steik.train import Trainer, train

LOG_COLUMNS = ["iteration", "loss", "sdf", "inter", "normal", "eikonal", "div", "w_sdf", "w_inter",
               "w_normal", "w_eikonal", "w_div", "lr", "seconds"]  # fmt: skip
TINY = dict(hidden=16, layers=2, n_manifold=200, n_offsurface=200, log_every=5, lr=1e-3)


def _weights(out: Path, shape: str) -> dict[str, torch.Tensor]:
    return torch.load(out / shape / "model.pt", weights_only=True)["state_dict"]


def _force_divergence(monkeypatch, victim: str, at: int) -> None:
    """Make `victim`'s manifold points non-finite from iteration `at` on, in any batch."""
    original = Trainer._sample

    def sample(self):
        batch = original(self)
        for k, shape in enumerate(self.shapes):
            if shape.name == victim and self.iteration >= at:
                batch["manifold"][k, 0, 0] = math.nan
        return batch

    monkeypatch.setattr(Trainer, "_sample", sample)


@pytest.mark.parametrize("diverge", [False, True])
def test_batch_equals_single_runs_float64(tmp_path, monkeypatch, diverge):
    paths = [
        write_sphere_sample(tmp_path / f"s{i}.npz", n=300 + 50 * i, radius=0.5 + 0.1 * i, seed=i)
        for i in range(3)
    ]
    if diverge:
        _force_divergence(monkeypatch, "s1", at=7)
    config = preset("steik", "srb", iterations=20, **TINY)
    metas = train(paths, config, tmp_path / "batch", seed=5, dtype=torch.float64, quiet=True)
    for i, path in enumerate(paths):
        train([path], config, tmp_path / f"single{i}", seed=5, dtype=torch.float64, quiet=True)
        a, b = _weights(tmp_path / "batch", f"s{i}"), _weights(tmp_path / f"single{i}", f"s{i}")
        # float32 in the file, float64 training: compare what training computed
        for name in a:
            assert (a[name] - b[name]).abs().max().item() < 1e-10, (i, name)
    statuses = [m.status for m in metas]
    assert statuses == (["ok", "diverged", "ok"] if diverge else ["ok"] * 3)
    if diverge:
        assert "iteration 7" in metas[1].message and "last finite loss" in metas[1].message
        # the frozen shape kept its last finite weights: they differ from the ones after 20 its
        assert all(torch.isfinite(t).all() for t in _weights(tmp_path / "batch", "s1").values())
        assert metas[0].iterations == 20


def test_frozen_shape_stops_changing(tmp_path, monkeypatch):
    path = write_sphere_sample(tmp_path / "a.npz", n=300)
    _force_divergence(monkeypatch, "a", at=4)
    # a constant schedule, so that the first 4 iterations of both runs are the same
    config = preset("steik", "srb", iterations=4, schedule="none", **TINY)
    train([path], config, tmp_path / "four", seed=1, quiet=True)
    config = preset("steik", "srb", iterations=30, schedule="none", **TINY)
    meta = train([path], config, tmp_path / "thirty", seed=1, quiet=True)[0]
    assert meta.status == "diverged"
    for name, value in _weights(tmp_path / "four", "a").items():
        assert torch.equal(value, _weights(tmp_path / "thirty", "a")[name])


def test_resume_is_bit_identical(tmp_path, monkeypatch):
    path = write_sphere_sample(tmp_path / "shape.npz", n=500)
    config = preset("digs", "srb", iterations=24, checkpoint_every=8, **TINY)
    train([path], config, tmp_path / "straight", seed=3, quiet=True)

    original = Trainer.step

    def interrupted(self):
        if self.iteration == 13:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train([path], config, tmp_path / "resumed", seed=3, quiet=True)
    assert (tmp_path / "resumed/shape/checkpoint.pt").is_file()
    assert not (tmp_path / "resumed/shape/model.pt").exists()
    monkeypatch.setattr(Trainer, "step", original)
    train([path], config, tmp_path / "resumed", seed=3, resume="always", quiet=True)
    a, b = _weights(tmp_path / "straight", "shape"), _weights(tmp_path / "resumed", "shape")
    assert all(torch.equal(a[n], b[n]) for n in a)
    log_a = pd.read_parquet(tmp_path / "straight/shape/train_log.parquet")
    log_b = pd.read_parquet(tmp_path / "resumed/shape/train_log.parquet")
    assert list(log_a.columns) == list(LOG_COLUMNS)
    pd.testing.assert_series_equal(log_a["loss"], log_b["loss"])
    assert list(log_a["iteration"]) == [0, 5, 10, 15, 20, 23]
    assert not (tmp_path / "resumed/shape/checkpoint.pt").exists()


def test_log_records_schedule_and_terms(tmp_path):
    path = write_sphere_sample(tmp_path / "s.npz", n=300)
    config = preset("steik", "srb", iterations=20, **TINY)
    train([path], config, tmp_path / "o", quiet=True)
    log = pd.read_parquet(tmp_path / "o/s/train_log.parquet")
    # SRB schedule: 100 until 20%, linear to 0 at 40% (75 at 25%), then 0, where the
    # divergence is no longer evaluated
    assert log.set_index("iteration")["w_div"].to_dict() == pytest.approx(
        {0: 100, 5: 75, 10: 0, 15: 0, 19: 0}
    )
    assert (
        np.isfinite(log.loc[log.w_div > 0, "div"]).all()
        and log.loc[log.w_div == 0, "div"].isna().all()
    )
    expected = sum(
        log[f"w_{t}"] * log[t].fillna(0) for t in ("sdf", "inter", "normal", "eikonal", "div")
    )
    np.testing.assert_allclose(log["loss"], expected, rtol=1e-5)


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_bad_inputs_give_one_clear_message(tmp_path, capsys):
    out = tmp_path / "out"
    good = write_sphere_sample(tmp_path / "good.npz", n=100)
    flat = write_sphere_sample(tmp_path / "flat.npz", n=100, dim=2)
    np.savez(tmp_path / "nopoints.npz", xyz=np.zeros((3, 3)))
    np.savez(tmp_path / "empty.npz", points=np.zeros((0, 3), np.float32))
    np.savez(tmp_path / "nan.npz", points=np.array([[0, 0, 0], [np.nan, 1, 0]], np.float32))
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    base = [
        "train",
        "--out",
        str(out),
        "--iterations",
        "2",
        "--quiet",
        "--method",
        "steik",
        "--experiment",
        "srb",
    ]
    cases = {
        "missing": (["--points", str(tmp_path / "nope.npz")], "does not exist"),
        "corrupt": (["--points", str(tmp_path / "corrupt.npz")], "is unreadable"),
        "nopoints": (["--points", str(tmp_path / "nopoints.npz")], "has no `points` array"),
        "empty": (["--points", str(tmp_path / "empty.npz")], "with N > 0"),
        "nan": (["--points", str(tmp_path / "nan.npz")], "non-finite coordinates"),
        "mixed": (["--points", str(good), str(flat)], "mix 2D and 3D"),
        "method": (["--points", str(good), "--method", "digs2"], "valid methods"),
        "experiment": (["--points", str(good), "--experiment", "kitti"], "valid experiments"),
        "field": (["--points", str(good), "--set", "widht=3"], "unknown method field 'widht'"),
        "resume": (["--points", str(good), "--resume"], "no checkpoint"),
    }
    for name, (extra, message) in cases.items():
        code, err = _cli(base + extra, capsys)
        assert code == 2, name
        assert message in err and err.count("\n") == 1, (name, err)
    assert not list(out.rglob("model.pt"))


def test_resume_refuses_a_checkpoint_of_another_configuration(tmp_path, monkeypatch, capsys):
    path = write_sphere_sample(tmp_path / "s.npz", n=200)
    config = preset("steik", "srb", iterations=10, checkpoint_every=4, **TINY)
    original = Trainer.step

    def interrupted(self):
        if self.iteration == 6:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train([path], config, tmp_path / "o", quiet=True)
    monkeypatch.setattr(Trainer, "step", original)
    code, err = _cli(
        [
            "train",
            "--points",
            str(path),
            "--method",
            "steik",
            "--experiment",
            "srb",
            "--out",
            str(tmp_path / "o"),
            "--resume",
            "--quiet",
            "--set",
            "hidden=32",
        ],
        capsys,
    )
    assert code == 2 and "checkpoint is from another run (config_digest differs" in err
    assert not (tmp_path / "o/s/model.pt").exists()


@pytest.mark.parametrize("dim", [2, 3])
def test_a_few_hundred_iterations_find_the_surface(tmp_path, dim):
    radius = 0.8
    path = write_sphere_sample(tmp_path / "s.npz", n=2000, dim=dim, radius=radius)
    config = preset(
        "steik",
        "2d" if dim == 2 else "srb",
        hidden=32,
        layers=3,
        iterations=250,
        n_manifold=500,
        n_offsurface=500,
        lr=1e-4 if dim == 2 else 3e-4,
    )
    meta = train([path], config, tmp_path / "o", quiet=True)[0]
    assert meta.status == "ok"
    net, loaded = load_model(tmp_path / "o/s/model.pt")
    assert loaded.points_digest == meta.points_digest
    assert loaded.n_params == net.n_params_per_shape()
    rng = np.random.default_rng(1)
    q = rng.normal(size=(400, dim))
    q = torch.tensor(q / np.linalg.norm(q, axis=1, keepdims=True), dtype=torch.float32)[None]
    with torch.no_grad():
        on, inside, outside = net(radius * q), net(0.5 * radius * q), net(1.3 * radius * q)
    assert on.abs().mean() < 0.02 and on.abs().max() < 0.08
    assert (inside < 0).all() and (outside > 0).all()


def test_load_model_refuses_garbage(tmp_path):
    from steik.errors import SteikError

    bad = tmp_path / "model.pt"
    bad.write_bytes(b"nonsense")
    with pytest.raises(SteikError, match="unreadable model file"):
        load_model(bad)
    with pytest.raises(SteikError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
