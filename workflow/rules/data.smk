# Stages 1-2: fetch a dataset into resources/ (local: needs the network, not the cluster),
# then turn each shape into results/<dataset>/samples/<shape>.npz.


localrules:
    fetch,


checkpoint fetch:
    output:
        lock=f"{RESOURCES}/{{dataset}}.lock.json",
    params:
        root=lambda wildcards, output: os.path.dirname(output.lock) or ".",
    log:
        "logs/fetch/{dataset}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    conda:
        ENV
    shell:
        "steik fetch {wildcards.dataset:q} --root {params.root:q} > {log:q} 2>&1"


rule sample:
    input:
        sample_inputs,
    output:
        f"{RESULTS}/{{dataset}}/samples/{{shape}}.npz",
    params:
        source=lambda wildcards: dataset_args(wildcards.dataset),
        options=lambda wildcards: as_json(stage_options("sample", wildcards.dataset)[0]),
    log:
        "logs/sample/{dataset}/{shape}.log",
    benchmark:
        "benchmarks/sample/{dataset}/{shape}.tsv"
    threads: res("sample", "threads")
    resources:
        mem_mb=res("sample", "mem_mb"),
        runtime=res("sample", "runtime"),
    conda:
        ENV
    shell:
        "steik sample {params.source} {wildcards.shape:q} --options {params.options:q} "
        "--out {output:q} > {log:q} 2>&1"
