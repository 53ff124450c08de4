# Stage 3: train one method on one shape (K = 1). A job killed half-way leaves
# <shape>/checkpoint.pt; the rerun (--rerun-incomplete) passes --resume and continues from it.


rule train:
    input:
        sample=f"{RESULTS}/{{dataset}}/samples/{{shape}}.npz",
    output:
        model=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/model.pt",
        log=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/train_log.parquet",
    params:
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output.model)),
        checkpoint=lambda wildcards, output: os.path.join(
            os.path.dirname(output.model), "checkpoint.pt"
        ),
        args=train_params,
    log:
        "logs/train/{dataset}/{run}/{shape}.log",
    benchmark:
        "benchmarks/train/{dataset}/{run}/{shape}.tsv"
    threads: res("train", "threads")
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
        gpu=res("train", "gpu"),
    conda:
        ENV
    shell:
        "resume=''; : > {log}; "
        "if [ -f {params.checkpoint} ]; then "
        "resume=--resume; echo 'resuming from {params.checkpoint}' >> {log}; fi; "
        "steik train --points {input.sample} --out {params.out} {params.args} $resume "
        ">> {log} 2>&1"
