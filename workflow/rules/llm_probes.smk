# Probes of the fine-tuned large models and Figures 6, 7, 9 (paper §6, App. F; docs/llm_probes.md).
# A probe job reads one run's checkpoints (from llm_finetune) and writes Parquet tables under
# <run>/probes/; the figure jobs read nothing but those tables. Runs and specs: revcurse.llm.probe_plan.
import revcurse.llm.probe_plan as llm_probe_plan

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
# Called by all_targets() once every rule below is defined: the figures that have runs to show.
llm_probe_targets = lambda: [
    path
    for rule, measurement in ((rules.llm_figure6, "attention"), (rules.llm_figure7, "dynamics"), (rules.llm_figure9, "dynamics"))
    if llm_probe_plan.probe_runs(config, measurement)
    for path in rule.output
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
        mem_mb=lambda wildcards, attempt: llm_probe_resources(wildcards)["mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: llm_probe_resources(wildcards)["minutes"] * attempt,
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "python -m revcurse.llm.probe_cli measure attention --spec {params.spec:q} --manifest {input.manifest} "
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
        mem_mb=lambda wildcards, attempt: llm_probe_resources(wildcards)["mem_mb"] * attempt,
        runtime=lambda wildcards, attempt: llm_probe_resources(wildcards)["minutes"] * attempt,
    conda:
        lambda wildcards: llm_plan.conda_env(config, wildcards.model)
    shell:
        "python -m revcurse.llm.probe_cli measure dynamics --spec {params.spec:q} --manifest {input.manifest} "
        "--checkpoints {input.checkpoints} --out llm_gradient_alignment={output.alignment} "
        "--out llm_query_probability={output.probability} > {log} 2>&1"


# Every figure rule is this one with other inputs, outputs and figure name.
rule llm_figure6:
    input:
        llm_probe_inputs("attention", "llm_attention"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig6_llm_attention_correlation.png",
            caption="../report/fig6.rst",
            category="Large-scale study",
            labels={"figure": "Figure 6"},
        ),
        pdf=f"{FIGURE_DIR}/fig6_llm_attention_correlation.pdf",
        csv=f"{FIGURE_DIR}/fig6_llm_attention_correlation.csv",
    params:
        figure="fig6",
        settings=as_json(LLM_PROBES),
        config_hash=config_hash(LLM),
    log:
        f"{LOG_DIR}/figures/fig6.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig6.tsv"
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.llm.probe_cli figure {params.figure} --inputs {input} --settings {params.settings:q} "
        "--png {output.png} --pdf {output.pdf} --csv {output.csv} --config-hash {params.config_hash} "
        "> {log} 2>&1"


use rule llm_figure6 as llm_figure7 with:
    input:
        llm_probe_inputs("dynamics", "llm_gradient_alignment", "llm_query_probability"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig7_llm_training_dynamics.png",
            caption="../report/fig7.rst",
            category="Large-scale study",
            labels={"figure": "Figure 7"},
        ),
        pdf=f"{FIGURE_DIR}/fig7_llm_training_dynamics.pdf",
        csv=f"{FIGURE_DIR}/fig7_llm_training_dynamics.csv",
    params:
        figure="fig7",
        settings=as_json(LLM_PROBES),
        config_hash=config_hash(LLM),
    log:
        f"{LOG_DIR}/figures/fig7.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig7.tsv"


use rule llm_figure6 as llm_figure9 with:
    input:
        llm_probe_inputs("dynamics", "llm_query_probability"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig9_llm_reverse_token.png",
            caption="../report/fig9.rst",
            category="Large-scale study",
            labels={"figure": "Figure 9"},
        ),
        pdf=f"{FIGURE_DIR}/fig9_llm_reverse_token.pdf",
        csv=f"{FIGURE_DIR}/fig9_llm_reverse_token.csv",
    params:
        figure="fig9",
        settings=as_json(LLM_PROBES),
        config_hash=config_hash(LLM),
    log:
        f"{LOG_DIR}/figures/fig9.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig9.tsv"
