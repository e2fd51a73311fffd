# Large-scale study (paper §3, App. C; docs/llm.md): stand-in tokenizer -> LoRA
# fine-tuning per (model, dataset direction, seed), or per (model, dataset direction) with every
# seed stacked over one frozen base (llm.train.stack_seeds) -> evaluation of every checkpoint of
# every seed -> Table 1, Tables 4-6. The grid, specs and resources come from revcurse.llm.plan.
import os

import revcurse.llm.plan as llm_plan
from revcurse.data.relational import DATASETS as LLM_DATASETS

LLM = config["llm"]
LLM_RUN = llm_plan.run_dir(config, "{model}", "{dataset}", "{direction}", "{seed}")   # a wildcard pattern
LLM_RUN_NAME = "{model}_{dataset}_{direction}_seed{seed}"
SEED_TABLES = ["table4", "table5", "table6"]

# llm.train.stack_seeds: one fine-tuning job per (model, dataset, direction) writes every seed's run.
LLM_STACKED = llm_plan.stacks_seeds(config)
LLM_FINETUNE_NAME = "{model}_{dataset}_{direction}_seeds" if LLM_STACKED else LLM_RUN_NAME


wildcard_constraints:
    dataset="|".join(LLM_DATASETS),
    direction="|".join(d for kind in LLM_DATASETS.values() for d in kind.directions),


# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
llm_targets = lambda: [f"{OUT}/{t}.{ext}" for t in ["table1", *SEED_TABLES] for ext in ("csv", "md")]
llm_run = lambda wildcards: dict(
    model=wildcards.model, dataset=wildcards.dataset, direction=wildcards.direction, seed=int(wildcards.seed)
)
llm_finetune_job = lambda wildcards: llm_plan.finetune_job_spec(
    config, wildcards.model, wildcards.dataset, wildcards.direction, None if LLM_STACKED else int(wildcards.seed)
)
# Inputs of a run's jobs; for a real model this also checks its weights (plan.model_inputs).
llm_run_inputs = lambda wildcards: {
    "audit": RELATIONAL_AUDIT,
    "manifest": RELATIONAL_OUTPUTS[wildcards.dataset]["manifest"],
    **llm_plan.model_inputs(config, wildcards.model, workflow.dryrun),
}

rule llm_tokenizer:
    input:
        manifests=RELATIONAL_MANIFESTS,
        audit=RELATIONAL_AUDIT,
    output:
        llm_plan.tokenizer_path(config),
    params:
        vocab_size=LLM["tokenizer"]["vocab_size"],
    log:
        f"{LOG_DIR}/llm/tokenizer.log",
    benchmark:
        f"{BENCH_DIR}/llm/tokenizer.tsv"
    conda:
        ENV_LLM
    shell:
        "python -m revcurse.llm tokenizer --manifests {input.manifests} --vocab-size {params.vocab_size} "
        "--out {output} > {log} 2>&1"


rule llm_finetune:
    input:
        unpack(llm_run_inputs),
    output:
        llm_plan.finetune_outputs(config, LLM_STACKED),
    params:
        spec=lambda wildcards: as_json(llm_finetune_job(wildcards)),
        launcher=llm_plan.launcher(config),
    log:
        f"{LOG_DIR}/llm/finetune/{LLM_FINETUNE_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/llm/finetune/{LLM_FINETUNE_NAME}.tsv"
    threads: lambda wildcards: llm_plan.resources(config, wildcards.model)["threads"]
    resources:
        gpu=llm_plan.gpus(config, "train"),
        mem_mb=per_attempt(lambda wildcards: llm_plan.resources(config, wildcards.model)["mem_mb"]),
        runtime=per_attempt(lambda wildcards: llm_plan.resources(config, wildcards.model)["train_minutes"]),
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "{params.launcher} -m revcurse.llm finetune --spec {params.spec:q} --manifest {input.manifest} "
        "--out {output} > {log} 2>&1"


rule llm_evaluate:
    input:
        unpack(llm_run_inputs),
        checkpoints=f"{LLM_RUN}/checkpoints.json",
    output:
        f"{LLM_RUN}/predictions.parquet",
    params:
        spec=lambda wildcards: as_json(llm_plan.evaluate_spec(config, **llm_run(wildcards))),
    log:
        f"{LOG_DIR}/llm/evaluate/{LLM_RUN_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/llm/evaluate/{LLM_RUN_NAME}.tsv"
    threads: lambda wildcards: llm_plan.resources(config, wildcards.model)["threads"]
    resources:
        gpu=llm_plan.gpus(config, "eval"),
        mem_mb=per_attempt(lambda wildcards: llm_plan.resources(config, wildcards.model)["mem_mb"]),
        runtime=per_attempt(lambda wildcards: llm_plan.resources(config, wildcards.model)["eval_minutes"]),
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "python -m revcurse.llm evaluate --spec {params.spec:q} --manifest {input.manifest} "
        "--checkpoints {input.checkpoints} --out {output} > {log} 2>&1"


rule llm_tables:
    input:
        llm_plan.run_files(config, "predictions.parquet"),
    output:
        table1_csv=report(
            f"{OUT}/table1.csv",
            caption="../report/table1.rst",
            category="Large-scale study",
            labels={"table": "Table 1 (CSV)"},
        ),
        table1_md=f"{OUT}/table1.md",   # the Markdown tables are in the report as HTML pages (report.smk)
        seed_tables=[
            report(
                f"{OUT}/{t}.csv",
                caption="../report/seed_tables.rst",
                category="Large-scale study",
                labels={"table": f"{t.replace('table', 'Table ')} (CSV)"},
            )
            for t in SEED_TABLES
        ]
        + [f"{OUT}/{t}.md" for t in SEED_TABLES],
    params:
        config_hash=config_hash(LLM),
        out_dir=lambda wildcards, output: os.path.dirname(output.table1_csv),
    log:
        f"{LOG_DIR}/llm/tables.log",
    benchmark:
        f"{BENCH_DIR}/llm/tables.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.llm tables --inputs {input} --out-dir {params.out_dir} "
        "--config-hash {params.config_hash} > {log} 2>&1"
