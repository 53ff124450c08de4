# steik-pipeline: point clouds -> neural SDFs (StEik and baselines) -> meshes -> paper tables.
#
#   snakemake --cores 2 --profile profiles/default            # the default demo run
#   snakemake --cores 8 --configfile config/srb.yaml          # a paper experiment
#   snakemake --report results/report.zip                     # tables and figures
#
# Every rule is a thin `steik ...` call; the stages live in workflow/rules/ (one rule per batch
# and stage, named like train_<dataset>_<run>_<batch>), the config keys in
# workflow/schemas/config.schema.yaml and config/README.md.

from snakemake.utils import min_version

min_version("8.0")


# The default run's config, unless --configfile names another: a paper config then replaces it
# (Snakemake would otherwise merge the two, keeping the demo datasets' keys).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/mesh.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True


# One target per batch stage, named after it (STAGES in common.smk): `snakemake --until train`
# (or `snakemake train`) stops once every batch has passed the stage.
for _stage in STAGES:

    rule:
        name:
            _stage
        input:
            stage_records(_stage),
        localrule: True
