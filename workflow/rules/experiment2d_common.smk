# Functions and constants of the 2D experiment's rules (experiment2d.smk); no rules here.
# Uses common.smk: DATASETS, dimension, shapes, METHODS, SEEDS, RESULTS, TABLES, FIGURES,
# run_name, parse_run, iterations, set_args.

E2D_DATASETS = [d for d in DATASETS if dimension(d) == 2]
E2D_DATASET = E2D_DATASETS[0] if E2D_DATASETS else None
E2D = RESULTS / "2d"
E2D_STRIP_SHAPE = "snowflake"
E2D_CONFIG = {"in_all": False, "resolution": 512, "seeds": SEEDS, **config.get("experiment2d", {})}
E2D_SEEDS = list(E2D_CONFIG["seeds"])


def e2d_shapes():
    return shapes(E2D_DATASET) if E2D_DATASET else []


def e2d_samples(wildcards=None):
    return [str(RESULTS / E2D_DATASET / "samples" / f"{s}.npz") for s in e2d_shapes()]


def e2d_models(seeds=None):
    return [
        str(E2D / run_name(m, s) / shape / "model.pt")
        for m in METHODS
        for s in (seeds if seeds is not None else E2D_SEEDS)
        for shape in e2d_shapes()
    ]


def e2d_train_args(wildcards):
    method, seed = parse_run(wildcards.run)
    return (
        f"--method {method} --seed {seed} --device {config['train']['device']} "
        f"--iterations {iterations(E2D_DATASET, method)} {set_args(E2D_DATASET, method)}"
    ).strip()


def experiment2d_targets():
    """Everything the 2D experiment makes (empty when the config has no 2D dataset)."""
    if E2D_DATASET is None:
        return []
    targets = [str(TABLES / f"2d{suffix}") for suffix in (".parquet", "_summary.parquet", ".md")]
    targets.append(str(FIGURES / "2d_levelsets.png"))
    if E2D_STRIP_SHAPE in e2d_shapes():
        targets.append(str(FIGURES / "2d_snapshots.png"))
    return targets
