# Stage 4: the zero level set of each trained network, in original units (3D: a triangle mesh by
# marching cubes; 2D: the zero contour), with mesh.json recording the status and extract_seconds.


rule extract:
    input:
        model=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/model.pt",
        sample=f"{RESULTS}/{{dataset}}/samples/{{shape}}.npz",
    output:
        mesh=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/mesh.ply",
        sidecar=f"{RESULTS}/{{dataset}}/{{run}}/{{shape}}/mesh.json",
    params:
        options=lambda wildcards: option_args(
            stage_options("extract", wildcards.dataset),
            {"resolution": "--resolution", "multires": ("--multires", "--dense"),
             "device": "--device"},
        ),
    log:
        "logs/extract/{dataset}/{run}/{shape}.log",
    benchmark:
        "benchmarks/extract/{dataset}/{run}/{shape}.tsv"
    threads: res("extract", "threads")
    resources:
        mem_mb=res("extract", "mem_mb"),
        runtime=res("extract", "runtime"),
        gpu=res("extract", "gpu"),
    conda:
        ENV
    shell:
        "steik extract --model {input.model} --sample {input.sample} --out {output.mesh} "
        "{params.options} > {log} 2>&1"
