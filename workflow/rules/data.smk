# Stages 1-2: fetch a dataset into resources/ (local: needs the network, not the cluster; with
# `scans` in the config, a local copy of the scans is checked and recorded instead), then turn
# each shape into results/<dataset>/samples/<shape>.npz, one job per batch of shapes (the
# training batches of steik.batching), recorded in samples/batches/<batch>.json. Each batch has
# a rule of its own (common.smk, STAGES) whose outputs are the batch's sample files and record.


localrules:
    fetch,


rule fetch:
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


for _d in READY:
    for _b, _members in batches(_d).items():
        _name = rule_name("sample", _d, _b)

        rule:
            name:
                _name
            input:
                sample_sources(_d, _members),
            output:
                samples=sample_paths(_d, _members),
                record=sample_record(_d, _b),
            params:
                source=dataset_args(_d),
                shapes=_members,
                options=as_json(stage_options("sample", _d)[0]),
            log:
                f"logs/sample/{_d}/{_b}.log",
            benchmark:
                f"benchmarks/sample/{_d}/{_b}.tsv"
            threads: res("sample", "threads")
            resources:
                mem_mb=res("sample", "mem_mb"),
                runtime=res("sample", "runtime"),
            conda:
                ENV
            shell:
                "steik sample {params.source} {params.shapes:q} --options {params.options:q} "
                "--out {output.samples:q} --record {output.record:q} > {log:q} 2>&1"

        stage_resources(_name, "sample")
