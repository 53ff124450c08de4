"""The model file contract: networks from configurations, typed model and snapshot records, and
the check that a model belongs to a sample file.

A model file (`model.pt`, written by `steik train`) holds one trained network (K = 1) with
everything needed to rebuild and judge it (`ModelRecord`): the full method configuration, the
sample's normalisation (`center`, `scale`), the digest of the points it was trained on, seed,
iterations, status, timings and versions. A snapshot file (`snapshots.pt`) holds the same network
at several points of its training (`SnapshotRecord`). Every stage that reads a network goes
through `load_model` / `load_snapshots`, so a file from another configuration, another shape or
a damaged download is refused the same way everywhere.

On disk both files stay plain dictionaries (the configuration as `MethodConfig.as_dict`, the
record's other fields as flat keys beside it), so files written before the records were typed
load unchanged, and older readers read the files written now.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch

from steik.checkpoint import read_torch_file
from steik.data.sample import Sample
from steik.errors import SteikError
from steik.fileio import array_digest, atomic_path
from steik.methods import MethodConfig, network_kwargs
from steik.nn import SDFNetwork

MODEL_FORMAT = "steik-model/1"
SNAPSHOT_FORMAT = "steik-snapshots/1"


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """What model and snapshot files both record about the training run of one shape."""

    config: MethodConfig
    config_hash: str
    """`config.digest()` when the run was trained."""
    shape: str
    dim: int
    points_digest: str
    """`array_digest` of the training points: ties the network to its sample file."""
    center: tuple[float, ...]
    """`[d]`: the sample's normalisation, original = normalised * scale + center."""
    scale: float
    seed: int
    train_seconds: float
    """Training seconds of the whole batch so far."""
    ms_per_iter: float
    """Median milliseconds per iteration of the divergence phase (NaN before any)."""
    n_params: int
    """Parameters of one shape's network."""
    device: str
    torch_version: str
    steik_version: str
    n_shapes_batch: int
    """Shapes trained together in one K-batched network (they share `train_seconds`)."""

    def to_payload(self) -> dict[str, Any]:
        """The record as a model file stores it (plain values, the configuration as a dict)."""
        payload: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, MethodConfig):
                value = value.as_dict()
            elif isinstance(value, tuple):
                value = list(value)
            payload[field.name] = value
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], path: Path, fix: str) -> Self:
        """The record of a file's payload (keys of fields this version lacks are ignored); a file
        without one of the record's fields is a SteikError naming `path` and `fix`."""
        fields = dataclasses.fields(cls)
        required = [f.name for f in fields if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in payload]
        if missing:
            raise SteikError(f"{path}: the file lacks {', '.join(missing)}; {fix}")
        values = {f.name: payload[f.name] for f in fields if f.name in payload}
        values["config"] = MethodConfig.from_dict(payload["config"])
        values["center"] = tuple(float(v) for v in payload["center"])
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class ModelRecord(RunRecord):
    """The metadata of a model file: the run and how its training ended."""

    iterations: int
    """Optimisation steps taken."""
    status: str
    """`ok`, or `diverged` when the loss or gradients turned non-finite."""
    message: str
    """Why training stopped early (empty when it did not)."""
    step: str | None = None
    """The derivative path the training steps took (`explicit`, `compiled` or `autograd`; the
    config's `step` resolved); None in files written before it was recorded."""


@dataclass(frozen=True, kw_only=True)
class SnapshotRecord(RunRecord):
    """The metadata of a snapshot file: the run, then per kept network (in order) the steps
    taken, the divergence weight in force and the training seconds spent to reach it."""

    iterations: tuple[int, ...]
    w_div: tuple[float, ...]
    seconds: tuple[float, ...]
    """NaN in files written before the seconds were kept."""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], path: Path, fix: str) -> Self:
        """As `RunRecord.from_payload`, the per-network lists as tuples (seconds NaN where the
        file has none)."""
        values = dict(payload)
        values.setdefault("seconds", [math.nan] * len(values.get("iterations", ())))
        for key, kind in (("iterations", int), ("w_div", float), ("seconds", float)):
            if key in values:
                values[key] = tuple(kind(v) for v in values[key])
        return super().from_payload(values, path, fix)


def build_network(
    config: MethodConfig, dim: int, n_shapes: int = 1, seeds: Sequence[int] | None = None
) -> SDFNetwork:
    """The network a configuration describes, for `n_shapes` shapes (`[K, N, d] -> [K, N]`)."""
    return SDFNetwork(dim, n_shapes=n_shapes, seeds=seeds, **network_kwargs(config))


def _cpu_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A K = 1 state dict as stored: float32 tensors on the CPU."""
    return {name: t.detach().to("cpu", torch.float32) for name, t in state.items()}


def save_model(path: str | Path, record: ModelRecord, state: dict[str, torch.Tensor]) -> Path:
    """Write a model file atomically: `record` plus the K = 1 `state` (float32 on CPU)."""
    with atomic_path(path) as tmp:
        payload = {"format": MODEL_FORMAT, **record.to_payload(), "state_dict": _cpu_state(state)}
        torch.save(payload, tmp)
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
) -> tuple[SDFNetwork, ModelRecord]:
    """Rebuild exactly the trained network of a model file (K = 1, eval mode) and its record."""
    path = Path(path)
    fix = "train it again (`steik train`)"
    payload = _read(path, "model", MODEL_FORMAT, fix)
    record = ModelRecord.from_payload(payload, path, fix)
    net = build_network(record.config, record.dim, 1)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise SteikError(
            f"{path}: its weights do not fit its configuration ({error}); train it again"
        ) from None
    return net.to(device).eval(), record


def save_snapshots(
    path: str | Path,
    run: RunRecord,
    iterations: Sequence[int],
    w_div: Sequence[float],
    states: Sequence[dict[str, torch.Tensor]],
    seconds: Sequence[float],
) -> Path:
    """Write a snapshot file atomically: the network (K = 1 states) after each of `iterations`
    optimisation steps, with the divergence weight in force there and the training seconds
    spent to reach it (what a quality-per-compute curve plots). Of `run` only the fields of
    `RunRecord` are kept (a `ModelRecord`'s status and step count describe the end of training,
    not a snapshot)."""
    shared = {field.name for field in dataclasses.fields(RunRecord)}
    payload = {
        "format": SNAPSHOT_FORMAT,
        **{key: value for key, value in run.to_payload().items() if key in shared},
        "iterations": [int(i) for i in iterations],
        "w_div": [float(w) for w in w_div],
        "seconds": [float(t) for t in seconds],
        "states": [_cpu_state(s) for s in states],
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_snapshots(path: str | Path) -> tuple[list[SDFNetwork], SnapshotRecord]:
    """The networks (K = 1, eval mode) of a snapshot file and its record."""
    path = Path(path)
    fix = "train the run again with snapshots"
    payload = _read(path, "snapshot", SNAPSHOT_FORMAT, fix)
    record = SnapshotRecord.from_payload(payload, path, fix)
    networks = []
    for state in payload["states"]:
        net = build_network(record.config, record.dim, 1)
        net.load_state_dict(state)
        networks.append(net.eval())
    return networks, record


def check_model_matches_sample(
    record: RunRecord, sample: Sample, model_path: str | Path, sample_path: str | Path
) -> None:
    """Refuse a model (or snapshot file) that was not trained on this sample's points."""
    if record.dim != sample.dim:
        raise SteikError(
            f"model {model_path} is {record.dim}D but sample {sample_path} is {sample.dim}D; "
            "pass the sample file the model was trained on"
        )
    if record.points_digest != array_digest(sample.points):
        raise SteikError(
            f"model {model_path} was not trained on the points of {sample_path}; pass the sample "
            "file it was trained on (or train again)"
        )
