"""Sample files: keys and dtypes, normalisation, IoU labels, seeds, and every dataset kind."""

from __future__ import annotations

import hashlib
import io as bytes_io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh

from steik.cli import main
from steik.data import io, shapes2d, shapes3d
from steik.data.fetch import fetch
from steik.data.registry import REGISTRY, ground_truth, list_shapes
from steik.data.sample import SampleConfig, build_sample, load_sample, write_sample
from steik.errors import SteikError

SMALL = SampleConfig(n_points=2000, n_gt=3000, n_occ=4000, seed=1)
DTYPES = {
    "points": np.float32,
    "normals": np.float32,
    "center": np.float64,
    "scale": np.float64,
    "gt_points": np.float64,
    "gt_normals": np.float32,
    "occ_points": np.float64,
    "occ_labels": np.bool_,
}


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEIK_MIRROR", raising=False)


def check_file(path: Path, dim: int, kind: str) -> dict[str, np.ndarray]:
    """Keys, dtypes and shapes of a written sample file, read back with plain numpy."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    for key, dtype in DTYPES.items():
        if key in arrays:
            assert arrays[key].dtype == dtype, key
    for key in ("dataset", "shape", "ground_truth", "source", "source_sha256"):
        assert arrays[key].dtype.kind == "U" and arrays[key].shape == ()
    assert str(arrays["ground_truth"]) == kind
    assert arrays["points"].shape[1] == dim and arrays["center"].shape == (dim,)
    assert arrays["scale"].shape == ()
    points = arrays["points"]
    assert (np.abs(points) <= 1.0).all()
    if dim == 3:  # scans are stretched to touch the cube; the 2D shapes keep SPEC 9's frame
        assert np.abs(points).max() == 1.0
    return arrays


@pytest.mark.parametrize(
    ("dataset", "shape", "dim"), [("demo3d", "sphere", 3), ("demo2d", "snowflake", 2)]
)
def test_generated_sample_keys_dtypes_and_ranges(
    tmp_path: Path, dataset: str, shape: str, dim: int
) -> None:
    out = write_sample(tmp_path / "s.npz", build_sample(dataset, shape, tmp_path, SMALL))
    arrays = check_file(out, dim, "mesh")
    assert set(arrays) == set(DTYPES) | {
        "dataset",
        "shape",
        "ground_truth",
        "source",
        "source_sha256",
    }
    assert str(arrays["source"]) == f"generated:{shape}"
    lock = json.loads(fetch(dataset, tmp_path).read_text())
    recorded = {f["name"].rsplit(".", 1)[0]: f["sha256"] for f in lock["files"]}
    assert str(arrays["source_sha256"]) == recorded[shape]
    np.testing.assert_allclose(np.linalg.norm(arrays["normals"], axis=1), 1.0, atol=1e-5)
    assert len(arrays["gt_points"]) == 3000


def test_sphere_scan_ground_truth_and_iou_labels(tmp_path: Path) -> None:
    sample = build_sample("demo3d", "sphere", tmp_path, SMALL)
    mesh = shapes3d.make_mesh("sphere")
    # Faces of the inscribed polyhedron are at least r_in from the centre.
    r_in = float(np.abs((mesh.face_normals * mesh.triangles[:, 0]).sum(axis=1)).min())
    radius = np.linalg.norm(sample.occ_points, axis=1)
    certain = (radius < r_in) | (radius > 0.5)
    assert certain.mean() > 0.95
    np.testing.assert_array_equal(sample.occ_labels[certain], radius[certain] < 0.5)
    scan = sample.to_original(sample.points)
    np.testing.assert_allclose(np.linalg.norm(scan, axis=1), 0.5, atol=0.5 - r_in + 1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(sample.gt_points, axis=1), 0.5, atol=0.5 - r_in + 1e-6
    )
    # Outward normals on a sphere point along the position.
    cosine = (sample.gt_normals * sample.gt_points).sum(axis=1) / 0.5
    assert cosine.min() > 0.99
    low, high = sample.occ_points.min(axis=0), sample.occ_points.max(axis=0)
    assert (
        (low < -0.5).all() and (low >= -0.55).all() and (high > 0.5).all() and (high <= 0.55).all()
    )


def test_noise_is_relative_to_the_bounding_box_diagonal(tmp_path: Path) -> None:
    noisy = build_sample(
        "demo3d", "sphere", tmp_path, SampleConfig(n_points=20000, noise=0.01, n_gt=10, n_occ=10)
    )
    radial = np.linalg.norm(noisy.to_original(noisy.points), axis=1) - 0.5
    assert np.std(radial) == pytest.approx(0.01 * np.sqrt(3.0), rel=0.05)


def test_2d_iou_grid_uses_the_exact_sign(tmp_path: Path) -> None:
    sample = build_sample(
        "demo2d", "l_shape", tmp_path, SampleConfig(n_points=500, n_gt=100, n_occ=64 * 64)
    )
    assert sample.occ_points.shape == (64 * 64, 2)
    xs, ys = np.unique(sample.occ_points[:, 0]), np.unique(sample.occ_points[:, 1])
    assert len(xs) == len(ys) == 64
    np.testing.assert_allclose(np.diff(xs), np.diff(xs)[0], rtol=1e-5)
    inside = shapes2d.signed_distance("l_shape", sample.occ_points) < 0
    np.testing.assert_array_equal(sample.occ_labels, inside)
    assert 0.2 < inside.mean() < 0.8


def test_2d_shapes_keep_the_spec9_frame(tmp_path: Path) -> None:
    # SPEC 9's shapes live in the frame of its [-1.2, 1.2]^2 off-surface square: the circle keeps
    # radius 0.5 and the L its corner (0.5, -0.5), rather than being stretched to fill [-1, 1].
    circle = build_sample("demo2d", "circle", tmp_path, SampleConfig(n_points=400, n_gt=10))
    np.testing.assert_allclose(np.linalg.norm(circle.points, axis=1), 0.5, atol=1e-6)
    shape = build_sample("demo2d", "l_shape", tmp_path, SampleConfig(n_points=400, n_gt=10))
    assert shape.scale == 1.0 and np.all(shape.center == 0.0)
    np.testing.assert_allclose(shape.points.min(axis=0), [-0.5, -0.5], atol=1e-6)
    np.testing.assert_allclose(shape.points.max(axis=0), [0.5, 0.5], atol=1e-6)


def test_same_seed_same_bytes_other_seed_other_points(tmp_path: Path) -> None:
    paths = [tmp_path / f"{i}.npz" for i in range(3)]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        config = SampleConfig(n_points=1000, n_gt=1000, n_occ=1000, seed=seed)
        write_sample(path, build_sample("demo3d", "torus", tmp_path, config))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert digests[0] == digests[1] != digests[2]
    assert not np.array_equal(load_sample(paths[0]).points, load_sample(paths[2]).points)


def test_scan_normalisation_inverts_exactly(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    original = np.random.default_rng(3).normal(
        loc=[10.0, -4.0, 250.0], scale=[3.0, 1.0, 0.5], size=(999, 3)
    )
    np.savetxt(folder / "cloud.xyz", original)
    entry = {"name": "mine", "kind": "folder", "path": str(folder), "pattern": "*.xyz"}
    out = write_sample(tmp_path / "cloud.npz", build_sample(entry, "cloud", tmp_path, SMALL))
    arrays = check_file(out, 3, "none")
    assert "gt_points" not in arrays and "occ_points" not in arrays
    read = np.loadtxt(folder / "cloud.xyz")
    np.testing.assert_allclose(arrays["center"], read.mean(axis=0), rtol=1e-15)
    assert arrays["scale"] == np.abs(read - read.mean(axis=0)).max()
    restored = arrays["points"].astype(np.float64) * arrays["scale"] + arrays["center"]
    # float32 storage: the round trip is exact to float32 precision of the normalised values.
    assert np.abs(restored - read).max() <= 2 * np.finfo(np.float32).eps * arrays["scale"]
    assert (
        str(arrays["source_sha256"])
        == hashlib.sha256((folder / "cloud.xyz").read_bytes()).hexdigest()
    )


def test_folder_meshes_become_ground_truth_and_changed_files_are_caught(tmp_path: Path) -> None:
    folder = tmp_path / "meshes"
    folder.mkdir()
    shapes3d.make_mesh("gear").export(folder / "gear.off")
    entry = {"name": "mine", "kind": "folder", "path": str(folder), "pattern": "*.off"}
    fetch(entry, tmp_path / "res")
    assert ground_truth(entry, "gear", tmp_path / "res") == "mesh"
    sample = build_sample(entry, "gear", tmp_path / "res", SMALL)
    assert sample.ground_truth == "mesh" and sample.occ_labels.any()
    mesh = io.read_mesh(folder / "gear.off")
    _, distance, _ = trimesh.proximity.closest_point(mesh, sample.gt_points[:300])
    assert distance.max() < 1e-5
    trimesh.creation.box().export(folder / "gear.off")
    with pytest.raises(SteikError, match="changed since `steik fetch`"):
        build_sample(entry, "gear", tmp_path / "res", SMALL)


def ply_cloud_bytes(points: np.ndarray, normals: np.ndarray | None = None) -> bytes:
    """Binary PLY bytes of a point cloud (with normals when given)."""
    cloud = trimesh.PointCloud(points)
    if normals is None:
        return trimesh.exchange.ply.export_ply(cloud, encoding="binary")
    columns = ["x", "y", "z", "nx", "ny", "nz"]
    table = np.zeros(len(points), dtype=[(c, "<f4") for c in columns])
    for i, c in enumerate(columns):
        table[c] = np.concatenate([points, normals], axis=1)[:, i]
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
    header += "".join(f"property float {c}\n" for c in columns) + "end_header\n"
    return header.encode() + table.tobytes()


def put_archive(root: Path, name: str, files: dict[str, bytes]) -> None:
    """Place a hand-made archive at the manual-download path `<root>/downloads/<name>`."""
    target = root / "downloads" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = bytes_io.BytesIO()
    if name.endswith(".zip"):
        with zipfile.ZipFile(buffer, "w") as archive:
            for member, data in files.items():
                archive.writestr(member, data)
    else:
        with tarfile.open(
            fileobj=buffer, mode="w:gz" if name.endswith(".gz") else "w:xz"
        ) as archive:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                archive.addfile(info, bytes_io.BytesIO(data))
    target.write_bytes(buffer.getvalue())


def test_srb_sample_from_manual_archive(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for shape in REGISTRY["srb"].shapes:
        scan = rng.normal(size=(300, 3))
        files[f"deep_geometric_prior_data/scans/{shape}.ply"] = ply_cloud_bytes(scan, scan)
        buffer = bytes_io.StringIO()
        np.savetxt(buffer, rng.normal(size=(500, 3)))
        files[f"deep_geometric_prior_data/ground_truth/{shape}.xyz"] = buffer.getvalue().encode()
    put_archive(tmp_path, "deep_geometric_prior_data.zip", files)
    with pytest.raises(SteikError, match="steik fetch srb"):
        build_sample("srb", "dc", tmp_path, SMALL)
    fetch("srb", tmp_path)
    sample = build_sample("srb", "dc", tmp_path, SMALL)
    assert sample.ground_truth == "points" and len(sample.points) == 300
    assert sample.normals is not None and sample.occ_points is None
    gt = np.loadtxt(bytes_io.BytesIO(files["deep_geometric_prior_data/ground_truth/dc.xyz"]))
    np.testing.assert_allclose(sample.gt_points, gt, rtol=1e-6)
    assert sample.source.endswith("scans/dc.ply")


def test_shapenet_sample_maps_occupancies_into_the_scan_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scan = rng.uniform(-0.4, 0.4, size=(400, 3))
    occ = rng.uniform(-0.55, 0.55, size=(1000, 3)).astype(np.float16)
    inside = np.abs(occ).max(axis=1) < 0.4
    buffer = bytes_io.BytesIO()
    np.savez(
        buffer, points=occ, occupancies=np.packbits(inside), loc=np.zeros(3), scale=np.float64(1)
    )
    put_archive(tmp_path, "NSP_data.tar.gz", {"NSP_dataset/lamp/abc123.ply": ply_cloud_bytes(scan)})
    put_archive(
        tmp_path,
        "ShapeNetNSP.tar.gz",
        {"ShapeNetNSP/03636649/abc123/points.npz": buffer.getvalue()},
    )
    fetch("shapenet", tmp_path)
    assert list_shapes("shapenet", tmp_path) == ["lamp_abc123"]
    sample = build_sample("shapenet", "lamp_abc123", tmp_path, SMALL)
    assert sample.ground_truth == "shapenet"
    np.testing.assert_allclose(sample.gt_points, scan.astype(np.float32))
    np.testing.assert_array_equal(sample.occ_labels, inside)
    # The IoU points share the scan's frame: normalising them maps the scan's box like the scan.
    np.testing.assert_allclose(
        sample.to_normalised(sample.occ_points),
        (occ.astype(np.float64) - sample.center) / sample.scale,
        rtol=1e-6,
    )


def test_scene_sample_is_scan_only(tmp_path: Path) -> None:
    room = np.random.default_rng(2).uniform(0, [5, 4, 3], size=(500, 3))
    put_archive(
        tmp_path,
        "scene_reconstruction.tar.xz",
        {"scene_reconstruction/interior_room.ply": ply_cloud_bytes(room)},
    )
    fetch("scene", tmp_path)
    path = tmp_path / "room.npz"
    write_sample(path, build_sample("scene", "interior_room", tmp_path, SMALL))
    arrays = check_file(path, 3, "none")
    assert not {"gt_points", "occ_points", "normals"} & set(arrays)


def test_cli_sample_and_its_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "samples" / "circle.npz"
    args = ["sample", "demo2d", "circle", "--root", str(tmp_path), "--out", str(out)]
    assert main([*args, "--n-points", "300", "--n-gt", "200", "--n-occ", "400", "--seed", "2"]) == 0
    sample = load_sample(out)
    assert sample.dim == 2 and len(sample.points) == 300 and len(sample.occ_points) == 400
    np.testing.assert_allclose(
        np.linalg.norm(sample.to_original(sample.points), axis=1), 0.5, atol=1e-6
    )
    bad = tmp_path / "samples" / "bad.npz"
    assert main(["sample", "demo2d", "hexagon", "--root", str(tmp_path), "--out", str(bad)]) == 2
    assert "no shape 'hexagon'" in capsys.readouterr().err
    assert main(["sample", "demo2d", "circle", "--out", str(bad), "--n-points", "0"]) == 2
    assert not bad.exists() and sorted(p.name for p in out.parent.iterdir()) == ["circle.npz"]


def test_load_sample_refuses_missing_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(SteikError, match="does not exist"):
        load_sample(tmp_path / "nothing.npz")
    (tmp_path / "damaged.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(SteikError, match="unreadable"):
        load_sample(tmp_path / "damaged.npz")
    np.savez(tmp_path / "same.npz", points=np.zeros((3, 3), np.float32))
    with pytest.raises(SteikError, match="all at one place"):
        load_sample(tmp_path / "same.npz")
    # A hand-made file needs points only: the normalisation is then the identity.
    points = np.random.default_rng(0).uniform(-1, 1, (50, 3)).astype(np.float32)
    np.savez(tmp_path / "handmade.npz", points=points)
    sample = load_sample(tmp_path / "handmade.npz")
    assert (sample.shape, sample.scale, sample.ground_truth) == ("handmade", 1.0, "none")
    assert np.array_equal(sample.center, np.zeros(3))
