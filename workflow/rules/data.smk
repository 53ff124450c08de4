# Stages 1-2: fetch a dataset into resources/ (local: needs the network, not the cluster; with
# `scans` in the config, a local copy of the scans is checked and recorded instead), then turn
# each shape into results/<dataset>/samples/<shape>.npz, one job per batch of shapes (the
# training batches of steik.batching), recorded in samples/batches/<batch>.json.


localrules:
    fetch,


checkpoint fetch:
    output:
        lock=f"{RESOURCES}/{{dataset}}.lock.json",
    params:
        root=lambda wildcards, output: os.path.dirname(output.lock) or ".",
        scans=lambda wildcards: fetch_args(wildcards.dataset),
    log:
        "logs/fetch/{dataset}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        ENV
    shell:
        "steik fetch {wildcards.dataset:q} --root {params.root:q} {params.scans} > {log:q} 2>&1"


rule sample:
    input:
        sample_inputs,
    output:
        f"{RESULTS}/{{dataset}}/samples/batches/{{batch}}.json",
    params:
        source=lambda wildcards: dataset_args(wildcards.dataset),
        shapes=batch_shapes,
        outs=batch_samples,
        options=lambda wildcards: as_json(stage_options("sample", wildcards.dataset)[0]),
    log:
        "logs/sample/{dataset}/{batch}.log",
    benchmark:
        "benchmarks/sample/{dataset}/{batch}.tsv"
    threads: res("sample", "threads")
    resources:
        mem_mb=res("sample", "mem_mb"),
        runtime=res("sample", "runtime"),
    conda:
        ENV
    shell:
        "steik sample {params.source} {params.shapes:q} --options {params.options:q} "
        "--out {params.outs:q} --record {output:q} > {log:q} 2>&1"

