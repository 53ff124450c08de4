# Stage 6: per-dataset tables (every metrics row, the summary, the paper's layouts with the
# paper's numbers beside ours; 2D curve datasets per shape, with their snapshots) and the runtime
# table of every training run of this workflow.


rule tables:
    input:
        rows=lambda wildcards: batch_files(wildcards.dataset, "metrics.parquet"),
        snapshots=lambda wildcards: batch_files(wildcards.dataset, "snapshot_metrics.parquet"),
    output:
        rows=f"{TABLES}/{{dataset}}.parquet",
        summary=f"{TABLES}/{{dataset}}_summary.parquet",
        markdown=f"{TABLES}/{{dataset}}.md",
        snapshots=f"{TABLES}/{{dataset}}_snapshots.parquet",
        html=report(
            f"{TABLES}/{{dataset}}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"dataset": "{dataset}", "table": "metrics"},
        ),
    wildcard_constraints:
        dataset="|".join(map(re.escape, READY)),
    params:
        out=lambda wildcards, output: os.path.dirname(output.rows),
        paper=lambda wildcards: paper_table(wildcards.dataset),
        snapshot_shape=lambda wildcards: snapshot_shape(wildcards.dataset),
    log:
        "logs/tables/{dataset}.log",
    threads: res("tables", "threads")
    resources:
        mem_mb=res("tables", "mem_mb"),
        runtime=res("tables", "runtime"),
    conda:
        ENV
    shell:
        "steik tables --dataset {wildcards.dataset:q} --paper {params.paper:q} --out-dir {params.out:q} "
        "--metrics {input.rows:q} --snapshots {input.snapshots:q} "
        "--snapshot-shape {params.snapshot_shape:q} > {log:q} 2>&1"


rule runtime_table:
    input:
        [f"{TABLES}/{dataset}.parquet" for dataset in READY],
    output:
        table=f"{TABLES}/runtime.parquet",
        markdown=f"{TABLES}/runtime.md",
        html=report(
            f"{TABLES}/runtime.html",
            caption="../report/runtime.rst",
            category="Tables",
            labels={"dataset": "all", "table": "runtime"},
        ),
    log:
        "logs/tables/runtime.log",
    threads: res("tables", "threads")
    resources:
        mem_mb=res("tables", "mem_mb"),
        runtime=res("tables", "runtime"),
    conda:
        ENV
    shell:
        "steik runtime --tables {input:q} --out {output.table:q} > {log:q} 2>&1"
