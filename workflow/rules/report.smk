# Stage 7: figures for the report (2D level sets, renders of 3D reconstructions next to the
# ground truth, loss curves). `snakemake --report results/report.zip` collects them with the
# tables and the captions in workflow/report/.


rule levelsets:
    input:
        models=lambda wildcards: figure_inputs(wildcards.dataset, "model.pt"),
        samples=lambda wildcards: sample_files(wildcards.dataset),
    output:
        report(
            f"{FIGURES}/{{dataset}}_levelsets.png",
            caption="../report/levelsets.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "level sets"},
        ),
    log:
        "logs/figures/{dataset}_levelsets.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-levelsets --models {input.models} --samples {input.samples} --out {output} "
        "> {log} 2>&1"


rule renders:
    input:
        meshes=lambda wildcards: figure_inputs(wildcards.dataset, "mesh.ply", renders=True),
        samples=lambda wildcards: sample_files(wildcards.dataset, renders=True),
    output:
        report(
            f"{FIGURES}/{{dataset}}_renders.png",
            caption="../report/renders.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "renders"},
        ),
    params:
        size=config["figures"]["render_size"],
    log:
        "logs/figures/{dataset}_renders.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-renders --meshes {input.meshes} --samples {input.samples} "
        "--size {params.size} --out {output} > {log} 2>&1"


rule losses:
    input:
        lambda wildcards: figure_inputs(wildcards.dataset, "train_log.parquet"),
    output:
        report(
            f"{FIGURES}/{{dataset}}_losses.png",
            caption="../report/losses.rst",
            category="Figures",
            labels={"dataset": "{dataset}", "figure": "loss curves"},
        ),
    log:
        "logs/figures/{dataset}_losses.log",
    threads: res("figures", "threads")
    resources:
        mem_mb=res("figures", "mem_mb"),
        runtime=res("figures", "runtime"),
    conda:
        ENV
    shell:
        "steik plot-losses --logs {input} --out {output} > {log} 2>&1"
