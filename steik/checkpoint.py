"""Checkpoints of a training batch: one file, written atomically, that a resumed run trusts.

A batch of K shapes is checkpointed as a whole (network, optimiser, every shape's generator,
log and divergence state) into a single file that replaces the previous one by rename, so a
kill at any moment leaves either the previous checkpoint or the new one, never a mix. The file
names what it belongs to (configuration digest, seed, shape names and point digests): a
checkpoint of another run is refused, or set aside when the caller asks to resume only if it
fits (a changed configuration after an interrupted run must not block the next one).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from steik.errors import SteikError
from steik.fileio import atomic_path

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "steik-checkpoint/2"
IDENTITY_KEYS = ("config_digest", "seed", "shapes", "points_digests")


def save_checkpoint(path: str | Path, identity: dict[str, Any], state: dict[str, Any]) -> Path:
    """Write `state` under `identity` to `path`, replacing any previous checkpoint atomically."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **identity, "state": state}, tmp)
    return Path(path)


def read_torch_file(path: Path, kind: str, fix: str) -> Any:
    """The payload of a file `torch.save` wrote, loaded with `weights_only=True` (tensors and
    plain containers only, so a foreign file can run no code); any failure is one SteikError
    naming `path` and `fix`. torch's own message is left out: it spans several lines and
    suggests `weights_only=False`, which must never be used on a file of unknown origin."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for damaged or foreign files
        raise SteikError(
            f"{path}: unreadable {kind} file (damaged, or not a {kind} file steik wrote); {fix}"
        ) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint's payload (identity keys plus `state`); SteikError if it is not readable."""
    path = Path(path)
    payload = read_torch_file(path, "checkpoint", "delete it or train from scratch")
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise SteikError(f"{path}: not a steik batch checkpoint; delete it or train from scratch")
    return payload


def mismatch(payload: dict[str, Any], identity: dict[str, Any]) -> str | None:
    """What differs between a checkpoint and the run resuming from it (None: it fits)."""
    for key in IDENTITY_KEYS:
        if payload.get(key) != identity[key]:
            return f"{key} differs: {payload.get(key)!r} in the checkpoint, {identity[key]!r} now"
    return None


def set_aside(path: str | Path, reason: str) -> Path:
    """Move an unusable checkpoint out of the way (to `<name>.incompatible.pt`, replacing an
    older one) with one warning, so that training starts from scratch."""
    path = Path(path)
    aside = path.with_name(f"{path.stem}.incompatible{path.suffix}")
    path.replace(aside)
    log.warning(
        "%s does not fit this run (%s); set aside as %s, training from scratch",
        path,
        reason,
        aside.name,
    )
    return aside
