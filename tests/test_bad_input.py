"""Bad input ends in one clear line (exit status 2, no traceback) and leaves no partial output.

One test per case that used to end in a traceback, a silent wrong run or a misleading message;
the folder dataset with `scan-01.ply` / `my scan.ply` names runs end to end in
tests/test_workflow_e2e.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import trimesh
from conftest import write_sphere_sample

from steik.cli import main


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


TRAIN = ["train", "--method", "steik", "--experiment", "srb", "--iterations", "2", "--quiet",
         "--device", "cpu"]  # fmt: skip


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=nan", "method field lr must be a finite number"),
        ("name=x", "method field 'name' cannot be overridden; it is chosen by --method"),
        ("experiment=x", "it is chosen by --experiment"),
        ("hidden=16.7", "method field hidden must be a whole number, got 16.7"),
        ("checkpoint_every=-1", "checkpoint_every must be 0 or more, got -1"),
        ("grad_clip=-1", "grad_clip must be 0 or more"),
        ("offsurface_extent=0", "offsurface_extent must be positive, got 0.0"),
        ("w_sdf=nan", "method field w_sdf must be a finite number"),
        ("use_normals=maybe", "method field use_normals must be true or false, got 'maybe'"),
    ],
)
def test_method_fields_are_checked_before_training(tmp_path, capsys, override, message):
    sample = write_sphere_sample(tmp_path / "s.npz", n=100)
    code, err = _cli([*TRAIN, "--points", sample, "--out", tmp_path / "o", "--set", override],
                     capsys)  # fmt: skip
    _one_line(code, err, message)
    assert not (tmp_path / "o").exists()


def _sample_file(path: Path, points, center=(0.0, 0.0, 0.0), scale=1.0) -> Path:
    np.savez(path, points=np.asarray(points, np.float32), center=np.asarray(center, float),
             scale=np.float64(scale))  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("one_point", "the 1 point(s) are all at one place"),
        ("all_equal", "the 50 point(s) are all at one place"),
        ("scale_zero", "`scale` must be a positive number, got 0.0"),
        ("scale_nan", "`scale` must be a positive number, got nan"),
        ("center_nan", "`center` must be 3 finite numbers"),
    ],
)
def test_train_refuses_a_sample_that_sample_would_refuse(tmp_path, capsys, name, message):
    good = np.random.default_rng(0).uniform(-1, 1, (50, 3))
    files = {
        "one_point": lambda p: _sample_file(p, good[:1]),
        "all_equal": lambda p: _sample_file(p, np.ones((50, 3))),
        "scale_zero": lambda p: _sample_file(p, good, scale=0.0),
        "scale_nan": lambda p: _sample_file(p, good, scale=np.nan),
        "center_nan": lambda p: _sample_file(p, good, center=(0.0, np.nan, 0.0)),
    }
    sample = files[name](tmp_path / f"{name}.npz")
    code, err = _cli([*TRAIN, "--points", sample, "--out", tmp_path / "o"], capsys)
    _one_line(code, err, str(sample), message)
    assert not (tmp_path / "o").exists()


def test_sample_refuses_a_negative_seed_and_an_unreadable_file(tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.npz"
    code, err = _cli(["sample", "demo2d", "circle", "--out", out, "--seed", "-1"], capsys)
    _one_line(code, err, "--seed must be 0 or more, got -1")
    folder = tmp_path / "scans"
    folder.mkdir()
    trimesh.creation.icosphere(2).export(folder / "ball.ply")

    def denied(*args, **kwargs):  # as for a file the user may not read (the tests run as root)
        raise PermissionError(13, "Permission denied", str(folder / "ball.ply"))

    monkeypatch.setattr("trimesh.load", denied)
    code, err = _cli(["sample", "mine", "ball", "--folder", folder, "--out", out], capsys)
    _one_line(code, err, str(folder / "ball.ply"), "Permission denied")
    assert not out.exists()


def test_degenerate_meshes_and_clouds_name_the_file(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    faces = np.array([[0, 0, 1], [1, 1, 2], [2, 3, 3]])  # every triangle repeats a corner
    (folder / "flat.ply").write_bytes(
        trimesh.exchange.ply.export_ply(trimesh.Trimesh(vertices, faces, process=False))
    )
    np.savetxt(folder / "same.xyz", np.ones((100, 3)))
    out = tmp_path / "s.npz"
    args = ["sample", "mine", "--folder", folder, "--pattern", "*", "--out", out]
    code, err = _cli([*args[:2], "flat", *args[2:]], capsys)
    _one_line(code, err, str(folder / "flat.ply"), "every face of the mesh has zero area")
    code, err = _cli([*args[:2], "same", *args[2:]], capsys)
    _one_line(code, err, str(folder / "same.xyz"), "all 100 points are equal")
    assert not out.exists()


def test_tables_name_the_shape_of_a_duplicated_row(tmp_path, capsys):
    from test_tables import make_row, write_rows

    row = make_row(np.random.default_rng(0), "srb", "steik", "anchor")
    paths = write_rows(tmp_path, [row])
    code, err = _cli(["tables", "--dataset", "srb", "--out-dir", tmp_path / "t", "--metrics",
                      paths[0], paths[0]], capsys)  # fmt: skip
    _one_line(code, err, "method steik, shape anchor, seed 0")
    assert not (tmp_path / "t").exists()


# ----------------------------------------------------------------- a full disk


@pytest.fixture
def full_disk(tmp_path):
    """A 64 kB tmpfs (root only, as in CI); the test is skipped, with the reason, elsewhere."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root; run the suite as root to test a full disk")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_naming_the_file(full_disk, tmp_path, capsys):
    sample = write_sphere_sample(tmp_path / "s.npz", n=3000)
    # a checkpoint (torch writes it; a full disk shows as a C++ iostream error there)
    code, err = _cli([*TRAIN, "--points", sample, "--out", full_disk / "run"], capsys)
    _one_line(code, err, f"cannot write {full_disk}/run/s/checkpoint.pt", "no space left")
    # a sample file
    out = full_disk / "samples" / "sphere.npz"
    code, err = _cli(["sample", "demo3d", "sphere", "--root", tmp_path / "res", "--out", out,
                      "--n-points", "20000", "--n-gt", "20000"], capsys)  # fmt: skip
    _one_line(code, err, f"cannot write {out}", "no space left")
    # a mesh, once the disk is full
    (full_disk / "ballast").write_bytes(b"\0" * 1)
    with pytest.raises(OSError):
        (full_disk / "ballast").write_bytes(b"\0" * (1 << 20))
    train = tmp_path / "run"
    assert main([*TRAIN, "--points", str(sample), "--out", str(train), "--set", "hidden=8"]) == 0
    mesh = full_disk / "mesh.ply"
    code, err = _cli(["extract", "--model", train / "s" / "model.pt", "--sample", sample,
                      "--out", mesh, "--resolution", "24", "--device", "cpu"], capsys)  # fmt: skip
    _one_line(code, err, "cannot write", str(full_disk), "no space left")
    leftovers = [p.name for p in full_disk.rglob("*") if p.is_file() and p.name != "ballast"]
    assert leftovers == [], leftovers


def test_a_missing_folder_or_permission_is_one_line(tmp_path, capsys, monkeypatch):
    """File-system errors outside the atomic writes still end as one line naming the path."""
    table = tmp_path / "rows.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(table)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(table))

    monkeypatch.setattr("steik.runtime_table.read_rows", denied)
    code, err = _cli(["runtime", "--tables", table, "--out", tmp_path / "r.parquet"], capsys)
    _one_line(code, err, f"{table}: Permission denied; check its permissions")


_LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))
from steik.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("shapes", [1, 2])
def test_running_out_of_memory_is_one_line_with_the_fix(tmp_path, shapes):
    """A real failed allocation (address space capped at 3 GB, 4 million points per iteration):
    one line naming the shapes and the setting to lower; no model written."""
    samples = [write_sphere_sample(tmp_path / f"s{i}.npz", n=1000, seed=i) for i in range(shapes)]
    result = subprocess.run(
        [sys.executable, "-c", _LIMITED, *TRAIN, "--points", *map(str, samples), "--out",
         str(tmp_path / "o"), "--set", "n_manifold=2000000", "--set", "n_offsurface=2000000"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1 and "ran out of memory on cpu" in errors[0], result.stderr
    assert ("lower train.batch_size" in errors[0]) == (shapes > 1)
    assert "2000000 + 2000000 points per iteration" in errors[0]
    assert not list((tmp_path / "o").rglob("model.pt"))


# ----------------------------------------------------------------- issue 20: silent wrong results


def _far_sphere(folder: Path, offset: float) -> Path:
    """A radius-10 sphere centred at y = `offset` (UTM-like coordinates) in `folder`."""
    folder.mkdir(exist_ok=True)
    mesh = trimesh.creation.icosphere(4, radius=10.0)
    mesh.apply_translation([0.0, offset, 0.0])
    path = folder / "far.off"
    # written as text with every digit: the input itself must not be the precision bottleneck
    lines = ["OFF", f"{len(mesh.vertices)} {len(mesh.faces)} 0"]
    lines += [" ".join(f"{c:.17g}" for c in v) for v in mesh.vertices]
    lines += [f"3 {a} {b} {c}" for a, b, c in mesh.faces]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_inside_out_mesh_gives_the_same_labels_and_normals(tmp_path, capsys):
    """A closed mesh with flipped winding: IoU labels and ground-truth normals as for the
    correctly wound one (they were all False and inward)."""
    from steik.data.sample import load_sample

    folder = tmp_path / "scans"
    folder.mkdir()
    box = trimesh.creation.box(extents=(2.0, 1.0, 1.0))
    box.invert()
    assert box.volume < 0
    box.export(folder / "crate.ply")
    out = tmp_path / "crate.npz"
    assert main(["sample", "mine", "crate", "--folder", str(folder), "--out", str(out),
                 "--n-points", "500", "--n-gt", "500", "--n-occ", "2000"]) == 0  # fmt: skip
    sample = load_sample(out)
    inside = np.abs(sample.occ_points) <= np.array([1.0, 0.5, 0.5])
    assert np.array_equal(sample.occ_labels, inside.all(axis=1))
    assert 0.2 < sample.occ_labels.mean() < 0.9
    outward = np.einsum("ij,ij->i", sample.gt_normals, sample.gt_points)
    assert (outward > 0).all()


@pytest.mark.parametrize("offset", [5e6, 1e9])
def test_a_shape_far_from_the_origin_keeps_its_geometry(tmp_path, offset):
    """Ground truth and IoU points keep original units in float64; the mesh file too."""
    from steik.data.sample import load_sample
    from steik.mesh import Extraction, Grid, read_surface, write_surface

    _far_sphere(tmp_path / "scans", offset)
    out = tmp_path / "far.npz"
    assert main(["sample", "mine", "far", "--folder", str(tmp_path / "scans"), "--pattern",
                 "*.off", "--out", str(out), "--n-points", "500", "--n-gt", "3000",
                 "--n-occ", "500"]) == 0  # fmt: skip
    sample = load_sample(out)
    radius = np.linalg.norm(sample.gt_points - [0.0, offset, 0.0], axis=1)
    assert np.abs(radius - 10.0).max() < 0.05  # on the (faceted) sphere
    assert len(np.unique(sample.gt_points[:, 1])) > 2000
    occ_radius = np.linalg.norm(sample.occ_points - [0.0, offset, 0.0], axis=1)
    clear = np.abs(occ_radius - 10.0) > 0.1  # away from the facets
    assert np.array_equal(sample.occ_labels[clear], occ_radius[clear] < 10.0)
    assert 0.2 < sample.occ_labels.mean() < 0.8
    sphere = trimesh.creation.icosphere(3, radius=10.0)
    vertices = sphere.vertices + np.array([0.0, offset, 0.0])
    extraction = Extraction(vertices=vertices, cells=np.asarray(sphere.faces), status="ok",
                            points_evaluated=1, grid=Grid((0.0,) * 3, 1.0, (2, 2, 2)),
                            mode="dense", seconds=0.0)  # fmt: skip
    write_surface(tmp_path / "mesh.ply", extraction)
    read, faces = read_surface(tmp_path / "mesh.ply")
    assert np.array_equal(read, vertices) and np.array_equal(faces, sphere.faces)


def test_runtime_and_render_outputs_are_checked(tmp_path, capsys):
    """`runtime --out x.csv` would hold Parquet bytes; `plot-renders --size 0` a blank figure;
    `--out` without an extension names no format."""
    table = tmp_path / "rows.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(table)
    code, err = _cli(["runtime", "--tables", table, "--out", tmp_path / "runtime.csv"], capsys)
    _one_line(code, err, "runtime.csv", "ending in .parquet")
    assert list(tmp_path.iterdir()) == [table]
    sample = write_sphere_sample(tmp_path / "ball.npz", n=200)
    mesh = tmp_path / "steik" / "ball" / "mesh.ply"
    mesh.parent.mkdir(parents=True)
    trimesh.creation.icosphere(2, radius=0.8).export(mesh)
    args = ["plot-renders", "--meshes", mesh, "--samples", sample]
    code, err = _cli([*args, "--out", tmp_path / "r.png", "--size", "0"], capsys)
    _one_line(code, err, "--size 0", "at least 16 pixels")
    code, err = _cli([*args, "--out", tmp_path / "render", "--size", "32"], capsys)
    _one_line(code, err, f"--out {tmp_path / 'render'}", "end the path in .png")
    assert main([str(a) for a in [*args, "--out", tmp_path / "r.png", "--size", "32"]]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ball.npz", "r.png", "rows.parquet",
                                                          "steik"]  # fmt: skip


# ----------------------------------------------------------------- issue 20: tracebacks


def test_a_cloud_of_strings_is_one_line(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    np.savez(folder / "words.npz", points=np.array([["a", "b", "c"]] * 10))
    out = tmp_path / "s.npz"
    code, err = _cli(["sample", "mine", "words", "--folder", folder, "--pattern", "*.npz",
                      "--out", out], capsys)  # fmt: skip
    _one_line(code, err, str(folder / "words.npz"), "coordinates must be real numbers")
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"occ_padding": -2}', "occ_padding must be a finite number >= 0, got -2"),
        ('{"occ_padding": NaN}', "--options: occ_padding must be a finite number, got nan"),
        ('{"near_sigma": -1, "near_fraction": 0.5}', "near_sigma must be a finite number >= 0"),
    ],
)
def test_sample_options_out_of_range_are_one_line(tmp_path, capsys, options, message):
    out = tmp_path / "s.npz"
    code, err = _cli(["sample", "demo3d", "sphere", "--out", out, "--options", options,
                      "--n-points", "100", "--n-gt", "100", "--n-occ", "100"], capsys)  # fmt: skip
    _one_line(code, err, message)
    assert not out.exists()


def _trained(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny trained model and its sample."""
    sample = write_sphere_sample(tmp_path / "s.npz", n=200)
    assert main([*TRAIN, "--points", str(sample), "--out", str(tmp_path / "o"),
                 "--set", "hidden=8"]) == 0  # fmt: skip
    return tmp_path / "o" / "s" / "model.pt", sample


def test_seeds_beyond_64_bits_are_one_line(tmp_path, capsys):
    model, sample = _trained(tmp_path)
    code, err = _cli([*TRAIN, "--points", sample, "--out", tmp_path / "big", "--seed", 2**64],
                     capsys)  # fmt: skip
    _one_line(code, err, "--seed must be a whole number in [0, 2^63 - 1)", str(2**64))
    assert not (tmp_path / "big").exists()
    mesh = tmp_path / "m.ply"
    assert main(["extract", "--model", str(model), "--sample", str(sample), "--out", str(mesh),
                 "--resolution", "16", "--device", "cpu"]) == 0  # fmt: skip
    evaluate = ["evaluate", "--mesh", mesh, "--model", model, "--sample", sample, "--out",
                tmp_path / "r.parquet", "--device", "cpu"]  # fmt: skip
    code, err = _cli([*evaluate, "--seed", 2**63], capsys)
    _one_line(code, err, "--seed must be a whole number", str(2**63))
    assert not (tmp_path / "r.parquet").exists()


def test_extraction_settings_and_foreign_models_are_one_line(tmp_path, capsys):
    """A grid beyond memory says what it would need; a huge margin names `margin`, not the
    model; a file that is no model is one line that never suggests weights_only=False."""
    import torch

    model, sample = _trained(tmp_path)
    mesh = tmp_path / "m.ply"
    extract = ["extract", "--model", model, "--sample", sample, "--out", mesh, "--device", "cpu"]
    code, err = _cli([*extract, "--resolution", "100000"], capsys)
    _one_line(code, err, "--resolution 100000", "GiB", "lower --resolution")
    code, err = _cli([*extract, "--resolution", "16", "--options", '{"margin": 1e30}'], capsys)
    _one_line(code, err, "margin must lie in [0, 10]", "1e+30")
    assert "retrain" not in err and "corrupt" not in err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": np.zeros(3)}, foreign)  # numpy inside: weights_only refuses it
    code, err = _cli([*extract[:2], foreign, *extract[3:], "--resolution", "16"], capsys)
    _one_line(code, err, str(foreign), "unreadable model file", "train it again")
    assert "weights_only" not in err and "trust" not in err
    assert not mesh.exists() and not mesh.with_suffix(".json").exists()


def test_zero_normals_and_a_line_of_points_are_refused_by_every_reader(tmp_path, capsys):
    """One validation for `steik sample` and the commands that read sample files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "scans"
    folder.mkdir()
    points = rng.normal(size=(300, 3))
    table = np.concatenate([points, np.zeros((300, 3))], axis=1)
    np.savetxt(folder / "flat_normals.xyz", table)
    out = tmp_path / "s.npz"
    code, err = _cli(["sample", "mine", "flat_normals", "--folder", folder, "--pattern", "*.xyz",
                      "--out", out], capsys)  # fmt: skip
    _one_line(code, err, str(folder / "flat_normals.xyz"), "300 normal(s) have zero length")
    # the same clouds as hand-made sample files: train and reconstruct refuse them too
    zero = tmp_path / "zero.npz"
    np.savez(zero, points=(points / 3).astype(np.float32), normals=np.zeros((300, 3), np.float32))
    line = tmp_path / "line.npz"
    np.savez(line, points=(np.linspace(-1, 1, 300)[:, None] * [1.0, 0.5, 0.2]).astype(np.float32))
    for path, message in ((zero, "`normals` must have unit length"),
                          (line, "all points lie in one plane (or line)")):  # fmt: skip
        code, err = _cli([*TRAIN, "--points", path, "--out", tmp_path / "o",
                          "--set", "use_normals=true"], capsys)  # fmt: skip
        _one_line(code, err, str(path), message)
        code, err = _cli(["reconstruct", "--sample", path, "--out", tmp_path / "p.ply",
                          "--use-sample-normals"], capsys)  # fmt: skip
        _one_line(code, err, str(path), message)
    assert not (tmp_path / "o").exists() and not (tmp_path / "p.ply").exists()


def test_sample_removes_the_temporaries_of_a_killed_run(tmp_path):
    """kill -9 while `steik sample` writes leaves `.<shape>.XXXXXXXX.tmp.npz`: the rerun removes
    it (every stage clears its own leftovers), and leaves another shape's alone."""
    out = tmp_path / "samples" / "sphere.npz"
    out.parent.mkdir()
    stale = out.parent / ".sphere.k1ll3d_9.tmp.npz"
    stale.write_bytes(b"\0" * 1000)
    other = out.parent / ".sphere.2.abcdefgh.tmp.npz"  # shape `sphere.2` writing at the same time
    other.write_bytes(b"\0")
    assert main(["sample", "demo3d", "sphere", "--out", str(out), "--n-points", "100",
                 "--n-gt", "100", "--n-occ", "100"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.parent.iterdir()) == [other.name, "sphere.npz"]


def test_an_absolute_pattern_is_one_line(tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    trimesh.creation.icosphere(1).export(folder / "ball.ply")
    code, err = _cli(["sample", "mine", "ball", "--folder", folder, "--pattern",
                      f"{folder}/*.ply", "--out", tmp_path / "s.npz"], capsys)  # fmt: skip
    _one_line(code, err, "pattern", f"{folder}/*.ply", "relative to the folder")


def test_a_sample_batch_needs_one_out_per_shape(tmp_path, capsys):
    """`steik sample` samples the workflow's batches in one process; the record comes last."""
    args = ["sample", "demo3d", "sphere", "torus", "--n-points", "100", "--n-gt", "100",
            "--n-occ", "100"]  # fmt: skip
    code, err = _cli([*args, "--out", tmp_path / "a.npz", "--record", tmp_path / "r.json"], capsys)
    _one_line(code, err, "give one --out per shape: 2 shape(s), 1 --out path(s)")
    assert list(tmp_path.iterdir()) == []
    outs = [tmp_path / "a.npz", tmp_path / "b.npz"]
    assert main([str(a) for a in [*args, "--out", *outs, "--record", tmp_path / "r.json"]]) == 0
    import json

    record = json.loads((tmp_path / "r.json").read_text())
    assert record == {"samples": [{"shape": "sphere", "sample": str(outs[0])},
                                  {"shape": "torus", "sample": str(outs[1])}]}  # fmt: skip
