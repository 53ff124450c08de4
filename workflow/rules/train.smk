# Stage 3: train one method and seed on one batch of shapes (`train.batch_size`, steik.batching)
# as one K-batched network. Each shape's model.pt and train_log.parquet go to its own folder;
# the job's output is the batch record, written once every model of the batch is complete. A job
# killed half-way leaves the batch's checkpoint; the rerun (--rerun-incomplete) resumes from it
# when it belongs to the same run, and otherwise sets it aside and trains from scratch.


rule train:
    input:
        train_inputs,
    output:
        f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/train.json",
    wildcard_constraints:
        run=f"(?!{POISSON}/)[a-z_]+(-seed[0-9]+)?",
    params:
        out=lambda wildcards: str(RESULTS / wildcards.dataset / wildcards.run),
        checkpoint=lambda wildcards, output: os.path.join(
            os.path.dirname(output[0]), "checkpoint.pt"
        ),
        points=batch_samples,
        args=train_args,
    log:
        "logs/train/{dataset}/{run}/{batch}.log",
    benchmark:
        "benchmarks/train/{dataset}/{run}/{batch}.tsv"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        ENV
    shell:
        "steik train --points {params.points:q} --out {params.out:q} {params.args} "
        "--checkpoint {params.checkpoint:q} --resume-if-compatible --record {output:q} > {log:q} 2>&1"
