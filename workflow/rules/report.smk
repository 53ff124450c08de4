# Stage 7: figures for the report (2D level sets and snapshot strips, renders of 3D
# reconstructions next to the ground truth, loss curves, quality against training time). `snakemake --report results/report.zip`
# collects them with the tables and the captions in workflow/report/. Each figure's inputs are
# the per-shape files it shows (the first seed of every method), as the batch rules declare them.


rule levelsets:
    input:
        models=lambda wildcards: figure_files(wildcards.dataset, "model.pt"),
        samples=lambda wildcards: sample_paths(wildcards.dataset, figure_shapes(wildcards.dataset)),
    output:
        report(
            f"{FIGURES}/{{dataset}}_levelsets.png",
            caption="../report/levelsets.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "level sets"},
        ),
    log:
        "logs/figures/{dataset}_levelsets.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-levelsets --models {input.models:q} --samples {input.samples:q} --out {output:q} "
        "> {log:q} 2>&1"


rule snapshots:
    input:
        models=lambda wildcards: snapshot_files(wildcards.dataset, "model.pt"),
        sample=lambda wildcards: sample_path(wildcards.dataset, snapshot_shape(wildcards.dataset)),
    output:
        report(
            f"{FIGURES}/{{dataset}}_snapshots.png",
            caption="../report/snapshots.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "snapshots"},
        ),
    params:
        snapshots=lambda wildcards: snapshot_files(wildcards.dataset, "snapshots.pt"),
    log:
        "logs/figures/{dataset}_snapshots.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-snapshots --snapshots {params.snapshots:q} --sample {input.sample:q} "
        "--out {output:q} > {log:q} 2>&1"


rule renders:
    input:
        meshes=lambda wildcards: figure_files(wildcards.dataset, "mesh.ply", renders=True),
        samples=lambda wildcards: sample_paths(
            wildcards.dataset, figure_shapes(wildcards.dataset, renders=True)
        ),
    output:
        report(
            f"{FIGURES}/{{dataset}}_renders.png",
            caption="../report/renders.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "renders"},
        ),
    params:
        size=config["figures"]["render_size"],
    log:
        "logs/figures/{dataset}_renders.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-renders --meshes {input.meshes:q} --samples {input.samples:q} "
        "--size {params.size} --out {output:q} > {log:q} 2>&1"


rule losses:
    input:
        lambda wildcards: figure_files(wildcards.dataset, "train_log.parquet"),
    output:
        report(
            f"{FIGURES}/{{dataset}}_losses.png",
            caption="../report/losses.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "loss curves"},
        ),
    log:
        "logs/figures/{dataset}_losses.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-losses --logs {input:q} --out {output:q} > {log:q} 2>&1"


rule quality:
    input:
        rows=f"{TABLES}/{{dataset}}.parquet",
        snapshots=f"{TABLES}/{{dataset}}_snapshots.parquet",
    output:
        report(
            f"{FIGURES}/{{dataset}}_quality.png",
            caption="../report/quality.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "quality against training time"},
        ),
    log:
        "logs/figures/{dataset}_quality.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-quality --rows {input.rows:q} --snapshots {input.snapshots:q} "
        "--title {wildcards.dataset:q} --out {output:q} > {log:q} 2>&1"
