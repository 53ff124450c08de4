# Stage 5: the metrics row of each shape of a batch (DESIGN 2 columns: identifiers, metrics,
# timings, status, provenance), one process per batch: <shape>/metrics.parquet per shape and all
# rows of the batch in batches/<batch>/metrics.parquet, all outputs of the batch's rule
# (common.smk, STAGES); networks kept during training (snapshots.pt beside each model) are
# scored into batches/<batch>/snapshot_metrics.parquet (empty without snapshots).


for _d in READY:
    for _b, _members in batches(_d).items():
        for _run in runs(_d):
            _name = rule_name("evaluate", _d, _run, _b)

            rule:
                name:
                    _name
                input:
                    meshes=shape_files(_d, _run, _members, "mesh.ply"),
                    sidecars=shape_files(_d, _run, _members, "mesh.json"),
                    models=[] if _run == POISSON else shape_files(_d, _run, _members, "model.pt"),
                    samples=sample_paths(_d, _members),
                output:
                    rows=shape_files(_d, _run, _members, "metrics.parquet"),
                    table=batch_file(_d, _run, _b, "metrics.parquet"),
                    snapshots=batch_file(_d, _run, _b, "snapshot_metrics.parquet"),
                params:
                    options=as_json(stage_options("evaluate", _d)[0]),
                    device=stage_options("evaluate", _d)[1],
                log:
                    f"logs/evaluate/{_d}/{_run}/{_b}.log",
                benchmark:
                    f"benchmarks/evaluate/{_d}/{_run}/{_b}.tsv"
                threads: res("evaluate", "threads")
                resources:
                    mem_mb=res("evaluate", "mem_mb"),
                    runtime=res("evaluate", "runtime"),
                conda:
                    ENV
                shell:
                    "steik evaluate --mesh {input.meshes:q} --model {input.models:q} "
                    "--sample {input.samples:q} --out {output.rows:q} --options {params.options:q} "
                    "--device {params.device:q} --table {output.table:q} "
                    "--snapshot-table {output.snapshots:q} > {log:q} 2>&1"

            stage_resources(_name, "evaluate")
