"""The model file contract: networks from configurations, model and snapshot files, and the check
that a model belongs to a sample file.

A model file (`model.pt`, written by `steik train`) holds one trained network (K = 1) with
everything needed to rebuild and judge it: the full method configuration, the sample's
normalisation (`center`, `scale`), the digest of the points it was trained on, seed, iterations,
status, timings and versions. A snapshot file (`snapshots.pt`) holds the same network at several
points of its training. Every stage that reads a network goes through `load_model` /
`load_snapshots`, so a file from another configuration, another shape or a damaged download
is refused the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from steik.checkpoint import read_torch_file
from steik.data.sample import Sample
from steik.errors import SteikError
from steik.fileio import array_digest, atomic_path
from steik.methods import MethodConfig, network_kwargs
from steik.nn import SDFNetwork

MODEL_FORMAT = "steik-model/1"
SNAPSHOT_FORMAT = "steik-snapshots/1"

ModelMeta = dict[str, Any]
"""A model file's metadata: `config` (MethodConfig.as_dict), `config_hash`, `shape`, `dim`,
`points_digest`, `center`, `scale`, `seed`, `iterations`, `status`, `message`, `train_seconds`,
`ms_per_iter`, `n_params`, `device`, `step` (the derivative path the training steps took:
explicit, compiled or autograd; absent in older files), `torch_version`, `steik_version`,
`n_shapes_batch`."""


def build_network(
    config: MethodConfig, dim: int, n_shapes: int = 1, seeds: Sequence[int] | None = None
) -> SDFNetwork:
    """The network a configuration describes, for `n_shapes` shapes (`[K, N, d] -> [K, N]`)."""
    return SDFNetwork(dim, n_shapes=n_shapes, seeds=seeds, **network_kwargs(config))


def save_model(path: str | Path, meta: ModelMeta, state: dict[str, torch.Tensor]) -> Path:
    """Write a model file atomically: `meta` plus the K = 1 `state` (stored as float32 on CPU)."""
    weights = {name: t.detach().to("cpu", torch.float32) for name, t in state.items()}
    with atomic_path(path) as tmp:
        torch.save({"format": MODEL_FORMAT, **meta, "state_dict": weights}, tmp)
    return Path(path)


def _read(path: Path, kind: str, expected: str, fix: str) -> dict[str, Any]:
    """A torch file's payload dict, checked for its format tag; SteikError naming `path` else."""
    if not path.is_file():
        raise SteikError(f"{path}: no such {kind} file; {fix}")
    payload = read_torch_file(path, kind, fix)
    if not isinstance(payload, dict) or payload.get("format") != expected:
        raise SteikError(f"{path}: not a steik {kind} file ({expected} expected); {fix}")
    return payload


def load_model(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[SDFNetwork, ModelMeta]:
    """Rebuild exactly the trained network of a model file (K = 1, eval mode) and its metadata."""
    path = Path(path)
    payload = _read(path, "model", MODEL_FORMAT, "train it again (`steik train`)")
    state = payload.pop("state_dict")
    config = MethodConfig.from_dict(payload["config"])
    net = build_network(config, int(payload["dim"]), 1)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise SteikError(
            f"{path}: its weights do not fit its configuration ({error}); train it again"
        ) from None
    return net.to(device).eval(), payload


def save_snapshots(
    path: str | Path,
    meta: ModelMeta,
    iterations: Sequence[int],
    w_div: Sequence[float],
    states: Sequence[dict[str, torch.Tensor]],
    seconds: Sequence[float],
) -> Path:
    """Write a snapshot file atomically: the network (K = 1 states) after each of `iterations`
    optimisation steps, with the divergence weight in force there and the training seconds
    spent to reach it (what a quality-per-compute curve plots)."""
    payload = {
        "format": SNAPSHOT_FORMAT,
        **meta,
        "iterations": [int(i) for i in iterations],
        "w_div": [float(w) for w in w_div],
        "seconds": [float(t) for t in seconds],
        "states": [{n: t.detach().to("cpu", torch.float32) for n, t in s.items()} for s in states],
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_snapshots(path: str | Path) -> tuple[list[SDFNetwork], ModelMeta]:
    """The networks (K = 1, eval mode) of a snapshot file and its metadata (`iterations`,
    `w_div`, `seconds` (training seconds; NaN in files written before they were kept), and the
    model metadata of the run)."""
    path = Path(path)
    payload = _read(path, "snapshot", SNAPSHOT_FORMAT, "train the run again with snapshots")
    config = MethodConfig.from_dict(payload["config"])
    networks = []
    for state in payload.pop("states"):
        net = build_network(config, int(payload["dim"]), 1)
        net.load_state_dict(state)
        networks.append(net.eval())
    return networks, payload


def check_model_matches_sample(
    meta: ModelMeta, sample: Sample, model_path: str | Path, sample_path: str | Path
) -> None:
    """Refuse a model (or snapshot file) that was not trained on this sample's points."""
    if int(meta.get("dim", sample.dim)) != sample.dim:
        raise SteikError(
            f"model {model_path} is {meta.get('dim')}D but sample {sample_path} is {sample.dim}D; "
            "pass the sample file the model was trained on"
        )
    if meta.get("points_digest") != array_digest(sample.points):
        raise SteikError(
            f"model {model_path} was not trained on the points of {sample_path}; pass the sample "
            "file it was trained on (or train again)"
        )
