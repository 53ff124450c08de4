"""Helpers of the 2D bench scripts: the SPEC 9 sample files, made where trimesh is absent too.

`steik.data.sample` imports trimesh and point-cloud-utils (and the registry manifold3d) at
module level although the 2D curves use none of them; on GPU machines without those packages
they are replaced by empty stand-in modules (for this process only), so that the pure-numpy
`sample_curve` still runs there.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

SHAPES = ("circle", "l_shape", "snowflake")


def _import_sample_module():
    for name in ("trimesh", "point_cloud_utils", "manifold3d"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    from steik.data import sample

    return sample


def make_samples(folder: Path, n_points: int = 15_000, n_gt: int = 20_000) -> list[Path]:
    """`folder/<shape>.npz` for the three SPEC 9 shapes (as `steik sample demo2d`), if absent."""
    sample = _import_sample_module()
    paths = []
    for shape in SHAPES:
        path = Path(folder) / f"{shape}.npz"
        if not path.is_file():
            config = sample.SampleConfig(n_points=n_points, n_gt=n_gt, seed=0)
            sample.write_sample(path, sample.build_sample("demo2d", shape, config=config))
        paths.append(path)
    return paths
