"""Training batches: bounded, complete, independent of listing order, and stable when a shape is
added (the property that keeps a grown folder dataset from retraining everything)."""

from __future__ import annotations

import random
import re

import pytest
import trimesh
import yaml
from test_workflow import snakemake

from steik.batching import split_batches
from steik.errors import SteikError


def _names(n: int, rng: random.Random) -> list[str]:
    return [f"scan-{rng.randrange(10**6):06d}" for _ in range(n)]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 16])
def test_batches_cover_every_shape_once_within_the_size(size):
    rng = random.Random(size)
    for n in (0, 1, size, size + 1, 40):
        shapes = list(dict.fromkeys(_names(n, rng)))
        batches = split_batches(shapes, size)
        members = [s for group in batches.values() for s in group]
        assert sorted(members) == sorted(shapes)
        assert all(1 <= len(group) <= size for group in batches.values())
        if len(shapes) <= size:
            assert list(batches) == (["b"] if shapes else [])


def test_batches_do_not_depend_on_the_listing_order():
    shapes = [f"shape_{i}" for i in range(30)]
    shuffled = shapes[::-1]
    random.Random(0).shuffle(shuffled)
    assert split_batches(shapes, 4) == split_batches(shuffled, 4)


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_adding_a_shape_changes_at_most_one_batch(size):
    """The old batch of the new shape's branch may split in two; every other batch stays."""
    rng = random.Random(100 + size)
    for trial in range(50):
        shapes = list(dict.fromkeys(_names(rng.randrange(1, 60), rng)))
        new = f"added-{trial}"
        before = split_batches(shapes, size)
        after = split_batches([*shapes, new], size)
        unchanged = {name: group for name, group in after.items() if before.get(name) == group}
        changed_before = {n: g for n, g in before.items() if after.get(n) != g}
        changed_after = {n: g for n, g in after.items() if n not in unchanged}
        assert len(changed_before) <= 1, (shapes, new)
        # What changed holds exactly the old batch's shapes plus the new one.
        old = [s for g in changed_before.values() for s in g]
        assert sorted(s for g in changed_after.values() for s in g) == sorted([*old, new])


def test_bad_batching_input_is_refused():
    with pytest.raises(SteikError, match="at least 1"):
        split_batches(["a"], 0)
    with pytest.raises(SteikError, match="unique"):
        split_batches(["a", "a"], 2)


def _train_batches(output: str) -> dict[str, tuple[str, ...]]:
    """Training record path -> the sample files it trains, from a dry run's printed commands."""
    batches = {}
    for line in output.splitlines():
        match = re.search(r"steik train --points (.+?) --out .* --record (\S+)", line)
        if match:
            batches[match[2]] = tuple(sorted(match[1].split()))
    return batches


def test_a_file_added_to_a_folder_dataset_retrains_one_batch(tmp_path):
    """The workflow's batches of a folder dataset of 9 scans (batch size 2), before and after a
    10th file arrives, named to sort first (chunks of a sorted list would all shift): every
    training job but the new shape's batch keeps its inputs and its output."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(9):
        trimesh.creation.icosphere(subdivisions=1, radius=0.5 + 0.05 * i).export(
            scans / f"scan-{i:02d}.ply"
        )
    config = {
        "datasets": [{"name": "mine", "kind": "folder", "path": str(scans), "pattern": "*.ply"}],
        "methods": ["steik"],
        "train": {"batch_size": 2},
    }
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(config))

    def batches() -> dict[str, tuple[str, ...]]:
        result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
        assert result.returncode == 0, result.stderr + result.stdout
        return _train_batches(result.stdout)

    before = batches()
    assert sum(len(v) for v in before.values()) == 9 and all(len(v) <= 2 for v in before.values())
    trimesh.creation.box().export(scans / "added-scan.ply")  # sorts first
    after = batches()
    assert sum(len(v) for v in after.values()) == 10
    kept = {record for record in before if after.get(record) == before[record]}
    assert len(before) - len(kept) <= 1
    new_jobs = set(after) - kept
    assert 1 <= len(new_jobs) <= 2  # the new shape's batch, split in two if it overflowed
    assert any("added-scan" in sample for job in new_jobs for sample in after[job])
