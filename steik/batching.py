"""Training batches: which shapes of a dataset train together, chosen so that membership is stable.

The shapes of one (dataset, method, seed) are split into batches of at most `size` shapes that
train as one K-batched network. A batch is a leaf of a binary tree over the bits of each name's
sha256: a node holding more than `size` shapes splits by its next bit. A shape's batch therefore
depends only on its own name and on the shapes that share its branch, so adding a shape to a
folder dataset changes one batch (which may split in two) and leaves every other batch, and its
finished training, as it was. Batch names are `b` followed by the branch's bits (`b` alone for a
dataset that fits one batch).

The stages after training (extraction, screened Poisson, evaluation) handle a batch's shapes in
one process: `each_shape` is their common loop over the per-shape arguments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from steik.errors import SteikError

T = TypeVar("T")


def _bits(name: str) -> str:
    """The 256 bits of the name's sha256, as a string of 0 and 1."""
    return bin(int(hashlib.sha256(name.encode()).hexdigest(), 16))[2:].zfill(256)


def split_batches(shapes: Sequence[str], size: int) -> dict[str, list[str]]:
    """Batch name -> its shapes (sorted), every batch at most `size` shapes, names sorted."""
    if size < 1:
        raise SteikError(f"batch size must be at least 1, got {size}")
    if len(set(shapes)) != len(shapes):
        raise SteikError(f"shape names must be unique to be batched, got {list(shapes)}")
    bits = {name: _bits(name) for name in shapes}
    batches: dict[str, list[str]] = {}

    def split(prefix: str, members: list[str]) -> None:
        if len(members) <= size:
            if members:
                batches[f"b{prefix}"] = sorted(members)
            return
        depth = len(prefix)
        split(prefix + "0", [m for m in members if bits[m][depth] == "0"])
        split(prefix + "1", [m for m in members if bits[m][depth] == "1"])

    split("", list(shapes))
    return dict(sorted(batches.items()))


def each_shape(per_shape: Mapping[str, Sequence[Any]], work: Callable[..., T]) -> list[T]:
    """`work(*entries)` for every shape of a batch in turn, collecting what it returns.

    `per_shape` maps each command-line flag (`--model`, `--sample`, `--out`, ...) to its entries,
    one per shape; a batch whose flags have different numbers of entries is refused before any
    shape is handled, so that no output of a mismatched batch is written.
    """
    counts = [len(entries) for entries in per_shape.values()]
    if len(set(counts)) > 1:
        *first, last = per_shape
        raise SteikError(
            f"{', '.join(first)} and {last} need one entry per shape each; got "
            f"{', '.join(map(str, counts))}"
        )
    return [work(*entries) for entries in zip(*per_shape.values(), strict=True)]
