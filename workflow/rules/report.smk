# Stage 7: figures for the report (2D level sets and snapshot strips, renders of 3D
# reconstructions next to the ground truth, loss curves, quality against training time). `snakemake --report results/report.zip`
# collects them with the tables and the captions in workflow/report/. Each figure depends on the
# batch records of the runs it shows (the first seed of every method).


rule levelsets:
    input:
        records=lambda wildcards: figure_records(wildcards.dataset, "train.json"),
        sampled=lambda wildcards: sample_records(wildcards.dataset, shapes(wildcards.dataset)),
    output:
        report(
            f"{FIGURES}/{{dataset}}_levelsets.png",
            caption="../report/levelsets.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "level sets"},
        ),
    params:
        models=lambda wildcards: figure_files(wildcards.dataset, "model.pt"),
        samples=lambda wildcards: [
            sample_path(wildcards.dataset, s) for s, _ in figure_batches(wildcards.dataset)
        ],
    log:
        "logs/figures/{dataset}_levelsets.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-levelsets --models {params.models:q} --samples {params.samples:q} --out {output:q} "
        "> {log:q} 2>&1"


rule snapshots:
    input:
        records=lambda wildcards: sorted(
            str(batch_dir(wildcards.dataset, first_run(m, wildcards.dataset), b) / "train.json")
            for m in methods_of(wildcards.dataset, neural_only=True)
            for s, b in figure_batches(wildcards.dataset)
            if s == snapshot_shape(wildcards.dataset)
        ),
        sampled=lambda wildcards: sample_records(
            wildcards.dataset, [snapshot_shape(wildcards.dataset)]
        ),
    output:
        report(
            f"{FIGURES}/{{dataset}}_snapshots.png",
            caption="../report/snapshots.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "snapshots"},
        ),
    params:
        sample=lambda wildcards: sample_path(wildcards.dataset, snapshot_shape(wildcards.dataset)),
        snapshots=lambda wildcards: [
            str(
                RESULTS / wildcards.dataset / first_run(m, wildcards.dataset)
                / snapshot_shape(wildcards.dataset) / "snapshots.pt"
            )
            for m in methods_of(wildcards.dataset, neural_only=True)
        ],
    log:
        "logs/figures/{dataset}_snapshots.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-snapshots --snapshots {params.snapshots:q} --sample {params.sample:q} "
        "--out {output:q} > {log:q} 2>&1"


rule renders:
    input:
        records=lambda wildcards: figure_records(wildcards.dataset, "extract.json", renders=True),
        sampled=lambda wildcards: sample_records(
            wildcards.dataset, [s for s, _ in figure_batches(wildcards.dataset, renders=True)]
        ),
    output:
        report(
            f"{FIGURES}/{{dataset}}_renders.png",
            caption="../report/renders.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "renders"},
        ),
    params:
        samples=lambda wildcards: [
            sample_path(wildcards.dataset, s)
            for s, _ in figure_batches(wildcards.dataset, renders=True)
        ],
        meshes=lambda wildcards: figure_files(wildcards.dataset, "mesh.ply", renders=True),
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
        "steik plot-renders --meshes {params.meshes:q} --samples {params.samples:q} "
        "--size {params.size} --out {output:q} > {log:q} 2>&1"


rule losses:
    input:
        lambda wildcards: figure_records(wildcards.dataset, "train.json"),
    output:
        report(
            f"{FIGURES}/{{dataset}}_losses.png",
            caption="../report/losses.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "loss curves"},
        ),
    params:
        logs=lambda wildcards: figure_files(wildcards.dataset, "train_log.parquet"),
    log:
        "logs/figures/{dataset}_losses.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-losses --logs {params.logs:q} --out {output:q} > {log:q} 2>&1"


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
