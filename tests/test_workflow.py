"""The Snakemake workflow: dry runs of every shipped config, config validation, lint.

Each test runs the real `snakemake` of the venv on the repository's Snakefile with
`--directory` pointing at a temporary folder, so nothing is written into the checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
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


def _python_path() -> dict[str, str]:
    """PYTHONPATH when the suite runs a checkout that is not the installed package (a git
    worktree): the jobs then import the code under test too."""
    value = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": value} if value else {}


def snakemake(
    workdir: Path, *args: str, timeout: int = 300, cwd: Path | None = None,
    path: str = "/usr/bin:/bin",
) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile in `workdir`; output captured as text.

    PATH (`path`) leaves out the venv, as for a user who runs `.venv/bin/snakemake` without
    activating it: the workflow itself must make the jobs find `steik`. PYTHONPATH names this
    checkout, so the workflow and its jobs run the code under test even where the venv's
    editable install points at another checkout."""
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            "PATH": path,
            "OMP_NUM_THREADS": "1",
            "HOME": str(workdir),
            **_python_path(),
        },
        cwd=cwd,
    )


STAGES = ("sample", "train", "extract", "reconstruct", "evaluate")
GENERATED = re.compile(rf"({'|'.join(STAGES)})_\w+")
"""A rule the workflow makes per batch (and run) of a stage: `train_demo3d_steik_b`."""


def rule_counts(output: str) -> dict[str, int]:
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


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule of a dry run, the per-batch rules of a stage counted under the stage."""
    counts: dict[str, int] = {}
    for rule, count in rule_counts(output).items():
        stage = match[1] if (match := GENERATED.fullmatch(rule)) else rule
        counts[stage] = counts.get(stage, 0) + count
    return counts


def expected(
    datasets: dict[str, int], runs: int, fetch: int, poisson: int = 0
) -> dict[str, int]:
    """Job counts up to the tables of a config whose datasets each train as one batch per run
    (`runs` = neural methods x seeds per dataset, summed; `poisson` = datasets reconstructed by
    screened Poisson); figure rules are added by the caller."""
    counts = {
        "fetch": fetch,
        "sample": len(datasets),  # one batch per dataset, sampled by one job
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
        # ShapeNet's shape list comes from its archive: before the fetch, a run only fetches
        # (test_a_dataset_listed_by_its_download_is_fetched_first).
        ("config/shapenet.yaml", {"fetch": 1, "all": 1}),
        ("config/ablation.yaml", {"fetch": 1, "all": 1}),
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
    assert counts["train"] == 7 and counts["sample"] == 1  # one batch per neural method
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
    """An inline folder entry: one sample job for the batch of matching files, no fetch, the
    files as inputs."""
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
    assert counts["sample"] == 1 and counts["train"] == 2 and counts["tables"] == 1
    assert f"--folder {scans} --pattern '*.ply'" in result.stdout
    assert "--out results/mine/steik " in result.stdout
    assert "results/mine/steik/crate/model.pt" in result.stdout


# ----------------------------------------------------------------- issue 20


def _write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


QUICK_SAMPLE = {"defaults": {"n_points": 300, "n_gt": 300, "n_occ": 300}}


@pytest.mark.slow
def test_roots_with_shell_syntax_and_spaces_reach_the_commands_as_one_word(tmp_path):
    """`$(...)` in a root runs nothing and a space splits no argument: fetch and sample run
    for real into the folders named literally; every other rule's command (dry run) passes
    each path as one word."""
    results = tmp_path / "r $(touch PWNED) x"
    resources = tmp_path / "res $(touch PWNED) y"
    config = _write_config(tmp_path, {
        "datasets": ["demo3d", "demo2d"], "methods": ["steik", "poisson"],
        "shapes": {"demo3d": ["sphere"], "demo2d": ["circle"]},
        "results_root": str(results), "resources_root": str(resources), "sample": QUICK_SAMPLE,
        "train": {"snapshots": [0.5, 1.0]}, "figures": {"enabled": True},
    })  # fmt: skip
    result = snakemake(tmp_path, "-n", "-p", "--configfile", str(config))
    assert result.returncode == 0, result.stderr + result.stdout
    commands = [line.split("Shell command: ", 1)[1] for line in result.stdout.splitlines()
                if line.startswith("Shell command: steik")]  # fmt: skip
    rules = {shlex.split(c)[1] for c in commands}
    assert {"fetch", "sample", "train", "extract", "reconstruct", "evaluate", "tables",
            "runtime", "plot-renders", "plot-losses", "plot-levelsets",
            "plot-snapshots"} <= rules  # fmt: skip
    for command in commands:
        for word in shlex.split(command):
            if "PWNED" in word:
                assert word.startswith((str(results), str(resources))), (word, command)
    config = _write_config(tmp_path, {
        "datasets": ["demo3d"], "methods": ["steik"], "shapes": ["sphere"],
        "results_root": str(results), "resources_root": str(resources), "sample": QUICK_SAMPLE,
    })  # fmt: skip
    sample = results / "demo3d" / "samples" / "sphere.npz"
    record = results / "demo3d" / "samples" / "batches" / "b.json"
    result = snakemake(tmp_path, str(record), "--cores", "1", "--configfile", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(tmp_path.rglob("PWNED"))
    assert sample.is_file()
    assert (resources / "demo3d.lock.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"results_root": "."}, "results_root: '.' is the working directory itself"),
        ({"results_root": ""}, "results_root: '' is the working directory itself"),
        ({"resources_root": "./"}, "resources_root: './' is the working directory itself"),
        ({"sample": {"defaults": {"occ_padding": float("nan")}}},
         "sample.defaults.occ_padding must be a finite number"),
        ({"experiment": {"mine": "2d"}}, "experiment: mine: the 2d preset is for 2D curves"),
        ({"datasets": ["demo2d"], "methods": ["poisson"]},
         "the 2D dataset demo2d has no method to run"),
        ({"datasets": [{"name": "mine", "kind": "folder", "path": "SCANS",
                        "pattern": "SCANS/*.ply"}]}, "datasets: mine:"),
        ({"datasets": [{"name": "mine", "kind": "folder", "path": "LONG"}]},
         "exceed the file system's 255-byte limit"),
    ],
)
def test_more_config_mistakes_fail_before_any_job(tmp_path, change, message):
    """Each mistake is one message naming the key, before any job (it used to fail late, with
    MissingInputException or File name too long, or run on silently)."""
    scans, long = tmp_path / "scans", tmp_path / "long"
    scans.mkdir()
    long.mkdir()
    (scans / "ball.ply").write_text("")
    (long / "ball.ply").write_text("")
    (long / f"{'x' * 240}.ply").write_text("")
    config = {"datasets": ["demo3d", {"name": "mine", "kind": "folder", "path": str(scans)}],
              "methods": ["steik"], **change}  # fmt: skip
    text = yaml.safe_dump(config).replace("SCANS", str(scans)).replace("LONG", str(long))
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = snakemake(tmp_path, "-n", "--configfile", str(path))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "invalid workflow config" in output, output
    assert message in output, output
    if "pattern" in text:
        assert "relative to the folder" in output
    assert not (tmp_path / "logs").exists() and not (tmp_path / "results").exists()


_COMMAND = r"`([^`]*--config [^`]*)`|((?:\.venv/bin/)?snakemake [^`#\n]*)"
"""A `--config ...` example in backticks, or a snakemake command line up to its comment."""


def _documented_commands() -> list[str]:
    """Every `snakemake` command line of docs/workflow.md and config/README.md (continuation
    lines joined, comments dropped); a bare `--config ...` example runs on the default config."""
    commands = []
    for doc in ("docs/workflow.md", "config/README.md"):
        text = (ROOT / doc).read_text().replace("\\\n", " ")
        for line in text.splitlines():
            for match in re.finditer(_COMMAND, line):
                command = (match[1] or match[2]).strip()
                if "KEY=VALUE" in command:
                    continue  # the syntax, not an example
                if not command.startswith((".venv/bin/snakemake", "snakemake")):
                    command = f"snakemake {command}"
                commands.append(command)
    return commands


def test_the_docs_show_commands_to_check():
    commands = _documented_commands()
    assert any("train='{iterations_scale: 0.05}'" in c for c in commands), commands
    assert any(c == "snakemake --config train='{iterations_scale: 0.01}'" for c in commands)
    assert len(commands) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("command", [*_documented_commands(), "snakemake --config 'seeds=[0,1]'"])
def test_every_documented_command_dry_runs(tmp_path, command):
    """What the docs tell a user to type works (as a dry run); nested `--config` values keep
    their YAML types. `--report` needs a finished run: tests/test_workflow_e2e.py builds one."""
    words = shlex.split(command)[1:]
    if "--report" in words:
        pytest.skip("a report needs a finished run (built in test_workflow_e2e.py)")
    if "conda" in words and shutil.which("conda") is None:
        pytest.skip("`--sdm conda` needs conda, which this machine lacks")
    if "--configfile" not in words:  # the default config, which the Snakefile reads from the
        words += ["--configfile", str(ROOT / "config" / "config.yaml")]  # repository root
    result = snakemake(tmp_path, "-n", "-p", *words, cwd=ROOT)  # paths as typed in the repository
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    shown = {"--unlock": "Unlocked working directory", "--summary": "output_file\tdate\trule"}
    assert next((shown[w] for w in words if w in shown), "Job stats:") in output
    if "iterations_scale" in command:
        # every preset runs at most 100,000 iterations (IGR); scaled, at most 100,000 x scale
        scale = float(re.search(r"iterations_scale: ([0-9.]+)", command)[1])
        trains = train_commands(result.stdout)
        iterations = {_overrides_of(line).get("iterations") for line in trains}
        assert iterations and all(i is not None and i <= 100_000 * scale for i in iterations)
    if "seeds=[0,1]" in command:
        seeds = {line.split("--seed ")[1].split()[0] for line in train_commands(result.stdout)}
        assert {"0", "1"} <= seeds  # demo2d keeps its own three seeds


_COUNTING = """
import sys
import steik.batching, steik.data.registry
calls = {"split_batches": 0, "folder_files": 0}
def counted(module, name):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        calls[name] += 1
        return original(*args, **kwargs)
    setattr(module, name, wrapper)
counted(steik.batching, "split_batches")
counted(steik.data.registry, "folder_files")
from snakemake.cli import main
try:
    main(sys.argv[1:])
finally:
    print("CALLS", calls["split_batches"], calls["folder_files"], file=sys.stderr)
"""


@pytest.mark.slow
def test_batches_and_folder_files_are_computed_once_per_run(tmp_path):
    """Building the DAG of a 300-shape folder dataset globs the folder and splits the batches
    once (they were recomputed for every job: quadratic in the number of shapes; the timing up
    to 50,000 shapes is bench/bench_dag.py's, in docs/workflow.md)."""
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(300):
        (scans / f"s{i:04d}.ply").touch()
    config = _write_config(tmp_path, {
        "datasets": [{"name": "mine", "kind": "folder", "path": str(scans)}],
        "methods": ["steik"], "train": {"batch_size": 16},
    })  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _COUNTING, "-s", str(ROOT / "Snakefile"), "--directory",
         str(tmp_path), "-n", "--configfile", str(config)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    assert counts["sample"] == counts["train"] >= 300 // 16  # one sample job per batch
    split, globbed = map(int, result.stderr.split("CALLS ")[1].split()[:2])
    assert split == 1 and globbed == 1, (split, globbed)


# ----------------------------------------------------------------- issue 21: rules per batch


FAKE_FETCH = """#!/bin/sh
# Stands in for `steik fetch shapenet --root ROOT` (no download): the lock file with its shapes.
[ "$1" = fetch ] || exit 3
mkdir -p "$4" && printf '{"shapes": ["chair_c", "lamp_a", "lamp_b"]}' > "$4/$2.lock.json"
"""


@pytest.mark.slow
def test_a_dataset_listed_by_its_download_is_fetched_first(tmp_path):
    """ShapeNet's shapes (so its batches, so its rules) are only known from its download: the
    first run fetches and says in one line to run again; the next run has every job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "steik").write_text(FAKE_FETCH)
    (bin_dir / "steik").chmod(0o755)
    config = _write_config(tmp_path, {
        "datasets": ["shapenet"], "methods": ["steik"], "figures": {"enabled": False},
    })  # fmt: skip
    message = ("shapenet: the shape list comes with the download, so this run only fetches; "
               "run the same command again afterwards to sample, train and evaluate")  # fmt: skip
    result = snakemake(tmp_path, "--cores", "1", "--configfile", str(config),
                       path=f"{bin_dir}:/usr/bin:/bin")  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert output.count(message) == 1, output[-3000:]
    assert job_counts(output) == {"fetch": 1, "all": 1}
    assert (tmp_path / "resources" / "shapenet.lock.json").is_file()
    assert not (tmp_path / "results").exists()
    result = snakemake(tmp_path, "-n", "--configfile", str(config))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert message not in output
    assert rule_counts(output) == {
        "sample_shapenet_b": 1, "train_shapenet_steik_b": 1, "extract_shapenet_steik_b": 1,
        "evaluate_shapenet_steik_b": 1, "tables": 1, "runtime_table": 1, "all": 1,
    }  # fmt: skip
    assert "results/shapenet/steik/lamp_b/model.pt" in output


def _resources_of(output: str) -> dict[str, str]:
    """Rule -> its `resources:` line, from a dry run's job list."""
    found, rule = {}, None
    for line in output.splitlines():
        if match := re.match(r"^(?:local)?rule (\w+):", line):
            rule = match[1]
        elif line.strip().startswith("resources:") and rule:
            found[rule] = line.strip()
    return found


@pytest.mark.slow
def test_set_resources_of_a_stage_reach_each_batch_rule(tmp_path):
    """`--set-resources train:...` (a cluster profile's `set-resources: train:`) applies to every
    batch's train rule; an entry naming one generated rule wins for that rule."""
    result = snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / "config.yaml"),
                       "--set-resources", "train:runtime=7", "train:gpu=1",
                       "train_demo3d_steik_b:runtime=9", "sample:mem_mb=1234",
                       "evaluate:runtime=11")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    resources = _resources_of(result.stdout + result.stderr)
    trains = {rule: line for rule, line in resources.items() if rule.startswith("train_")}
    assert sorted(trains) == ["train_demo2d_digs_b", "train_demo2d_steik_b",
                              "train_demo3d_digs_b", "train_demo3d_steik_b"]  # fmt: skip
    for rule, line in trains.items():
        runtime = 9 if rule == "train_demo3d_steik_b" else 7
        assert f"runtime={runtime}" in line and "gpu=1" in line, (rule, line)
    assert all("mem_mb=1234" in line for rule, line in resources.items()
               if rule.startswith("sample_"))  # fmt: skip
    assert "runtime=11" in resources["evaluate_demo3d_poisson_b"]
    assert "runtime=11" not in resources["reconstruct_demo3d_poisson_b"]
