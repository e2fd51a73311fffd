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
# Probe tables of the grid runs (toy.models × lengths × seeds, in the config's order),
# optionally of some models only.
grid_probes = lambda probe, models=None: [
    f"{run_dir(PRESET, 'toy', r['model'], r['L'], r['seed'])}/probes/{probe}.parquet"
    for r in toy_runs()
    if models is None or r["model"] in models
]
attention_only_probes = lambda probe: [
    f"{run_dir(PRESET, 'toy_attention_only', m, TOY['attention_only']['length'], s)}/probes/{probe}.parquet"
    for m in TOY["attention_only"]["models"]
    for s in TOY["seeds"]
]
masked_diffusion_models = lambda: [
    m for m, fields in TOY["models"].items() if fields["objective"] == "masked_diffusion"
]
# The toy figures (their rules: figures.smk): file name and the probe tables each reads.
TOY_FIGURES = {
    "fig3": ("fig3_attention_correlation", grid_probes("attention", masked_diffusion_models())),
    "fig4": ("fig4_attention_only_alignment",
             attention_only_probes("gradient_alignment") + attention_only_probes("query_probability")),
    "fig5": ("fig5_gradient_alignment",
             grid_probes("gradient_alignment", masked_diffusion_models())
             + grid_probes("query_probability", masked_diffusion_models())),
    "fig11": ("fig11_reverse_positions", grid_probes("reverse_positions")),
    "fig12": ("fig12_training_dynamics", grid_probes("gradient_alignment") + grid_probes("query_probability")),
    "fig13": ("fig13_attention_dynamics", grid_probes("attention", masked_diffusion_models())),
}
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
