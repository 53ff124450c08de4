# Stage 5: one metrics row per trained model (DESIGN 2 columns: identifiers, metrics, timings,
# status, provenance).


rule evaluate:
    input:
        mesh=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/mesh.ply",
        sidecar=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/mesh.json",
        model=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/model.pt",
        sample=f"{RESULTS}/{{dataset}}/samples/{{shape}}.npz",
    output:
        f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/metrics.parquet",
    params:
        options=lambda wildcards: option_args(
            stage_options("evaluate", wildcards.dataset),
            {"n_samples": "--n-samples", "seed": "--seed", "device": "--device"},
        ),
    log:
        "logs/evaluate/{dataset}/{run}/{shape}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/{run}/{shape}.tsv"
    threads: res("evaluate", "threads")
    resources:
        mem_mb=res("evaluate", "mem_mb"),
        runtime=res("evaluate", "runtime"),
    conda:
        ENV
    shell:
        "steik evaluate --mesh {input.mesh} --model {input.model} --sample {input.sample} "
        "--out {output} {params.options} > {log} 2>&1"
