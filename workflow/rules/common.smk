# Validation of the config and the functions every rule file uses (no rules in this file).
#
# The config is checked against workflow/schemas/config.schema.yaml, then against what the
# schema cannot express (dataset names in per-dataset keys, shape names, method overrides
# through steik.methods.preset), so that a wrong config fails before any job starts.

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from steik.data.folder import folder_files
from steik.data.registry import dataset_name, list_shapes, read_lock, resolve
from steik.errors import SteikError
from steik.methods import preset


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

# Resources per rule when the config does not set them (a 2-core laptop is the default target).
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


def _check_dataset_keys(key, mapping):
    unknown = sorted(set(mapping) - set(DATASETS))
    if unknown:
        _fail(
            f"{key}: unknown dataset(s) {', '.join(unknown)}; the datasets of this config are "
            f"{', '.join(DATASETS)}"
        )


def is_folder(dataset):
    """Whether `dataset` is an inline folder entry (no fetch step)."""
    return DATASET_INFO[dataset].kind == "folder"


def _static_shapes(dataset):
    """Shapes known without running anything (registry list, folder files, an earlier fetch);
    None when only `steik fetch` can tell (ShapeNet before its first download)."""
    info = DATASET_INFO[dataset]
    if info.kind != "folder" and not info.shapes and read_lock(dataset, str(RESOURCES)) is None:
        return None
    try:
        return list(list_shapes(ENTRIES[dataset], str(RESOURCES)))
    except SteikError as error:
        _fail(f"datasets: {dataset}: {error}")


def _restrict(dataset, available, strict):
    """The shapes of `dataset` to run under the `shapes` key (`strict`: unknown names fail)."""
    restriction = config["shapes"]
    if isinstance(restriction, list):
        return [s for s in available if s in restriction] if restriction else list(available)
    wanted = restriction.get(dataset)
    if wanted is None:
        return list(available)
    missing = [shape for shape in wanted if shape not in available]
    if missing and strict:
        _fail(
            f"shapes: {dataset}: {', '.join(missing)} not in the dataset; its shapes are "
            f"{', '.join(available)}"
        )
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


def shapes(dataset):
    """Shapes of `dataset` to run; for datasets listed only by their archive, after the fetch
    checkpoint has run (Snakemake re-evaluates the DAG then)."""
    if STATIC_SHAPES[dataset] is not None:
        return STATIC_SHAPES[dataset]
    checkpoints.fetch.get(dataset=dataset)
    return _restrict(dataset, list_shapes(ENTRIES[dataset], str(RESOURCES)), strict=True)


def dimension(dataset):
    """Spatial dimension of the dataset's shapes (2 for demo2d)."""
    return DATASET_INFO[dataset].dim


# ---------------------------------------------------------------- experiments and methods

_check_dataset_keys("experiment", config["experiment"])
_DEFAULT_EXPERIMENT = {"srb": "srb", "shapenet": "shapenet", "scene": "scene"}


def experiment(dataset):
    """The preset family (srb, shapenet, scene, 2d) the methods use on `dataset`."""
    if dataset in config["experiment"]:
        return config["experiment"][dataset]
    if dimension(dataset) == 2:
        return "2d"
    return _DEFAULT_EXPERIMENT.get(dataset, "srb")


METHODS = list(config["methods"])
SEEDS = list(config["seeds"])

for _override in config["train"]["overrides"]:
    _check_dataset_keys("train.overrides[].datasets", {d: 0 for d in _override.get("datasets", [])})


def _overrides(dataset, method):
    """Merged `--set` fields of (dataset, method): later override entries win."""
    neuron = preset(method, experiment(dataset)).neuron
    merged = {}
    for entry in config["train"]["overrides"]:
        if dataset not in entry.get("datasets", [dataset]):
            continue
        if method not in entry.get("methods", [method]):
            continue
        if neuron not in entry.get("neurons", [neuron]):
            continue
        merged.update(entry["set"])
    return merged


def _method_config(dataset, method):
    try:
        return preset(method, experiment(dataset), **_overrides(dataset, method))
    except (SteikError, TypeError, ValueError) as error:
        _fail(f"train.overrides for {dataset}/{method}: {error}")


METHOD_CONFIG = {(d, m): _method_config(d, m) for d in DATASETS for m in METHODS}


def iterations(dataset, method):
    """Iterations of (dataset, method) after `train.iterations_scale`."""
    base = METHOD_CONFIG[(dataset, method)].iterations
    return max(1, round(base * config["train"]["iterations_scale"]))


def _set_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(repr(v) for v in value)
    return str(value)


def set_args(dataset, method):
    """`--set FIELD=VALUE ...` for the train command of (dataset, method)."""
    pairs = [f"{k}={_set_value(v)}" for k, v in _overrides(dataset, method).items()]
    return " ".join(f"--set {shlex.quote(p)}" for p in pairs)


# ---------------------------------------------------------------- runs (method x seed)


@dataclass(frozen=True)
class Run:
    """One trained model: `results/<dataset>/<run>/<shape>/`."""

    dataset: str
    method: str
    seed: int
    shape: str

    @property
    def run(self):
        return run_name(self.method, self.seed)

    @property
    def folder(self):
        return RESULTS / self.dataset / self.run / self.shape


def run_name(method, seed):
    """Folder name of a (method, seed): the method, suffixed `-seed<S>` for seeds other than 0."""
    return method if seed == 0 else f"{method}-seed{seed}"


def parse_run(run):
    """(method, seed) from a run folder name."""
    method, _, seed = run.partition("-seed")
    return method, int(seed or 0)


def runs_of(dataset):
    """Every trained model of `dataset`: methods x seeds x shapes."""
    return [Run(dataset, m, s, shape) for m in METHODS for s in SEEDS for shape in shapes(dataset)]


# ---------------------------------------------------------------- per-dataset stage options


for _stage in ("sample", "extract", "evaluate"):
    _check_dataset_keys(f"{_stage}.per_dataset", config[_stage]["per_dataset"])


def stage_options(stage, dataset):
    """Options of `stage` (sample, extract, evaluate) for `dataset`: defaults, then per-dataset."""
    section = config[stage]
    return {**section["defaults"], **section["per_dataset"].get(dataset, {})}


def option_args(options, flags):
    """Command-line flags for the options present; `flags` maps option -> flag."""
    args = []
    for key, flag in flags.items():
        if key not in options:
            continue
        value = options[key]
        if isinstance(value, bool):
            args.append(flag[0] if value else flag[1])
        else:
            args.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(args)


# ---------------------------------------------------------------- inputs and arguments of rules


def sample_inputs(wildcards):
    """The fetch lock of a registry dataset; the shape's own file for a folder entry."""
    if is_folder(wildcards.dataset):
        files = folder_files(DATASET_INFO[wildcards.dataset])
        return [str(files[wildcards.shape])]
    return [f"{RESOURCES}/{wildcards.dataset}.lock.json"]


def dataset_args(dataset):
    """How `steik sample` names the dataset: a registry name, or the folder entry's fields."""
    entry = ENTRIES[dataset]
    if not is_folder(dataset):
        return f"{dataset} --root {shlex.quote(str(RESOURCES))}"
    pattern = entry.get("pattern", "*.ply")
    return (
        f"{dataset} --folder {shlex.quote(entry['path'])} --pattern {shlex.quote(pattern)}"
    )


def train_params(wildcards):
    """Method, experiment, seed, iterations and --set flags of one training job."""
    method, seed = parse_run(wildcards.run)
    dataset = wildcards.dataset
    return (
        f"--method {method} --experiment {experiment(dataset)} --seed {seed} "
        f"--iterations {iterations(dataset, method)} --device {config['train']['device']} "
        f"{set_args(dataset, method)}"
    ).strip()


def paper_table(dataset):
    """Which paper table's numbers go beside ours: srb, shapenet or none (registry names only)."""
    if is_folder(dataset):
        return "none"
    return dataset if dataset in ("srb", "shapenet") else "none"


def _figure_shapes(dataset, renders):
    selected = shapes(dataset)
    return selected[: config["figures"]["render_shapes"]] if renders else selected


def figure_inputs(dataset, filename, renders=False):
    """`filename` of every (method, shape) of the first seed: methods outer, shapes inner."""
    seed = SEEDS[0]
    return [
        str(RESULTS / dataset / run_name(method, seed) / shape / filename)
        for method in METHODS
        for shape in _figure_shapes(dataset, renders)
    ]


def sample_files(dataset, renders=False):
    """Sample files of the shapes of `dataset` shown in its figures."""
    return [
        str(RESULTS / dataset / "samples" / f"{shape}.npz")
        for shape in _figure_shapes(dataset, renders)
    ]


# ---------------------------------------------------------------- targets


def metrics_files(dataset):
    return [str(r.folder / "metrics.parquet") for r in runs_of(dataset)]


def figure_targets():
    if not config["figures"]["enabled"]:
        return []
    targets = []
    for dataset in DATASETS:
        targets.append(FIGURES / f"{dataset}_losses.png")
        if dimension(dataset) == 2:
            targets.append(FIGURES / f"{dataset}_levelsets.png")
        else:
            targets.append(FIGURES / f"{dataset}_renders.png")
    return [str(t) for t in targets]


def all_targets():
    targets = []
    for dataset in DATASETS:
        for suffix in (".parquet", "_summary.parquet", ".md", ".html"):
            targets.append(str(TABLES / f"{dataset}{suffix}"))
    targets += [str(TABLES / f"runtime{suffix}") for suffix in (".parquet", ".md", ".html")]
    if E2D_CONFIG["in_all"]:  # experiment2d_common.smk
        targets += experiment2d_targets()
    return targets + figure_targets()


wildcard_constraints:
    dataset="|".join(re.escape(d) for d in DATASETS),
    run="[a-z_]+(-seed[0-9]+)?",
    shape="[A-Za-z0-9][A-Za-z0-9_.+]*",
