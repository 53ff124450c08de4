# The 2D experiment (the paper's snowflake figure, with numbers): every method x seed is trained
# on all shapes of the 2D dataset as one batch (K = number of shapes) with snapshots of the
# network during training, scored against the exact curves, and drawn.
#
#   snakemake --cores 2 --configfile config/2d_cpu.yaml experiment2d     # CPU-sized
#   snakemake --cores 16 --configfile config/2d.yaml experiment2d        # SPEC 9 reference
#
# Outputs: results/2d/<run>/<shape>/{model.pt, train_log.parquet, snapshots.pt},
# results/tables/2d{.parquet,_summary.parquet,.md}, results/figures/2d_{levelsets,snapshots}.png.
# Settings come from the usual keys: the first 2D dataset of `datasets` with its `sample`
# options, `methods`, `experiment2d.seeds` (default: `seeds`), and `train.overrides` /
# `train.iterations_scale` / `train.device` for that dataset; `experiment2d.in_all` puts the
# experiment into the default target and `experiment2d.resolution` sets the scoring grid
# (default 512^2). Snapshots are taken at training fractions 0.1, 0.2, 0.3, 0.4, 1.0; the
# snowflake is the shape of the strip.

include: "experiment2d_common.smk"


localrules:
    experiment2d,


rule experiment2d:
    input:
        experiment2d_targets(),


rule train2d:
    input:
        e2d_samples,
    output:
        models=[f"{E2D}/{{run}}/{shape}/model.pt" for shape in e2d_shapes()],
        logs=[f"{E2D}/{{run}}/{shape}/train_log.parquet" for shape in e2d_shapes()],
        snapshots=[f"{E2D}/{{run}}/{shape}/snapshots.pt" for shape in e2d_shapes()],
    params:
        out=lambda wildcards: str(E2D / wildcards.run),
        args=e2d_train_args,
        checkpoints=lambda wildcards: " ".join(
            str(E2D / wildcards.run / shape / "checkpoint.pt") for shape in e2d_shapes()
        ),
    log:
        "logs/experiment2d/train/{run}.log",
    benchmark:
        "benchmarks/experiment2d/train/{run}.tsv"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        ENV
    shell:
        "resume=--resume; for c in {params.checkpoints}; do [ -f $c ] || resume=''; done; "
        "steik experiment2d train --points {input} --out {params.out} {params.args} $resume "
        "> {log} 2>&1"


rule table2d:
    input:
        models=e2d_models(),
        samples=e2d_samples(),
    output:
        rows=f"{TABLES}/2d.parquet",
        summary=f"{TABLES}/2d_summary.parquet",
        markdown=f"{TABLES}/2d.md",
    params:
        resolution=E2D_CONFIG["resolution"],
    log:
        "logs/experiment2d/table.log",
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        ENV
    shell:
        "steik experiment2d table --models {input.models} --samples {input.samples} "
        "--out {output.rows} --resolution {params.resolution} --device cpu > {log} 2>&1"


rule figure2d:
    input:
        models=e2d_models(E2D_SEEDS[:1]),
        samples=e2d_samples(),
    output:
        report(
            f"{FIGURES}/2d_levelsets.png",
            caption="../report/experiment2d.rst",
            category="Figures",
            labels={"dataset": "2d", "figure": "level sets (2D experiment)"},
        ),
    log:
        "logs/experiment2d/figure.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik experiment2d figure --models {input.models} --samples {input.samples} "
        "--out {output} --device cpu > {log} 2>&1"


rule snapshots2d:
    input:
        [str(E2D / run_name(m, E2D_SEEDS[0]) / E2D_STRIP_SHAPE / "snapshots.pt") for m in METHODS],
    output:
        report(
            f"{FIGURES}/2d_snapshots.png",
            caption="../report/experiment2d_snapshots.rst",
            category="Figures",
            labels={"dataset": "2d", "figure": "snapshots (2D experiment)"},
        ),
    log:
        "logs/experiment2d/snapshots.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik experiment2d snapshots --snapshots {input} --out {output} --device cpu > {log} 2>&1"
