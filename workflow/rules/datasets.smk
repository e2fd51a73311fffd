# Relational datasets of the large-scale study (paper §3, App. C.1; docs/datasets.md):
# build (generate or import) -> leakage/ambiguity audit -> dataset cards.
# Formats and choices: docs/datasets.md.
import os

from revcurse.data.relational.build import DATASETS as RELATIONAL_DATASETS
from revcurse.data.relational.build import output_files as relational_output_files
from revcurse.data.relational.build import source_files as relational_source_files
from revcurse.data.relational.naming import RESOURCE_FILES as RELATIONAL_RESOURCE_FILES

RELATIONAL_DIR = "results/data"
RELATIONAL_RESOURCES = "resources/relational"
RELATIONAL_OUTPUTS = {
    name: relational_output_files(name, f"{RELATIONAL_DIR}/{name}") for name in RELATIONAL_DATASETS
}
# Source files are resolved at parse time so that a configured path that does not
# exist stops the run here, naming the config key, before any job is scheduled.
RELATIONAL_INPUTS = {
    name: {
        "resources": [f"{RELATIONAL_RESOURCES}/{f}" for f in RELATIONAL_RESOURCE_FILES],
        "source": [str(p) for p in relational_source_files(name, config["datasets"][name])],
    }
    for name in RELATIONAL_DATASETS
}
# A rebuild replaces a dataset; its sources are first read in their own step (rule relational_check),
# so a malformed source stops the run there and the dataset built before is kept.
RELATIONAL_CHECKS = {name: f"{RELATIONAL_DIR}/checks/{name}.json" for name in RELATIONAL_DATASETS}
RELATIONAL_MANIFESTS = [RELATIONAL_OUTPUTS[name]["manifest"] for name in RELATIONAL_DATASETS]
RELATIONAL_AUDIT = f"{RELATIONAL_DIR}/relational_audit.json"

# Final outputs of the dataset stage: every dataset, the passed audit, the cards.
# A lambda rather than a def: `snakemake --lint` asks rule files not to define functions.
dataset_targets = lambda: (
    RELATIONAL_MANIFESTS
    + [RELATIONAL_AUDIT]
    + [f"{RELATIONAL_DIR}/{name}/card.md" for name in RELATIONAL_DATASETS]
)


rule relational_check:
    input:
        unpack(lambda wildcards: RELATIONAL_INPUTS[wildcards.dataset]),
    output:
        f"{RELATIONAL_DIR}/checks/{{dataset}}.json",
    params:
        settings=lambda wildcards: as_json(config["datasets"][wildcards.dataset]),
        resources=RELATIONAL_RESOURCES,
    log:
        "logs/data/{dataset}/check.log",
    wildcard_constraints:
        dataset="|".join(RELATIONAL_DATASETS),
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational check {wildcards.dataset} --settings {params.settings:q} "
        "--resources {params.resources} --report {output} > {log} 2>&1"


rule parent_child_dataset:
    input:
        **RELATIONAL_INPUTS["parent_child"],
        check=RELATIONAL_CHECKS["parent_child"],
    output:
        **RELATIONAL_OUTPUTS["parent_child"],
    params:
        settings=as_json(config["datasets"]["parent_child"]),
        resources=lambda wildcards, input: os.path.dirname(input.resources[0]),
    log:
        "logs/data/parent_child/build.log",
    benchmark:
        "results/data/benchmarks/parent_child/build.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational build parent_child --settings {params.settings:q} "
        "--resources {params.resources} --manifest {output.manifest} > {log} 2>&1"


rule person_description_dataset:
    input:
        **RELATIONAL_INPUTS["person_description"],
        check=RELATIONAL_CHECKS["person_description"],
    output:
        **RELATIONAL_OUTPUTS["person_description"],
    params:
        settings=as_json(config["datasets"]["person_description"]),
        resources=lambda wildcards, input: os.path.dirname(input.resources[0]),
    log:
        "logs/data/person_description/build.log",
    benchmark:
        "results/data/benchmarks/person_description/build.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational build person_description --settings {params.settings:q} "
        "--resources {params.resources} --manifest {output.manifest} > {log} 2>&1"


rule trex_dataset:
    input:
        **RELATIONAL_INPUTS["trex"],
        check=RELATIONAL_CHECKS["trex"],
    output:
        **RELATIONAL_OUTPUTS["trex"],
    params:
        settings=as_json(config["datasets"]["trex"]),
        resources=lambda wildcards, input: os.path.dirname(input.resources[0]),
    log:
        "logs/data/trex/build.log",
    benchmark:
        "results/data/benchmarks/trex/build.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational build trex --settings {params.settings:q} "
        "--resources {params.resources} --manifest {output.manifest} > {log} 2>&1"


# Fails the run on any reverse statement in a training file or any ill-defined answer.
# Stages that train or evaluate on these datasets should take its report as an input,
# so that they never start on data that did not pass.
rule relational_audit:
    input:
        RELATIONAL_MANIFESTS,
    output:
        RELATIONAL_AUDIT,
    log:
        "logs/data/relational_audit.log",
    benchmark:
        "results/data/benchmarks/relational_audit.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational audit {input} --report {output} > {log} 2>&1"


rule relational_card:
    input:
        f"{RELATIONAL_DIR}/{{dataset}}/manifest.json",
    output:
        f"{RELATIONAL_DIR}/{{dataset}}/card.md",
    log:
        "logs/data/{dataset}/card.log",
    benchmark:
        "results/data/benchmarks/{dataset}/card.tsv"
    wildcard_constraints:
        dataset="|".join(RELATIONAL_DATASETS),
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.data.relational card {input} --out {output} > {log} 2>&1"
