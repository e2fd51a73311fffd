# Probes of the toy runs and Figures 3, 4, 5, 11, 12, 13 (paper §5, App. D.4, E; docs/probes.md).
# A probe job reads one run's snapshots (training dynamics) or final checkpoint and writes
# Parquet tables under <run>/probes/; the figure jobs (figures.smk) read nothing but those tables.
PROBE_RUN = run_dir(PRESET, "{study}", "{model}", "{L}", "{seed}")
PROBE_LOG = f"{LOG_DIR}/{{study}}/probes/{RUN_NAME}"
PROBE_BENCH = f"{BENCH_DIR}/{{study}}/probes/{RUN_NAME}"


wildcard_constraints:
    study="toy|toy_attention_only",


# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
toy_probe_spec = lambda wildcards, device=None: as_json(
    toy_specs.toy_probe_spec(config, wildcards.study, wildcards.model, int(wildcards.L), int(wildcards.seed), device)
)
# The toy figures (their rules: figures.smk): file name and the probe tables each reads, as
# (study, probe, objective of the models it reads: None for every model).
TOY_FIGURES = {
    "fig3": ("fig3_attention_correlation", [("toy", "attention", "masked_diffusion")]),
    "fig4": ("fig4_attention_only_alignment",
             [("toy_attention_only", "gradient_alignment", None), ("toy_attention_only", "query_probability", None)]),
    "fig5": ("fig5_gradient_alignment",
             [("toy", "gradient_alignment", "masked_diffusion"), ("toy", "query_probability", "masked_diffusion")]),
    "fig11": ("fig11_reverse_positions", [("toy", "reverse_positions", None)]),
    "fig12": ("fig12_training_dynamics", [("toy", "gradient_alignment", None), ("toy", "query_probability", None)]),
    "fig13": ("fig13_attention_dynamics", [("toy", "attention", "masked_diffusion")]),
}
# The probed runs of a toy config, as (study, model, L, seed): the grid (models × lengths × seeds) and the
# attention-only runs, in the config's order.
probe_runs = lambda toy: (
    [("toy", r["model"], r["L"], r["seed"]) for r in toy_runs(toy)]
    + [("toy_attention_only", m, toy["attention_only"]["length"], s)
       for m in toy["attention_only"]["models"] for s in toy["seeds"]])
# The probe tables a figure reads: those of the probed runs of ``toy`` (a toy config) made under ``preset``, in
# ``root`` (the reference's shipped copies are under REFERENCE_RUNS).
figure_probes = lambda figure, toy, preset=PRESET, root=RESULTS: [
    f"{run_dir(preset, study, model, L, seed, root=root)}/probes/{probe}.parquet"
    for probe_study, probe, objective in TOY_FIGURES[figure][1]
    for study, model, L, seed in probe_runs(toy)
    if study == probe_study and objective in (None, toy["models"][model]["objective"])
]
# Called by all_targets() once every rule is defined.
probe_targets = lambda: [path for figure in TOY_FIGURES for path in getattr(rules, figure_rule_name(figure)).output]


rule probe_attention:
    input:
        f"{PROBE_RUN}/snapshots.pt",
    output:
        f"{PROBE_RUN}/probes/attention.parquet",
    params:
        spec=toy_probe_spec,
    log:
        f"{PROBE_LOG}_attention.log",
    benchmark:
        f"{PROBE_BENCH}_attention.tsv"
    threads: 1  # start-up dominates on the CPU: two single-threaded jobs beat one with two threads
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(8000),
        runtime=per_attempt(30),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy probe attention --spec {params.spec:q} --checkpoint {input} "
        "--out attention={output} > {log} 2>&1"


rule probe_training_dynamics:
    input:
        f"{PROBE_RUN}/snapshots.pt",
    output:
        alignment=f"{PROBE_RUN}/probes/gradient_alignment.parquet",
        probability=f"{PROBE_RUN}/probes/query_probability.parquet",
    params:
        spec=toy_probe_spec,
    log:
        f"{PROBE_LOG}_training_dynamics.log",
    benchmark:
        f"{PROBE_BENCH}_training_dynamics.tsv"
    threads: 1  # start-up dominates on the CPU: two single-threaded jobs beat one with two threads
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(8000),
        runtime=per_attempt(60),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy probe training_dynamics --spec {params.spec:q} --checkpoint {input} "
        "--out gradient_alignment={output.alignment} "
        "--out query_probability={output.probability} > {log} 2>&1"


rule probe_reverse_positions:
    input:
        f"{PROBE_RUN}/model.pt",
    output:
        f"{PROBE_RUN}/probes/reverse_positions.parquet",
    params:
        spec=lambda wildcards: toy_probe_spec(wildcards, device="cpu"),  # one forward pass: no GPU
    log:
        f"{PROBE_LOG}_reverse_positions.log",
    benchmark:
        f"{PROBE_BENCH}_reverse_positions.tsv"
    threads: 1
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(10),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy probe reverse_positions --spec {params.spec:q} --checkpoint {input} "
        "--out reverse_positions={output} > {log} 2>&1"
