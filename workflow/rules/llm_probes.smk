# Probes of the fine-tuned large models and Figures 6, 7, 9 (paper §6, App. F; docs/llm_probes.md).
# A probe job reads one run's checkpoints (from llm_finetune) and writes Parquet tables under
# <run>/probes/; the figure jobs (figures.smk) read nothing but those tables. Runs and specs: revcurse.llm.probes.plan.
import revcurse.llm.probes.plan as llm_probe_plan

LLM_PROBES = LLM["probes"]
LLM_PROBE_LOG = f"{LOG_DIR}/llm/probes/{LLM_RUN_NAME}"
LLM_PROBE_BENCH = f"{BENCH_DIR}/llm/probes/{LLM_RUN_NAME}"
LLM_PROBE_OUT = f"{LLM_RUN}/probes"

# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
llm_probe_spec = lambda wildcards: as_json(llm_probe_plan.probe_spec(config, **llm_run(wildcards)))
llm_probe_resources = lambda wildcards: llm_probe_plan.resources(config, wildcards.model)
# Inputs of a figure, evaluated only when it is asked for (probe_plan stops on a grid with nothing to probe).
llm_probe_inputs = lambda measurement, *tables: lambda wildcards: [
    path for table in tables for path in llm_probe_plan.probe_files(config, measurement, table)
]
# The large-model figures (their rules: figures.smk): file name, the measurement whose runs they show
# and the probe tables each reads.
LLM_FIGURES = {
    "fig6": ("fig6_llm_attention_correlation", "attention", ("llm_attention",)),
    "fig7": ("fig7_llm_training_dynamics", "dynamics", ("llm_gradient_alignment", "llm_query_probability")),
    "fig9": ("fig9_llm_reverse_token", "dynamics", ("llm_query_probability",)),
}
# Called by all_targets() once every rule is defined: the figures that have runs to show.
llm_probe_targets = lambda: [
    path
    for figure, (_, measurement, _) in LLM_FIGURES.items()
    if llm_probe_plan.probe_runs(config, measurement)
    for path in getattr(rules, figure_rule_name(figure, "llm_")).output
]


rule llm_probe_attention:
    input:
        unpack(llm_run_inputs),
        checkpoints=f"{LLM_RUN}/checkpoints.json",
    output:
        f"{LLM_PROBE_OUT}/llm_attention.parquet",
    params:
        spec=llm_probe_spec,
    log:
        f"{LLM_PROBE_LOG}_attention.log",
    benchmark:
        f"{LLM_PROBE_BENCH}_attention.tsv"
    threads: lambda wildcards: llm_probe_resources(wildcards)["threads"]
    resources:
        gpu=llm_plan.gpus(config, "eval"),
        mem_mb=per_attempt(lambda wildcards: llm_probe_resources(wildcards)["mem_mb"]),
        runtime=per_attempt(lambda wildcards: llm_probe_resources(wildcards)["minutes"]),
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "python -m revcurse.llm probe attention --spec {params.spec:q} --manifest {input.manifest} "
        "--checkpoints {input.checkpoints} --out llm_attention={output} > {log} 2>&1"


rule llm_probe_dynamics:
    input:
        unpack(llm_run_inputs),
        checkpoints=f"{LLM_RUN}/checkpoints.json",
    output:
        alignment=f"{LLM_PROBE_OUT}/llm_gradient_alignment.parquet",
        probability=f"{LLM_PROBE_OUT}/llm_query_probability.parquet",
    params:
        spec=llm_probe_spec,
    log:
        f"{LLM_PROBE_LOG}_dynamics.log",
    benchmark:
        f"{LLM_PROBE_BENCH}_dynamics.tsv"
    threads: lambda wildcards: llm_probe_resources(wildcards)["threads"]
    resources:
        gpu=llm_plan.gpus(config, "eval"),
        mem_mb=per_attempt(lambda wildcards: llm_probe_resources(wildcards)["mem_mb"]),
        runtime=per_attempt(lambda wildcards: llm_probe_resources(wildcards)["minutes"]),
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "python -m revcurse.llm probe dynamics --spec {params.spec:q} --manifest {input.manifest} "
        "--checkpoints {input.checkpoints} --out llm_gradient_alignment={output.alignment} "
        "--out llm_query_probability={output.probability} > {log} 2>&1"
