# Validation of the config and the functions every rule file uses (no rules in this file).
#
# The config is checked against workflow/schemas/config.schema.yaml, then against what the
# schema cannot express (dataset names in per-dataset keys, shape names, method overrides
# through steik.methods.preset, the same check `steik train` applies), so that a wrong config
# fails before any job starts. Nothing here imports torch or trimesh: building the job graph
# (`snakemake -n` on a cluster's login node) stays fast.
#
# Options reach the commands as data: one JSON mapping per command (`--overrides`, `--options`),
# built from the config's typed values, never re-parsed from flag strings.

import json
import math
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from steik.batching import split_batches
from steik.data.registry import (
    dataset_name,
    folder_files,
    list_shapes,
    read_lock,
    resolve,
    takes_local_scans,
)
from steik.errors import SteikError
from steik.methods import POISSON, merged_overrides, parse_run, preset, run_name


def _typed_command_line_config():
    """Read the lists and mappings given with `--config KEY=VALUE` again, with YAML's typed loader.

    Snakemake reads a nested value with YAML's base loader, which keeps every scalar a string
    (`train='{iterations_scale: 0.05}'` gives '0.05', `seeds=[0,1]` gives ['0', '1']), so the
    schema would refuse the documented commands; top-level scalars it already types itself."""
    import yaml
    from snakemake.utils import update_config

    for argument in workflow.config_settings.config_args or ():
        key, separator, text = str(argument).partition("=")
        if not separator or not isinstance(config.get(key), (dict, list)):
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # the schema names the key with the value Snakemake read
        if isinstance(value, type(config[key])):
            update_config(config, {key: value})


def _non_finite(value, where=""):
    """The key path of the first NaN or infinite number in `value` (None if there is none): the
    schema's `minimum` and `maximum` let NaN through (`.nan` in YAML)."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "top level"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


def _validate_config():
    """Schema validation (which also fills in defaults); on failure, one message naming the
    offending key, from jsonschema's most relevant error (it looks inside oneOf branches)."""
    import jsonschema
    import yaml

    schema_path = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise WorkflowError(
            f"invalid workflow config: {where.lstrip('.') or 'top level'}: {error.message} "
            f"(see config/README.md)"
        )
    validate(config, schema=str(schema_path))
    where = _non_finite(config)
    if where is not None:
        raise WorkflowError(
            f"invalid workflow config: {where} must be a finite number, not NaN or infinity "
            "(see config/README.md)"
        )
    for key in ("results_root", "resources_root"):
        if os.path.normpath(config[key].strip() or ".") == ".":
            raise WorkflowError(
                f"invalid workflow config: {key}: {config[key]!r} is the working directory "
                f"itself; name a folder inside it (default {key.split('_')[0]})"
            )


_typed_command_line_config()
_validate_config()

# Rules call `steik`. When Snakemake runs from a virtual environment that was not activated
# (`.venv/bin/snakemake ...`, as in the README), put that environment's bin folder on PATH so
# that the jobs find the same installation; an activated env or `--sdm conda` wins otherwise.
_PYTHON_BIN = Path(sys.executable).parent
if shutil.which("steik") is None and (_PYTHON_BIN / "steik").exists():
    os.environ.update(PATH=f"{_PYTHON_BIN}{os.pathsep}{os.environ.get('PATH', '')}")

RESOURCES = Path(config["resources_root"])
RESULTS = Path(config["results_root"])
TABLES = RESULTS / "tables"
FIGURES = RESULTS / "figures"
ENV = "../../envs/steik.yaml"

# Resources per job when the config does not set them (a 2-core laptop is the default target).
# train, extract and evaluate jobs each handle one batch of shapes.
_RESOURCE_DEFAULTS = {
    "sample": dict(threads=1, mem_mb=2000, runtime=30, gpu=0),
    "train": dict(threads=1, mem_mb=4000, runtime=720, gpu=0),
    "extract": dict(threads=1, mem_mb=4000, runtime=60, gpu=0),
    "evaluate": dict(threads=1, mem_mb=4000, runtime=60, gpu=0),
    "tables": dict(threads=1, mem_mb=2000, runtime=20, gpu=0),
    "figures": dict(threads=1, mem_mb=4000, runtime=30, gpu=0),
}


def res(rule_name, key):
    """Resource `key` of `rule_name`: the config's value, else the default above."""
    return config["resources"].get(rule_name, {}).get(key, _RESOURCE_DEFAULTS[rule_name][key])


def _fail(message):
    raise WorkflowError(f"invalid workflow config: {message}")


def as_json(mapping):
    """A mapping as JSON text (typed values cross to the command unchanged); the rules quote it
    with `:q` like every other argument."""
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- datasets and shapes

ENTRIES = {}
for _entry in config["datasets"]:
    try:
        _name = dataset_name(_entry)
    except SteikError as error:
        _fail(f"datasets: {error}")
    if _name in ENTRIES:
        _fail(f"datasets: {_name!r} is listed twice")
    if _name in ("runtime", "samples", "tables", "figures"):
        _fail(f"datasets: {_name!r} is reserved for an output name; rename the dataset")
    ENTRIES[_name] = _entry
DATASETS = list(ENTRIES)
DATASET_INFO = {name: resolve(entry) for name, entry in ENTRIES.items()}
_FOLDER_FILES = {}
"""Shape -> file of each folder dataset, globbed once per run (every sample job needs its file)."""


def _check_dataset_keys(key, mapping):
    unknown = sorted(set(mapping) - set(DATASETS))
    if unknown:
        _fail(
            f"{key}: unknown dataset(s) {', '.join(unknown)}; the datasets of this config are "
            f"{', '.join(DATASETS)}"
        )


_check_dataset_keys("scans", config["scans"])
for _d in config["scans"]:
    if not takes_local_scans(DATASET_INFO[_d]):
        _fail(
            f"scans: {_d!r} cannot run from a scans folder (only registry datasets with one "
            "scan file per shape can: srb, scene); remove it from `scans`"
        )


def fetch_args(dataset):
    """Extra `steik fetch` arguments of `dataset`: its local scans folder, if the config names
    one (`scans`)."""
    folder = config["scans"].get(dataset)
    return f"--scans {shlex.quote(folder)}" if folder else ""


def is_folder(dataset):
    """Whether `dataset` is an inline folder entry (no download)."""
    return DATASET_INFO[dataset].kind == "folder"


def _static_shapes(dataset):
    """Shapes known without running anything (registry list, folder files, an earlier fetch);
    None when only `steik fetch` can tell (ShapeNet before its first download)."""
    info = DATASET_INFO[dataset]
    if info.kind != "folder" and not info.shapes and read_lock(dataset, str(RESOURCES)) is None:
        return None
    try:
        if info.kind == "folder":
            _FOLDER_FILES[dataset] = folder_files(info)
            return list(_FOLDER_FILES[dataset])
        return list(list_shapes(ENTRIES[dataset], str(RESOURCES)))
    except SteikError as error:
        _fail(f"datasets: {dataset}: {error}")


def _restrict(dataset, available, strict):
    """The shapes of `dataset` to run under the `shapes` key (`strict`: unknown names fail)."""
    restriction = config["shapes"]
    if isinstance(restriction, list):
        chosen = set(restriction)
        return [s for s in available if s in chosen] if restriction else list(available)
    wanted = restriction.get(dataset)
    if wanted is None:
        return list(available)
    known = set(available)
    missing = [shape for shape in wanted if shape not in known]
    if missing and strict:
        _fail(
            f"shapes: {dataset}: {', '.join(missing)} not in the dataset; its shapes are "
            f"{', '.join(available)}"
        )
    wanted = set(wanted)
    return [s for s in available if s in wanted]


STATIC_SHAPES = {d: _static_shapes(d) for d in DATASETS}
if isinstance(config["shapes"], dict):
    _check_dataset_keys("shapes", config["shapes"])
elif config["shapes"] and all(v is not None for v in STATIC_SHAPES.values()):
    _known = {s for _list in STATIC_SHAPES.values() for s in _list}
    _missing = [s for s in config["shapes"] if s not in _known]
    if _missing:
        _fail(f"shapes: {', '.join(_missing)} not in any dataset of this config")
for _d, _shapes in STATIC_SHAPES.items():
    if _shapes is not None:
        STATIC_SHAPES[_d] = _restrict(_d, _shapes, strict=True)
DATASETS = [d for d in DATASETS if STATIC_SHAPES[d] is None or STATIC_SHAPES[d]]
if not DATASETS:
    _fail("shapes: the restriction leaves no shape to run")


PENDING = [d for d in DATASETS if STATIC_SHAPES[d] is None]
"""Datasets whose shape list only their download gives (ShapeNet before its first fetch). Every
batch job is a rule of its own, made while the Snakefile is read (so that it can declare each
shape's files as outputs), so these datasets have no jobs yet: this run only fetches, and the
next run reads their shapes from the lock file."""
READY = [d for d in DATASETS if d not in PENDING]
"""Datasets whose shapes, batches and jobs are known now."""
if PENDING:
    logger.warning(
        f"{', '.join(PENDING)}: the shape list comes with the download, so this run only "
        "fetches; run the same command again afterwards to sample, train and evaluate"
    )


def shapes(dataset):
    """Shapes of `dataset` to run (a PENDING dataset has none before its fetch)."""
    if STATIC_SHAPES[dataset] is None:
        raise WorkflowError(
            f"{dataset}: its shape list comes with its download; fetch it first (a run of the "
            "workflow, or `--until fetch`), then ask again"
        )
    return STATIC_SHAPES[dataset]


def dimension(dataset):
    """Spatial dimension of the dataset's shapes (2 for demo2d)."""
    return DATASET_INFO[dataset].dim


# ---------------------------------------------------------------- training: methods, seeds, batches

_check_dataset_keys("experiment", config["experiment"])
_check_dataset_keys("train.per_dataset", config["train"]["per_dataset"])
for _override in config["train"]["overrides"]:
    _check_dataset_keys("train.overrides[].datasets", {d: 0 for d in _override.get("datasets", [])})


def experiment(dataset):
    """The preset family (srb, shapenet, scene, 2d) the methods use on `dataset`: the config's,
    else the registry record's."""
    return config["experiment"].get(dataset, DATASET_INFO[dataset].experiment)


def train_option(dataset, key):
    """A training option of `dataset` (seeds, batch_size, snapshots): per dataset, else global."""
    per_dataset = config["train"]["per_dataset"].get(dataset, {})
    if key in per_dataset:
        return per_dataset[key]
    return config["seeds"] if key == "seeds" else config["train"][key]


for _d in DATASETS:
    if (experiment(_d) == "2d") != (dimension(_d) == 2):
        _fail(
            f"experiment: {_d}: the {experiment(_d)} preset is for "
            f"{'2D curves' if experiment(_d) == '2d' else '3D shapes'}, but {_d}'s shapes are "
            f"{dimension(_d)}D; use {'2d' if dimension(_d) == 2 else 'srb, shapenet or scene'}"
        )

METHODS = list(config["methods"])
NEURAL = [m for m in METHODS if m != POISSON]
"""Methods that train a network (screened Poisson reconstructs without one)."""


def methods_of(dataset, neural_only=False):
    """The methods run on `dataset`: screened Poisson on 3D datasets only."""
    if neural_only or dimension(dataset) != 3:
        return list(NEURAL)
    return list(METHODS)


for _d in DATASETS:
    if not methods_of(_d):
        _fail(
            f"methods: screened Poisson ({POISSON}) reconstructs 3D shapes only, so the 2D "
            f"dataset {_d} has no method to run; add a neural method or remove {_d} from datasets"
        )


def _checked_overrides(dataset, method):
    """The method overrides `steik train --overrides` gets for (dataset, method): the
    `train.overrides` entries that select it, then the preset's iterations (after those
    overrides) times `train.iterations_scale`, rounded, at least 1 (a quick look at a paper
    config keeps its schedules' proportions). Checked here as `steik train` checks them."""
    try:
        overrides = merged_overrides(config["train"]["overrides"], dataset, method, experiment(dataset))
        iterations = preset(method, experiment(dataset), **overrides).iterations
    except SteikError as error:
        _fail(f"train.overrides for {dataset}/{method}: {error}")
    scale = config["train"]["iterations_scale"]
    if scale != 1.0:
        overrides["iterations"] = max(1, round(iterations * scale))
    return overrides


# Every (dataset, method) pair at parse time, so a wrong override fails before any job starts.
_OVERRIDES = {(d, m): _checked_overrides(d, m) for d in DATASETS for m in NEURAL}


def _overrides(dataset, method):
    """The checked method overrides of (dataset, method) (see `_checked_overrides`)."""
    return _OVERRIDES[dataset, method]


_BATCHES = {}


def batches(dataset):
    """Batch name -> shapes of `dataset` (the same for every method and seed), computed once per
    run: every rule file and the tables' input function ask for it, and recomputing it made
    building the DAG grow with the square of the number of shapes."""
    if dataset not in _BATCHES:
        _BATCHES[dataset] = split_batches(shapes(dataset), train_option(dataset, "batch_size"))
    return _BATCHES[dataset]


# ---------------------------------------------------------------- runs (method x seed) and paths


def runs(dataset):
    """Every (method, seed) folder name of `dataset` (screened Poisson: one run, no seed)."""
    seeds = train_option(dataset, "seeds")
    return [
        run_name(m, s) for m in methods_of(dataset) for s in (seeds if m != POISSON else [0])
    ]


def batch_file(dataset, run, batch, name):
    """`results/<dataset>/<run>/batches/<batch>/<name>`: a batch record (or its checkpoint)."""
    return f"{RESULTS}/{dataset}/{run}/batches/{batch}/{name}"


def batch_files(dataset, name, run_list=None):
    """`batches/<batch>/<name>` of every run and batch of `dataset`."""
    return [
        batch_file(dataset, run, batch, name)
        for run in (run_list if run_list is not None else runs(dataset))
        for batch in batches(dataset)
    ]


def shape_files(dataset, run, members, name):
    """`results/<dataset>/<run>/<shape>/<name>` of each shape in `members`, in that order: the
    one place these paths are made (string joins: they are built for every job, and pathlib
    made up a noticeable share of a large DAG). Each stage's rule declares its files as
    outputs, and every later rule takes them as inputs."""
    folder = f"{RESULTS}/{dataset}/{run}"
    return [f"{folder}/{shape}/{name}" for shape in members]


def run_folder(record):
    """`results/<dataset>/<run>` from a batch record path (`steik train --out`): a function of
    the rule's output, as Snakemake's lint asks of a parameter that prefixes an output."""
    return str(Path(record).parents[2])


def sample_path(dataset, shape):
    return f"{RESULTS}/{dataset}/samples/{shape}.npz"


def sample_paths(dataset, members):
    """The sample files of `members`, in that order."""
    return [sample_path(dataset, shape) for shape in members]


def sample_record(dataset, batch):
    return f"{RESULTS}/{dataset}/samples/batches/{batch}.json"


# ---------------------------------------------------------------- generated rules


STAGES = ("sample", "train", "extract", "reconstruct", "evaluate")
"""The batch stages. Each batch (and each run of it) has a rule of its own per stage, made in a
loop of the stage's rule file, with every per-shape file it writes as a declared output;
Snakemake allows no function in `output:` and gives all outputs of a rule the same wildcards,
so one rule for all batches could not declare them. The rule named after the stage itself
gathers the stage's batch records (`snakemake --until train` stops after training)."""

_RULE_NAMES = []
"""The generated rules, in the order they were made."""


def rule_name(stage, *parts):
    """Name of a generated rule: the stage, then the dataset, run and batch it runs, as one
    identifier (`train_demo2d_steik_seed1_b`); a numbered suffix keeps it unique when two
    dataset names differ only in punctuation."""
    base = re.sub(r"\W", "_", "_".join((stage, *parts)))
    name, number = base, 1
    while workflow.is_rule(name):
        number += 1
        name = f"{base}_{number}"
    _RULE_NAMES.append(name)
    return name


def stage_resources(name, stage):
    """Apply the entries `--set-resources STAGE:...` of its stage (a cluster profile's
    `set-resources: train:`) to the generated rule `name`. Snakemake matches these by exact
    rule name, so without this no generated rule would get them; an entry naming the generated
    rule itself still wins."""
    overrides = workflow.resource_settings.overwrite_resources
    generated = workflow.get_rule(name)
    for key in (stage, name):
        if key in overrides:
            generated.resources.update(overrides[key])


def stage_records(stage):
    """The batch records that close `stage` (one of STAGES) in every batch and run."""
    if stage == "sample":
        return [sample_record(d, b) for d in READY for b in batches(d)]
    name = {"train": "train.json", "evaluate": "metrics.parquet"}.get(stage, "extract.json")
    records = []
    for dataset in READY:
        for run in runs(dataset):
            if stage == "evaluate" or (run == POISSON) == (stage == "reconstruct"):
                records += batch_files(dataset, name, [run])
    return records


# ---------------------------------------------------------------- per-dataset stage options


for _stage in ("sample", "extract", "evaluate"):
    _check_dataset_keys(f"{_stage}.per_dataset", config[_stage]["per_dataset"])


def stage_options(stage, dataset):
    """Options of `stage` (sample, extract, evaluate) for `dataset`: defaults, then per-dataset;
    `device` is returned apart (it is not an option of the stage's configuration)."""
    section = config[stage]
    options = {**section["defaults"], **section["per_dataset"].get(dataset, {})}
    device = options.pop("device", "auto")
    return options, device


# ---------------------------------------------------------------- inputs and arguments of rules


def sample_sources(dataset, members):
    """What sampling `members` reads: the fetch lock of a registry dataset, the shapes' own files
    for a folder entry."""
    if is_folder(dataset):
        return [str(_FOLDER_FILES[dataset][shape]) for shape in members]
    return [f"{RESOURCES}/{dataset}.lock.json"]


def dataset_args(dataset):
    """How `steik sample` names the dataset: a registry name, or the folder entry's fields."""
    entry = ENTRIES[dataset]
    if not is_folder(dataset):
        return shlex.join([dataset, "--root", str(RESOURCES)])
    pattern = entry.get("pattern", "*.ply")
    return shlex.join([dataset, "--folder", entry["path"], "--pattern", pattern])


def train_args(dataset, run):
    """Method, experiment, seed, device, snapshots and the method overrides (JSON) of a run."""
    method, seed = parse_run(run)
    snapshots = train_option(dataset, "snapshots")
    args = [
        "--method", method, "--experiment", experiment(dataset), "--seed", str(seed),
        "--device", config["train"]["device"],
        "--overrides", as_json(_overrides(dataset, method)),
    ]  # fmt: skip
    if snapshots:
        args += ["--snapshots", ",".join(str(f) for f in snapshots)]
    return shlex.join(args)


def poisson_options():
    """The screened Poisson settings of the config (`poisson`), as its JSON options."""
    return as_json(config["poisson"])


def paper_table(dataset):
    """Which paper table's numbers go beside ours: the registry record's (none for folders)."""
    return DATASET_INFO[dataset].paper_table


# ---------------------------------------------------------------- figures


def first_run(method, dataset):
    return run_name(method, train_option(dataset, "seeds")[0])


def figure_shapes(dataset, renders=False):
    """Shapes shown in the dataset's figures (renders: the first few)."""
    selected = shapes(dataset)
    return selected[: config["figures"]["render_shapes"]] if renders else selected


def figure_files(dataset, filename, renders=False):
    """`filename` of every (method, shape) of the first seed: methods outer, shapes inner
    (networks only, except for meshes)."""
    members = figure_shapes(dataset, renders)
    return [
        path
        for m in methods_of(dataset, neural_only=filename != "mesh.ply")
        for path in shape_files(dataset, first_run(m, dataset), members, filename)
    ]


def snapshot_shape(dataset):
    """The shape of the dataset's snapshot strip and snapshot tables."""
    wanted = config["figures"].get("snapshot_shape")
    available = shapes(dataset)
    return wanted if wanted in available else available[0]


def snapshot_files(dataset, filename):
    """`filename` of the snapshot shape in the first seed of every network method: the models
    (declared outputs of training) and their `snapshots.pt`, which training keeps beside each
    model (not a declared output: Snakemake deletes a failed job's outputs, and a resumed
    training reads the snapshots its killed attempt wrote)."""
    shape = snapshot_shape(dataset)
    return [
        shape_files(dataset, first_run(m, dataset), [shape], filename)[0]
        for m in methods_of(dataset, neural_only=True)
    ]


def has_snapshots(dataset):
    """Whether the dataset's networks are kept during training (`train.snapshots`)."""
    return bool(train_option(dataset, "snapshots")) and bool(methods_of(dataset, neural_only=True))


# ---------------------------------------------------------------- targets


def figure_targets():
    if not config["figures"]["enabled"]:
        return []
    targets = []
    for dataset in READY:
        targets.append(FIGURES / f"{dataset}_losses.png")
        if has_snapshots(dataset):
            targets.append(FIGURES / f"{dataset}_quality.png")
        if dimension(dataset) == 2:
            targets.append(FIGURES / f"{dataset}_levelsets.png")
            if has_snapshots(dataset):
                targets.append(FIGURES / f"{dataset}_snapshots.png")
        else:
            targets.append(FIGURES / f"{dataset}_renders.png")
    return [str(t) for t in targets]


def batch_outputs():
    """Every output of every generated rule. Snakemake looks for a missing output only among
    the files that a job it runs needs: with the tables and figures up to date, a model.pt or
    sample file deleted later would stay missing unless the run itself asks for it."""
    return [str(path) for name in _RULE_NAMES for path in workflow.get_rule(name).output]


def all_targets():
    """Tables and figures of every dataset and every batch's files (batch_outputs); only the
    downloads while a dataset is PENDING. Called once the rule files have made their rules."""
    if PENDING:
        return [f"{RESOURCES}/{dataset}.lock.json" for dataset in PENDING]
    targets = []
    for dataset in READY:
        for suffix in (".parquet", "_summary.parquet", ".md", ".html"):
            targets.append(str(TABLES / f"{dataset}{suffix}"))
    targets.append(str(TABLES / "runtime.parquet"))
    return targets + figure_targets() + batch_outputs()


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_.+]*",
