"""The Snakemake workflow: dry runs of every shipped config, config validation, lint.

Each test runs the real `snakemake` of the venv on the repository's Snakefile with
`--directory` pointing at a temporary folder, so nothing is written into the checkout.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

SRB_SHAPES = 5  # SPEC 9: anchor, daratech, dc, gargoyle, lord_quas
DEMO3D_DEFAULT = 3  # config/config.yaml restricts demo3d to 3 shapes
DEMO2D_SHAPES = 3  # SPEC 9: circle, L, snowflake


def snakemake(workdir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in `workdir`; output captured as text.

    PATH leaves out the venv, as for a user who runs `.venv/bin/snakemake` without activating
    it: the workflow itself must make the jobs find `steik`. PYTHONPATH names this checkout, so
    the workflow and its jobs run the code under test even where the venv's editable install
    points at another checkout."""
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            "PATH": "/usr/bin:/bin",
            "OMP_NUM_THREADS": "1",
            "HOME": str(workdir),
            "PYTHONPATH": str(ROOT),
        },
    )


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    counts: dict[str, int] = {}
    table = output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    assert counts.pop("total") == sum(counts.values())
    return counts


def expected(
    datasets: dict[str, int], runs: int, fetch: int, poisson: int = 0
) -> dict[str, int]:
    """Job counts up to the tables of a config whose datasets each train as one batch per run
    (`runs` = neural methods x seeds per dataset, summed; `poisson` = datasets reconstructed by
    screened Poisson); figure rules are added by the caller."""
    counts = {
        "fetch": fetch,
        "sample": sum(datasets.values()),
        "train": runs,
        "extract": runs,
        "evaluate": runs + poisson,
        "tables": len(datasets),
        "runtime_table": 1,
        "all": 1,
    }
    if poisson:
        counts["reconstruct"] = poisson
    return counts


@pytest.mark.slow
@pytest.mark.parametrize(
    ("configfile", "want"),
    [
        (
            "config/config.yaml",
            # demo3d: DiGS and StEik x 1 seed + screened Poisson, demo2d: DiGS and StEik x 1 seed
            # (Poisson is 3D only); every dataset's shapes train as one batch per (method, seed);
            # both datasets keep snapshots, so both get the quality figure.
            {
                **expected({"demo3d": DEMO3D_DEFAULT, "demo2d": DEMO2D_SHAPES}, 2 + 2, 2, 1),
                "levelsets": 1,
                "renders": 1,
                "losses": 2,
                "snapshots": 1,
                "quality": 2,
            },
        ),
        (
            "config/srb.yaml",
            # Table 1's seven rows and screened Poisson.
            {**expected({"srb": SRB_SHAPES}, 7, 1, 1), "renders": 1, "losses": 1},
        ),
        (
            "config/srb_cpu.yaml",
            # DiGS and StEik (one batch of the five scans each) and screened Poisson.
            {**expected({"srb": SRB_SHAPES}, 2, 1, 1), "renders": 1, "losses": 1},
        ),
        (
            "config/scene.yaml",
            {**expected({"scene": 1}, 2, 1), "renders": 1, "losses": 1},
        ),
        # ShapeNet's shape list comes from its archive: before the fetch, the DAG holds the
        # fetch checkpoint and the per-dataset jobs (re-evaluated after the fetch).
        (
            "config/shapenet.yaml",
            {"fetch": 1, "tables": 1, "runtime_table": 1, "renders": 1, "losses": 1, "all": 1},
        ),
        (
            "config/ablation.yaml",
            {"fetch": 1, "tables": 1, "runtime_table": 1, "renders": 1, "losses": 1, "all": 1},
        ),
        (
            "config/2d_cpu.yaml",
            {**expected({"demo2d": DEMO2D_SHAPES}, 15, 1), "levelsets": 1, "losses": 1,
             "snapshots": 1, "quality": 1},
        ),
        (
            "config/2d.yaml",
            {**expected({"demo2d": DEMO2D_SHAPES}, 15, 1), "levelsets": 1, "losses": 1,
             "snapshots": 1, "quality": 1},
        ),
    ],
)
def test_dry_run_job_counts(tmp_path, configfile, want):
    result = snakemake(tmp_path, "-n", "--configfile", str(ROOT / configfile))
    assert result.returncode == 0, result.stderr + result.stdout
    assert job_counts(result.stdout + result.stderr) == want


def train_commands(output: str) -> list[str]:
    """The `steik train ...` command lines a dry run with `-p` prints."""
    return [line[line.index("steik train"):] for line in output.splitlines()
            if "steik train" in line]  # fmt: skip


def _overrides_of(line: str) -> dict:
    """The method overrides (`--overrides JSON`) of a `steik train` command line."""
    import json
    import shlex

    words = shlex.split(line)
    return json.loads(words[words.index("--overrides") + 1])


@pytest.mark.slow
@pytest.mark.parametrize(("configfile", "iterations"), [("config/2d_cpu.yaml", 2000),
                                                        ("config/2d.yaml", 10_000)])
def test_2d_configs_train_one_batch_per_method_and_seed(tmp_path, configfile, iterations):
    """The 2D configs: the three shapes of each (method, seed) train together, with snapshots,
    at the sizes written in the config."""
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(ROOT / configfile))
    assert result.returncode == 0, result.stderr + result.stdout
    trains = train_commands(result.stdout)
    assert len(trains) == 15
    assert all(line.count(".npz") == 3 and "--snapshots 0.1,0.2,0.3,0.4,1.0" in line
               for line in trains)  # fmt: skip
    assert {_overrides_of(line).get("iterations", 10_000) for line in trains} == {iterations}
    seeds = sorted({line.split("--seed ")[1].split()[0] for line in trains})
    assert seeds == ["0", "1", "2"]


@pytest.mark.slow
def test_shapes_key_and_iteration_scale(tmp_path):
    """`shapes` restricts the DAG; `iterations_scale` reaches the train command."""
    config = yaml.safe_load((ROOT / "config" / "srb.yaml").read_text())
    config["shapes"] = ["anchor", "dc"]
    config["train"]["iterations_scale"] = 0.01
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    assert counts["train"] == 7 and counts["sample"] == 2  # one batch per neural method
    trains = train_commands(result.stdout)
    assert len(trains) == 7
    # The presets' iterations (10,000; IGR and its variants 100,000; SAL 2,000) x 0.01, as data.
    iterations = {line.split("--method ")[1].split()[0]: _overrides_of(line)["iterations"]
                  for line in trains}  # fmt: skip
    assert iterations == {"igr_wo_n": 1000, "siren_wo_n": 100, "sal": 20, "igr_ff": 1000,
                          "phase_ff": 1000, "digs": 100, "steik": 100}  # fmt: skip
    assert all("anchor.npz" in line and "dc.npz" in line for line in trains)
    assert any("--method steik --experiment srb" in line for line in trains)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"methodz": ["steik"]}, "methodz"),
        ({"train": {"iterations_scale": "fast"}}, "iterations_scale"),
        ({"extract": {"defaults": {"resolutoin": 64}}}, "resolutoin"),
        ({"resources": {"train": {"gpu": 2}}}, "gpu"),
        ({"train": {"per_dataset": {"demo3d": {"batchsize": 3}}}}, "batchsize"),
        ({"train": {"snapshots": [1.5]}}, "1.5"),
    ],
)
def test_schema_names_the_offending_key(change, key):
    """The schema rejects each mistake and names the key (in-process, fast)."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = {"datasets": ["demo3d"], "methods": ["steik"], **change}
    with pytest.raises(WorkflowError) as error:
        validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert key in str(error.value)
    validate(
        {"datasets": ["demo3d"], "methods": ["steik"]},
        str(ROOT / "workflow" / "schemas" / "config.schema.yaml"),
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"datasets": [{"name": "mine", "kind": "folder"}]}, "'path' is a required property"),
        ({"train": {"overrides": [{"set": {"hiden": 3}}]}}, "hiden"),
        ({"shapes": {"demo3d": ["teapot"]}}, "teapot"),
        # the same checks as `steik train --set`, before any job
        ({"train": {"overrides": [{"set": {"lr": float("nan")}}]}}, "lr must be a finite number"),
        ({"train": {"overrides": [{"set": {"iterations": True}}]}},
         "iterations must be a whole number, got True"),
        ({"train": {"overrides": [{"set": {"use_normals": "maybe"}}]}},
         "use_normals must be true or false, got 'maybe'"),
    ],
)
def test_invalid_config_fails_before_any_job(tmp_path, change, key):
    config = {"datasets": ["demo3d"], "methods": ["steik"]}
    for name, value in change.items():
        config[name] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(path))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "invalid workflow config" in output and key in output
    assert not (tmp_path / "logs").exists() and not (tmp_path / "resources").exists()


@pytest.mark.slow
def test_lint_is_clean(tmp_path):
    result = subprocess.run(
        [str(SNAKEMAKE), "--lint", "--directory", str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.mark.slow
def test_folder_dataset_dry_run(tmp_path):
    """An inline folder entry: one sample job per matching file, no fetch, files as inputs."""
    import trimesh

    scans = tmp_path / "scans"
    scans.mkdir()
    trimesh.creation.box().export(scans / "crate.ply")
    trimesh.creation.icosphere().export(scans / "ball.ply")
    (scans / "notes.txt").write_text("not a shape")
    config = {
        "datasets": [{"name": "mine", "kind": "folder", "path": str(scans), "pattern": "*.ply"}],
        "methods": ["steik", "digs"],
    }
    path = tmp_path / "folder.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    assert "fetch" not in counts
    assert counts["sample"] == 2 and counts["train"] == 2 and counts["tables"] == 1
    assert f"--folder {scans} --pattern '*.ply'" in result.stdout
    assert "--out results/mine/steik " in result.stdout
    assert "results/mine/steik/crate/model.pt" in result.stdout
