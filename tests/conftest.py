"""Shared fixtures: small sample files written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    """Two cores are shared by the whole suite: keep each test's torch on one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_sphere_sample(
    path: Path, n: int = 2000, dim: int = 3, radius: float = 0.8, seed: int = 0
) -> Path:
    """A sample file whose points lie on a sphere (circle in 2D) of `radius` about the origin."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, dim))
    p = radius * p / np.linalg.norm(p, axis=1, keepdims=True)
    np.savez(
        path,
        points=p.astype(np.float32),
        normals=(p / radius).astype(np.float32),
        center=np.zeros(dim),
        scale=np.float64(1.0),
    )
    return path


@pytest.fixture
def sphere_npz(tmp_path: Path) -> Path:
    return write_sphere_sample(tmp_path / "sphere.npz")
