"""`steik train`'s entry: train sample files' shapes as one K-batch with the standard hooks, and
turn running out of memory into advice (`steik.trainer` holds the loop, `steik.hooks` the
hooks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from steik.errors import SteikError
from steik.hooks import CheckpointHook, ProgressHook, SnapshotHook
from steik.methods import MethodConfig
from steik.model import ModelRecord
from steik.seeds import check_seed
from steik.trainer import Hook, Resume, Trainer, read_shape


def train(
    sample_paths: Sequence[str | Path],
    config: MethodConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: torch.device | str = "cpu",
    resume: Resume = "never",
    quiet: bool = False,
    dtype: torch.dtype = torch.float32,
    snapshots: Sequence[float] = (),
    checkpoint: str | Path | None = None,
    record: str | Path | None = None,
) -> list[ModelRecord]:
    """Train every sample file's shape with `config`, together as one K-batch.

    Writes `<out_dir>/<stem>/model.pt` and `train_log.parquet` per input (and `snapshots.pt`
    with `snapshots` fractions, the batch `record` when given) and returns the models' metadata.
    """
    check_seed(seed)
    shapes = [read_shape(p) for p in sample_paths]
    hooks: list[Hook] = [ProgressHook(quiet), CheckpointHook()]
    if snapshots:
        hooks.append(SnapshotHook(tuple(snapshots)))
    try:
        trainer = Trainer(shapes, config, out_dir, seed, device, dtype, hooks, checkpoint)
        trainer.resume(resume)
        return trainer.run(record)
    except RuntimeError as error:  # torch.OutOfMemoryError is one
        if not _out_of_memory(error):
            raise
        fix = (
            "lower train.batch_size (fewer shapes per job)"
            if len(shapes) > 1
            else "use a device with more memory"
        )
        raise SteikError(
            f"training {', '.join(s.name for s in shapes)} ({len(shapes)} shape(s) as one batch, "
            f"{config.n_manifold} + {config.n_offsurface} points per iteration) ran out of memory "
            f"on {device}; {fix} or lower the points per iteration (n_manifold, n_offsurface)"
        ) from None


def _out_of_memory(error: RuntimeError) -> bool:
    """Whether `error` is PyTorch's report of a failed allocation (GPU or CPU)."""
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)
