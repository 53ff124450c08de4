# Stage 4: the zero level set of each trained network of a batch, in original units (3D: a
# triangle mesh by marching cubes; 2D: the zero contour), one process per batch. Each mesh.ply has
# a mesh.json sidecar with its status and extract_seconds; both are outputs of the batch's rule
# (common.smk, STAGES), with the batch record. Screened Poisson (method `poisson`, 3D datasets)
# reconstructs from the samples instead, with no training job, into the same files.


for _d in READY:
    for _b, _members in batches(_d).items():
        for _run in runs(_d):
            _outputs = dict(
                meshes=shape_files(_d, _run, _members, "mesh.ply"),
                sidecars=shape_files(_d, _run, _members, "mesh.json"),
                record=batch_file(_d, _run, _b, "extract.json"),
            )
            if _run != POISSON:
                _name = rule_name("extract", _d, _run, _b)

                rule:
                    name:
                        _name
                    input:
                        models=shape_files(_d, _run, _members, "model.pt"),
                        samples=sample_paths(_d, _members),
                    output:
                        **_outputs,
                    params:
                        options=as_json(stage_options("extract", _d)[0]),
                        device=stage_options("extract", _d)[1],
                    log:
                        f"logs/extract/{_d}/{_run}/{_b}.log",
                    benchmark:
                        f"benchmarks/extract/{_d}/{_run}/{_b}.tsv"
                    threads: res("extract", "threads")
                    resources:
                        mem_mb=res("extract", "mem_mb"),
                        runtime=res("extract", "runtime"),
                        gpu=res("extract", "gpu"),
                    conda:
                        ENV
                    shell:
                        "steik extract --model {input.models:q} --sample {input.samples:q} "
                        "--out {output.meshes:q} --options {params.options:q} "
                        "--device {params.device:q} --record {output.record:q} > {log:q} 2>&1"

                stage_resources(_name, "extract")
            else:
                _name = rule_name("reconstruct", _d, _run, _b)

                rule:
                    name:
                        _name
                    input:
                        sample_paths(_d, _members),
                    output:
                        **_outputs,
                    params:
                        options=poisson_options(),
                    log:
                        f"logs/reconstruct/{_d}/{_run}/{_b}.log",
                    benchmark:
                        f"benchmarks/reconstruct/{_d}/{_run}/{_b}.tsv"
                    threads: res("extract", "threads")
                    resources:
                        mem_mb=res("extract", "mem_mb"),
                        runtime=res("extract", "runtime"),
                    conda:
                        ENV
                    shell:
                        "steik reconstruct --sample {input:q} --out {output.meshes:q} "
                        "--options {params.options:q} --record {output.record:q} > {log:q} 2>&1"

                stage_resources(_name, "reconstruct")
