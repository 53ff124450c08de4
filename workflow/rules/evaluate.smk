# Stage 5: the metrics row of each shape of a batch (DESIGN 2 columns: identifiers, metrics,
# timings, status, provenance), one process per batch: <shape>/metrics.parquet per shape and all
# rows of the batch in batches/<batch>/metrics.parquet; networks kept during training (2D
# snapshots) are scored into batches/<batch>/snapshot_metrics.parquet (empty without snapshots).


rule evaluate:
    input:
        extracted=f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/extract.json",
        sampled=batch_sample_record,
    output:
        rows=f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/metrics.parquet",
        snapshots=f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/snapshot_metrics.parquet",
    params:
        samples=batch_samples,
        meshes=lambda wildcards: shape_files(wildcards, "mesh.ply"),
        models=lambda wildcards: (
            [] if wildcards.run == POISSON else shape_files(wildcards, "model.pt")
        ),
        outs=lambda wildcards: shape_files(wildcards, "metrics.parquet"),
        options=lambda wildcards: as_json(stage_options("evaluate", wildcards.dataset)[0]),
        device=lambda wildcards: stage_options("evaluate", wildcards.dataset)[1],
    log:
        "logs/evaluate/{dataset}/{run}/{batch}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/{run}/{batch}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        ENV
    shell:
        "steik evaluate --mesh {params.meshes:q} --model {params.models:q} --sample {params.samples:q} "
        "--out {params.outs:q} --options {params.options:q} --device {params.device:q} "
        "--table {output.rows:q} --snapshot-table {output.snapshots:q} > {log:q} 2>&1"
