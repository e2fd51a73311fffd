# Reversal curse in masked diffusion models: the whole study from one command.
#   snakemake all --config preset=quick     # every stage, small settings, laptop CPU
#   snakemake --profile slurm all           # paper scale on a SLURM cluster
# Stages live in workflow/rules/*.smk; the science in the revcurse package.
from snakemake.utils import min_version

min_version("9.20")


include: "workflow/rules/common.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/probes.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/theory.smk"
include: "workflow/rules/llm.smk"
include: "workflow/rules/llm_probes.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/fidelity.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
