"""The generated 3D demo shapes: exact watertight meshes built without any download.

A sphere and a torus (smooth), and three shapes with sharp features and fine detail: a box with
grooves, a gear-like extrusion with a bore, and a CSG combination (cube ∩ sphere minus three
cylinders). They are built with manifold3d, whose boolean operations always return a closed
manifold, so the meshes are valid ground truth for inside/outside tests. Construction is
deterministic: the same code gives the same vertices, bit for bit, and `mesh_bytes` gives the
canonical PLY bytes whose sha256 identifies a shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import manifold3d as mf
import numpy as np
import trimesh

from steik.data.registry import REGISTRY
from steik.errors import SteikError

SHAPES_3D: tuple[str, ...] = REGISTRY["demo3d"].shapes
"""Names of the demo3d shapes, in dataset order (the registry's record holds them)."""

_SEGMENTS = 128
"""Circular resolution: fine enough that the facets are far below the metric resolution."""


def _sphere() -> mf.Manifold:
    return mf.Manifold.sphere(0.5, _SEGMENTS)


def _torus() -> mf.Manifold:
    tube = mf.CrossSection.circle(0.15, _SEGMENTS // 2).translate((0.35, 0.0))
    return mf.Manifold.revolve(tube, _SEGMENTS)


def _grooved_box() -> mf.Manifold:
    """A 0.8 x 0.8 x 0.5 box with three grooves across the top and two along one side."""
    box = mf.Manifold.cube((0.8, 0.8, 0.5), center=True)
    cuts = []
    for x in (-0.2, 0.0, 0.2):  # grooves 0.04 wide, 0.1 deep, across the top face
        cuts.append(mf.Manifold.cube((0.04, 1.0, 0.2), center=True).translate((x, 0.0, 0.25)))
    for z in (-0.1, 0.1):  # grooves 0.03 wide, 0.08 deep, along the +x side
        cuts.append(mf.Manifold.cube((0.16, 1.0, 0.03), center=True).translate((0.4, 0.0, z)))
    return box - mf.Manifold.batch_boolean(cuts, mf.OpType.Add)


def _gear() -> mf.Manifold:
    """A 16-tooth gear outline (trapezoidal teeth) extruded to 0.25, with a 0.12-radius bore."""
    teeth, root, tip = 16, 0.36, 0.46
    outline = []
    for k in range(teeth):
        base = 2.0 * math.pi * k / teeth
        pitch = 2.0 * math.pi / teeth
        # Root arc, flank up, flat tip, flank down: four corners per tooth.
        for fraction, radius in ((0.0, root), (0.25, root), (0.4, tip), (0.6, tip), (0.75, root)):
            angle = base + fraction * pitch
            outline.append((radius * math.cos(angle), radius * math.sin(angle)))
    profile = mf.CrossSection([outline]) - mf.CrossSection.circle(0.12, _SEGMENTS // 2)
    return mf.Manifold.extrude(profile, 0.25).translate((0.0, 0.0, -0.125))


def _csg() -> mf.Manifold:
    """The classic CSG example: (cube ∩ sphere) minus three orthogonal cylinders."""
    body = mf.Manifold.cube((0.8, 0.8, 0.8), center=True) ^ mf.Manifold.sphere(0.52, _SEGMENTS)
    bar = mf.Manifold.cylinder(1.2, 0.2, 0.2, _SEGMENTS // 2, center=True)
    holes = mf.Manifold.batch_boolean(
        [bar, bar.rotate((90.0, 0.0, 0.0)), bar.rotate((0.0, 90.0, 0.0))], mf.OpType.Add
    )
    return body - holes


_BUILDERS: dict[str, Callable[[], mf.Manifold]] = {
    "sphere": _sphere,
    "torus": _torus,
    "grooved_box": _grooved_box,
    "gear": _gear,
    "csg": _csg,
}


def make_mesh(name: str) -> trimesh.Trimesh:
    """The watertight ground-truth mesh of demo shape `name` (vertices `[V, 3]`, faces `[F, 3]`)."""
    if name not in _BUILDERS:
        raise SteikError(f"unknown demo3d shape {name!r}; choose one of {', '.join(SHAPES_3D)}")
    solid = _BUILDERS[name]()
    raw = solid.to_mesh()
    # float32 vertices, as stored in the PLY file, so the in-memory mesh and the file agree exactly.
    mesh = trimesh.Trimesh(
        vertices=np.asarray(raw.vert_properties, dtype=np.float32)[:, :3].astype(np.float64),
        faces=np.asarray(raw.tri_verts, dtype=np.int64),
        process=True,
    )
    if not mesh.is_watertight or not mesh.is_winding_consistent or mesh.volume <= 0:
        raise SteikError(f"demo3d shape {name!r} did not build a closed, outward-oriented mesh")
    return mesh


def mesh_bytes(mesh: trimesh.Trimesh) -> bytes:
    """Canonical binary PLY bytes of a mesh (what `steik fetch demo3d` writes and hashes)."""
    return trimesh.exchange.ply.export_ply(mesh, encoding="binary", include_attributes=False)
