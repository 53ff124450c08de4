"""The 2D figures show the right curves in the right panels. Model and snapshot files whose
networks' zero level sets are known circles (weights set by hand, not trained; for models the
exact SDF u(x) = |x - C| - R in original units): every bold curve drawn is checked against the
circle it must be, in the figure's contour data and in the pixels of the saved PNG. Trained
networks: every bold curve runs where its own network changes sign."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from steik.data import shapes2d
from steik.data.sample import Sample, load_sample, write_sample
from steik.fileio import array_digest
from steik.methods import MethodConfig, preset, run_label
from steik.model import (
    ModelRecord,
    build_network,
    load_model,
    load_snapshots,
    save_model,
    save_snapshots,
)
from steik.plots.figure import save_figure
from steik.plots.levelsets import (
    build_levelset_figure,
    build_snapshot_figure,
    levelset_figure,
)
from steik.schedule import WeightSchedule

CENTER = np.array([0.1, -0.05])
"""The samples' normalisation (original = normalised * SCALE + CENTER): not the identity, so a
figure that forgot to map back to original units draws its curves in the wrong place."""
SCALE = 0.8
Circle = tuple[tuple[float, float], float]
"""A circle (centre (x, y), radius) in original units."""


def circle_config(method: str, radius: float) -> MethodConfig:
    """A method's 2D configuration shrunk to the two-layer quadratic network `circle_state`
    fills: ReLU (the identity on its non-negative hidden values) and the sphere output map
    u = (sqrt(y) - 1) * radius, radius in the normalised frame."""
    return preset(method, "2d", neuron="quadratic", activation="relu", hidden=2, layers=1,
                  sphere_radius=1.0, sphere_scaling=radius)  # fmt: skip


def circle_state(config: MethodConfig, circle: Circle) -> dict[str, torch.Tensor]:
    """Weights of `config`'s network (`circle_config`) whose zero level set is `circle`: in the
    normalised frame, hidden h_i = (x_i - c_i)^2 / r^2 (a product of two affine maps), y = h_1 +
    h_2 = |x - c|^2 / r^2, so u = (|x - c| / r - 1) * scaling, the exact SDF |x - c| - r when
    the sphere scaling is r."""
    (cx, cy), radius = circle
    c = (np.array([cx, cy]) - CENTER) / SCALE
    r = radius / SCALE
    network = build_network(config, 2)
    state = {name: torch.zeros_like(t) for name, t in network.state_dict().items()}
    state["layers.0.weight12"][0] = torch.tensor([[1, 0], [0, 1], [1 / r**2, 0], [0, 1 / r**2]])
    state["layers.0.bias12"][0] = torch.tensor([-c[0], -c[1], -c[0] / r**2, -c[1] / r**2])
    state["layers.1.weight12"][0, 0] = 1.0  # first factor h_1 + h_2 ...
    state["layers.1.bias12"][0, 1] = 1.0  # ... times the constant 1
    network.load_state_dict(state)
    points = torch.rand(1, 64, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    distance = (points[0] - torch.tensor(c, dtype=torch.float32)).norm(dim=-1)
    expected = (distance / r - 1) * config.sphere_scaling
    torch.testing.assert_close(network(points)[0], expected, atol=1e-5, rtol=0)
    return state


def write_sample_2d(folder: Path, shape: str) -> Path:
    """A demo2d sample file of `shape` (its exact curve is drawn dotted) in the CENTER / SCALE
    frame."""
    points, normals = shapes2d.surface_points(shape, 400)
    sample = Sample(points=((points - CENTER) / SCALE).astype(np.float32), center=CENTER,
                    scale=SCALE, dataset="demo2d", shape=shape, ground_truth="mesh",
                    source=f"generated:{shape}", source_sha256="0" * 64,
                    normals=normals.astype(np.float32))  # fmt: skip
    return write_sample(folder / f"{shape}.npz", sample)


def model_meta(config: MethodConfig, sample_path: Path) -> ModelRecord:
    """The record of a model file holding a hand-set network (what the figures read:
    configuration, dimension, trained-on points; the rest plausible values)."""
    sample = load_sample(sample_path)
    return ModelRecord(
        config=config, config_hash=config.digest(), shape=sample.shape, dim=2,
        points_digest=array_digest(sample.points),
        center=tuple(float(v) for v in np.asarray(sample.center).reshape(-1)),
        scale=float(sample.scale), seed=0, train_seconds=0.0, ms_per_iter=float("nan"),
        n_params=0, device="cpu", torch_version="", steik_version="", n_shapes_batch=1,
        iterations=config.iterations, status="ok", message="",
    )  # fmt: skip


def write_circle_model(root: Path, run: str, sample_path: Path, circle: Circle) -> Path:
    """`root/<run>/<shape>/model.pt` holding the exact SDF of `circle`."""
    config = circle_config(run.partition("-seed")[0], circle[1] / SCALE)
    path = root / run / sample_path.stem / "model.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(path, model_meta(config, sample_path), circle_state(config, circle))


def zero_contours(ax) -> list[ContourSet]:
    """The bold zero level sets drawn in `ax` (one where the field changes sign, else none)."""
    return [c for c in ax.collections if isinstance(c, ContourSet) and list(c.levels) == [0.0]]


def zero_contour(ax) -> np.ndarray:
    """Vertices `[V, 2]` (data = original units) of the zero level set drawn in `ax`."""
    zero = zero_contours(ax)
    assert len(zero) == 1, "one bold zero level set per panel"
    return np.concatenate(zero[0].allsegs[0])


def assert_draws_circle(ax, circle: Circle, tolerance: float = 2e-3) -> None:
    """The zero level set in `ax` lies on `circle` and goes all the way round it."""
    (cx, cy), radius = circle
    vertices = zero_contour(ax)
    distance = np.linalg.norm(vertices - [cx, cy], axis=1)
    np.testing.assert_allclose(distance, radius, atol=tolerance)
    angles = np.arctan2(vertices[:, 1] - cy, vertices[:, 0] - cx)
    assert np.histogram(angles, bins=12, range=(-math.pi, math.pi))[0].min() > 0


def assert_zero_set_of(ax, network: torch.nn.Module, sample_path: Path, resolution: int) -> None:
    """The zero level set drawn in `ax` (a panel of `resolution` grid nodes a side over its
    limits) is where `network` (any trained one, K = 1) changes sign: every vertex of the bold
    curve lies on an edge of that grid whose two nodes the network, evaluated here, gives
    opposite signs. Where no curve is drawn, the network keeps one sign on every node."""
    sample = load_sample(sample_path)
    xs, ys = np.linspace(*ax.get_xlim(), resolution), np.linspace(*ax.get_ylim(), resolution)

    def u(points: np.ndarray) -> np.ndarray:  # original units in, the network's sign out
        normalised = torch.tensor((points - sample.center) / sample.scale, dtype=torch.float32)
        with torch.no_grad():
            return network(normalised[None])[0].numpy()

    if not zero_contours(ax):
        gx, gy = np.meshgrid(xs, ys)
        values = u(np.stack([gx.ravel(), gy.ravel()], axis=1))
        assert (values > 0).all() or (values < 0).all()
        return
    vertices = zero_contour(ax)
    column = np.abs(vertices[:, :1] - xs).argmin(axis=1)
    on_column = np.isclose(vertices[:, 0], xs[column], rtol=0, atol=1e-9)  # a vertical edge
    row = np.abs(vertices[:, 1:] - ys).argmin(axis=1)
    assert (on_column | np.isclose(vertices[:, 1], ys[row], rtol=0, atol=1e-9)).all()
    # The edge's two nodes: along y on a grid column, else along x on a grid row.
    below = np.clip(np.searchsorted(ys, vertices[:, 1]) - 1, 0, resolution - 2)
    left = np.clip(np.searchsorted(xs, vertices[:, 0]) - 1, 0, resolution - 2)
    a = np.where(on_column[:, None], np.stack([xs[column], ys[below]], 1),
                 np.stack([xs[left], ys[row]], 1))  # fmt: skip
    b = np.where(on_column[:, None], np.stack([xs[column], ys[below + 1]], 1),
                 np.stack([xs[left + 1], ys[row]], 1))  # fmt: skip
    assert (u(a) * u(b) <= 0).all()


def circle_pixels(fig: Figure, ax, circle: Circle, height: int, n: int = 360) -> np.ndarray:
    """Pixel (row, column) `[n, 2]` of `n` points on `circle` in the PNG `save_figure` writes
    (dpi 100), through the axes' data-to-display transform (display y runs upwards)."""
    (cx, cy), radius = circle
    angle = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    data = np.stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)], axis=1)
    display = ax.transData.transform(data) * 100 / fig.dpi
    return np.stack([height - display[:, 1], display[:, 0]], axis=1)


def near_black(image: np.ndarray) -> np.ndarray:
    """Pixels of the bold zero level set's colour (black, antialiased edges aside): every channel
    dark. The thin level sets (blue, red, alpha 0.7) and the dotted grey truth are not."""
    return image[..., :3].max(axis=-1) < 0.3


CIRCLES: dict[tuple[str, str], Circle] = {
    ("digs", "circle"): ((0.15, 0.05), 0.3),
    ("digs", "l_shape"): ((-0.2, 0.1), 0.25),
    ("steik-seed1", "circle"): ((0.0, -0.1), 0.45),
    ("steik-seed1", "l_shape"): ((0.2, 0.2), 0.2),
}
"""Each model's circle: distinct centres and radii, so a swapped panel or transposed field (the
centres are off the diagonal) shows."""


@pytest.fixture(scope="module")
def circle_models(tmp_path_factory) -> tuple[list[Path], list[Path]]:
    root = tmp_path_factory.mktemp("circles")
    samples = [write_sample_2d(root / "samples", s) for s in ("circle", "l_shape")]
    models = [write_circle_model(root, run, samples[("circle", "l_shape").index(shape)], circle)
              for (run, shape), circle in CIRCLES.items()]  # fmt: skip
    return models, samples


def test_each_panel_draws_its_models_zero_level_set(circle_models):
    models, samples = circle_models
    fig = build_levelset_figure(models, samples, resolution=128)
    axes = np.array(fig.axes).reshape(2, 2)  # rows = runs, columns = shapes, in given order
    assert [ax.get_title() for ax in axes[0]] == ["circle", "l_shape"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["DiGS", "StEik (seed 1)"]
    extent = circle_config("steik", 1.0).offsurface_extent
    for (run, shape), circle in CIRCLES.items():
        ax = axes[["digs", "steik-seed1"].index(run), ["circle", "l_shape"].index(shape)]
        assert_draws_circle(ax, circle)
        # The panel spans the training domain in original units: [-extent, extent] normalised.
        np.testing.assert_allclose(ax.get_xlim(), CENTER[0] + SCALE * np.array([-1, 1]) * extent)
        np.testing.assert_allclose(ax.get_ylim(), CENTER[1] + SCALE * np.array([-1, 1]) * extent)
        # The exact curve, dotted: the shape's outline.
        truth = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(truth) == 1
        np.testing.assert_allclose(truth[0].get_xydata()[:-1], shapes2d.outline(shape))


def test_the_saved_png_is_black_on_the_circle_and_nowhere_else(circle_models, tmp_path):
    """Pixel by pixel: the saved figure is near-black within a pixel of every point of each
    model's circle, and not near-black anywhere in a panel farther than 0.06 (original units,
    ~8 pixels) from it; the command's file is that same image."""
    models, samples = circle_models
    fig = build_levelset_figure(models, samples, resolution=128)
    axes = np.array(fig.axes).reshape(2, 2)
    image = mpimg.imread(save_figure(fig, tmp_path / "built.png"))
    dark = near_black(image)
    height, width = dark.shape
    # Near-black within one pixel: a 3 x 3 neighbourhood maximum.
    padded = np.pad(dark, 1)
    nearby = np.max([padded[1 + i : 1 + i + height, 1 + j : 1 + j + width]
                     for i in (-1, 0, 1) for j in (-1, 0, 1)], axis=0)  # fmt: skip
    for (run, shape), circle in CIRCLES.items():
        ax = axes[["digs", "steik-seed1"].index(run), ["circle", "l_shape"].index(shape)]
        rows, columns = np.floor(circle_pixels(fig, ax, circle, height)).astype(int).T
        assert nearby[rows, columns].mean() > 0.98, (run, shape)
        # Every pixel of the panel's inside (a margin clear of its black frame) far off the
        # circle: not black.
        (x0, y0), (x1, y1) = ax.get_window_extent().get_points() * 100 / fig.dpi
        r, c = np.mgrid[round(height - y1) + 4 : round(height - y0) - 4,
                        round(x0) + 4 : round(x1) - 4]  # fmt: skip
        to_data = ax.transData.inverted()
        xy = to_data.transform(np.stack([c.ravel() + 0.5, height - r.ravel() - 0.5], 1) * fig.dpi
                               / 100)  # fmt: skip
        far = np.abs(np.linalg.norm(xy - circle[0], axis=1) - circle[1]) > 0.06
        assert far.sum() > 0.5 * far.size
        assert dark[r.ravel()[far], c.ravel()[far]].mean() < 1e-3, (run, shape)
        assert dark[r.ravel()[~far], c.ravel()[~far]].any()
    # The command writes the image of the figure built here.
    command = levelset_figure(models, samples, tmp_path / "command.png", resolution=128)
    np.testing.assert_array_equal(mpimg.imread(command), image)


def test_snapshot_strip_shows_each_snapshot_in_order(tmp_path):
    """Two runs with three snapshots each, every snapshot a different circle: each panel draws
    its snapshot's circle under its training fraction and weight, and the top plot is the
    divergence-weight schedule of the runs' configuration."""
    sample_path = write_sample_2d(tmp_path / "samples", "circle")
    radii = {"digs": [0.2, 0.3, 0.4], "steik": [0.5, 0.35, 0.45]}
    paths = []
    for run, run_radii in radii.items():
        # The snapshots share their run's configuration (so its sphere scaling): not every field
        # is then an exact SDF, but each one's zero level set is its circle.
        config = circle_config(run, 0.3 / SCALE)
        states = [circle_state(config, ((0.05, 0.0), r)) for r in run_radii]
        path = tmp_path / run / "circle" / "snapshots.pt"
        path.parent.mkdir(parents=True)
        iterations = [config.iterations // 4, config.iterations // 2, config.iterations]
        schedule = WeightSchedule.from_knots(config.schedule, config.schedule_knots)
        weights = [schedule(i / config.iterations) for i in iterations]
        paths.append(
            save_snapshots(
                path, model_meta(config, sample_path), iterations, weights, states, [1.0, 2.0, 3.0]
            )
        )
    fig = build_snapshot_figure(paths, sample_path, resolution=96)
    top, *panels = fig.axes
    assert len(panels) == 6
    for i, (run, run_radii) in enumerate(radii.items()):
        row = panels[3 * i : 3 * i + 3]
        assert row[0].get_ylabel() == run_label(run)
        weights = load_snapshots(paths[i])[1].w_div
        for ax, r, fraction, w in zip(row, run_radii, (0.25, 0.5, 1.0), weights, strict=True):
            assert_draws_circle(ax, ((0.05, 0.0), r), tolerance=4e-3)
            assert ax.get_title() == f"t={fraction:.2f}, w_div={w:g}"
    # The schedule: knots (w0, f1, w1, ..., w_end) joined by straight lines (linear schedule).
    config = circle_config("digs", 1.0)
    assert config.schedule == "linear"
    knots = config.schedule_knots
    fractions = [0.0, *knots[1:-1:2], 1.0]
    weights = [knots[0], *knots[2:-1:2], knots[-1]]
    t, w = top.get_lines()[0].get_xydata().T
    np.testing.assert_allclose(w, np.interp(t, fractions, weights), atol=1e-9)
    markers = [ln.get_xdata()[0] for ln in top.get_lines()[1:]]
    assert markers == pytest.approx([0.25, 0.5, 1.0])


@pytest.mark.slow
def test_levelset_figure_from_trained_models(tmp_path):
    """Trained networks (whose zero level sets nobody knows in closed form): each panel's bold
    curve is where its own model is zero, in the row of its method."""
    from steik.data.sample import SampleConfig, sample_curve
    from steik.train import train

    arrays = sample_curve("circle", SampleConfig(n_points=300, n_gt=500, n_occ=0))
    sample = Sample(dataset="demo2d", shape="circle", ground_truth="mesh",
                    source="generated:circle", source_sha256="0" * 64, **arrays)  # fmt: skip
    sample_path = write_sample(tmp_path / "samples" / "circle.npz", sample)
    models = []
    for method in ("siren_wo_n", "steik"):
        config = preset(method, "2d", hidden=32, layers=2, iterations=3, n_manifold=100,
                        n_offsurface=100, checkpoint_every=0)  # fmt: skip
        train([sample_path], config, tmp_path / method, quiet=True)
        models.append(tmp_path / method / "circle" / "model.pt")
    fig = build_levelset_figure(models, [sample_path], resolution=60)
    assert [ax.get_ylabel() for ax in fig.axes] == ["SIREN wo n", "StEik"]
    assert zero_contours(fig.axes[0])  # SIREN's field crosses zero in its panel
    for ax, model in zip(fig.axes, models, strict=True):
        assert_zero_set_of(ax, load_model(model)[0], sample_path, resolution=60)
