# Stage 3: train one method and seed on one batch of shapes (`train.batch_size`, steik.batching)
# as one K-batched network. Each (dataset, run, batch) has a rule of its own (common.smk,
# STAGES) whose outputs are each shape's model.pt and train_log.parquet and the batch record,
# written once every model of the batch is complete. A job killed half-way leaves the batch's
# checkpoint; the rerun (--rerun-incomplete) resumes from it when it belongs to the same run,
# and otherwise sets it aside and trains from scratch. With `train.snapshots`, each shape's
# snapshots.pt is written beside its model and is not an output: Snakemake deletes the outputs
# of a failed job, and a resumed training keeps the snapshots its killed attempt wrote.


for _d in READY:
    for _b, _members in batches(_d).items():
        for _run in runs(_d):
            if _run == POISSON:
                continue
            _name = rule_name("train", _d, _run, _b)

            rule:
                name:
                    _name
                input:
                    sample_paths(_d, _members),
                output:
                    models=shape_files(_d, _run, _members, "model.pt"),
                    logs=shape_files(_d, _run, _members, "train_log.parquet"),
                    record=batch_file(_d, _run, _b, "train.json"),
                params:
                    out=lambda wildcards, output: run_folder(output.record),
                    checkpoint=batch_file(_d, _run, _b, "checkpoint.pt"),
                    args=train_args(_d, _run),
                log:
                    f"logs/train/{_d}/{_run}/{_b}.log",
                benchmark:
                    f"benchmarks/train/{_d}/{_run}/{_b}.tsv"
                threads: res("train", "threads")
                resources:
                    mem_mb=res("train", "mem_mb"),
                    runtime=res("train", "runtime"),
                    gpu=res("train", "gpu"),
                conda:
                    ENV
                shell:
                    "steik train --points {input:q} --out {params.out:q} {params.args} "
                    "--checkpoint {params.checkpoint:q} --resume-if-compatible "
                    "--record {output.record:q} > {log:q} 2>&1"

            stage_resources(_name, "train")
