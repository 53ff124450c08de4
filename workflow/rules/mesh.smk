# Stage 4: the zero level set of each trained network of a batch, in original units (3D: a
# triangle mesh by marching cubes; 2D: the zero contour), one process per batch. Each mesh.ply has
# a mesh.json sidecar with its status and extract_seconds; the job's output is the batch record.
# Screened Poisson (method `poisson`, 3D datasets) reconstructs from the samples instead, with
# no training job, into the same files.


rule extract:
    input:
        trained=f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/train.json",
        sampled=batch_sample_record,
    output:
        f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/extract.json",
    params:
        samples=batch_samples,
        models=lambda wildcards: shape_files(wildcards, "model.pt"),
        meshes=lambda wildcards: shape_files(wildcards, "mesh.ply"),
        options=lambda wildcards: as_json(stage_options("extract", wildcards.dataset)[0]),
        device=lambda wildcards: stage_options("extract", wildcards.dataset)[1],
    wildcard_constraints:
        run=f"(?!{POISSON}/)[a-z_]+(-seed[0-9]+)?",
    log:
        "logs/extract/{dataset}/{run}/{batch}.log",
    benchmark:
        "benchmarks/extract/{dataset}/{run}/{batch}.tsv"
    threads: res("extract", "threads")
    resources:
        mem_mb=res("extract", "mem_mb"),
        runtime=res("extract", "runtime"),
        gpu=res("extract", "gpu"),
    conda:
        ENV
    shell:
        "steik extract --model {params.models:q} --sample {params.samples:q} --out {params.meshes:q} "
        "--options {params.options:q} --device {params.device:q} --record {output:q} > {log:q} 2>&1"


rule reconstruct:
    input:
        batch_sample_record,
    output:
        f"{RESULTS}/{{dataset}}/{{run}}/batches/{{batch}}/extract.json",
    wildcard_constraints:
        run=POISSON,
    params:
        samples=batch_samples,
        meshes=lambda wildcards: shape_files(wildcards, "mesh.ply"),
        options=poisson_options(),
    log:
        "logs/reconstruct/{dataset}/{run}/{batch}.log",
    benchmark:
        "benchmarks/reconstruct/{dataset}/{run}/{batch}.tsv"
    threads: res("extract", "threads")
    resources:
        mem_mb=res("extract", "mem_mb"),
        runtime=res("extract", "runtime"),
    conda:
        ENV
    shell:
        "steik reconstruct --sample {params.samples:q} --out {params.meshes:q} --options {params.options:q} "
        "--record {output:q} > {log:q} 2>&1"
