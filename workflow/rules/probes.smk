# Probes of the toy runs and Figures 3, 4, 5, 11, 12, 13 (paper §5, App. D.4, E; docs/probes.md).
# A probe job reads one run's snapshots (training dynamics) or final checkpoint and writes
# Parquet tables under <run>/probes/; the figure jobs read nothing but those tables.
PROBE_RUN = f"results/{PRESET}/{{study}}/{{model}}/L{{L}}/seed{{seed}}"
PROBE_LOG = f"{LOG_DIR}/{{study}}/probes/{{model}}_L{{L}}_seed{{seed}}"
PROBE_BENCH = f"{BENCH_DIR}/{{study}}/probes/{{model}}_L{{L}}_seed{{seed}}"


wildcard_constraints:
    study="toy|toy_attention_only",


# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
toy_probe_spec = lambda wildcards: as_json(
    {
        "preset": PRESET,
        "study": wildcards.study,
        "model": wildcards.model,
        "length": int(wildcards.L),
        "seed": int(wildcards.seed),
        "weights": TOY["eval"]["weights"],  # the weights Table 2 evaluates
    }
)
# Probe tables of the grid runs (toy.models × lengths × seeds, in the config's order),
# optionally of some models only.
grid_probes = lambda probe, models=None: [
    f"{TOY_DIR}/{r['model']}/L{r['L']}/seed{r['seed']}/probes/{probe}.parquet"
    for r in toy_runs()
    if models is None or r["model"] in models
]
attention_only_probes = lambda probe: [
    f"{TOY_ATTENTION_ONLY_DIR}/{m}/L{TOY['attention_only']['length']}/seed{s}/probes/{probe}.parquet"
    for m in TOY["attention_only"]["models"]
    for s in TOY["seeds"]
]
masked_diffusion_models = lambda: [
    m for m, fields in TOY["models"].items() if fields["objective"] == "masked_diffusion"
]
# Called by all_targets() once every rule below is defined.
probe_targets = lambda: [
    path
    for rule in (rules.figure3, rules.figure4, rules.figure5, rules.figure11, rules.figure12, rules.figure13)
    for path in rule.output
]


rule probe_attention:
    input:
        f"{PROBE_RUN}/snapshots.pt",
    output:
        f"{PROBE_RUN}/probes/attention.parquet",
    params:
        spec=toy_probe_spec,
        device=TOY["train"].get("device", "auto"),
    log:
        f"{PROBE_LOG}_attention.log",
    benchmark:
        f"{PROBE_BENCH}_attention.tsv"
    threads: 1  # start-up dominates on the CPU: two single-threaded jobs beat one with two threads
    resources:
        gpu=toy_gpus,
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 30 * attempt,
    conda:
        "../../envs/toy.yaml"
    shell:
        "python -m revcurse.cli toy-probe attention --spec {params.spec:q} --checkpoint {input} "
        "--device {params.device} --out attention={output} > {log} 2>&1"


rule probe_training_dynamics:
    input:
        f"{PROBE_RUN}/snapshots.pt",
    output:
        alignment=f"{PROBE_RUN}/probes/gradient_alignment.parquet",
        probability=f"{PROBE_RUN}/probes/query_probability.parquet",
    params:
        spec=toy_probe_spec,
        device=TOY["train"].get("device", "auto"),
    log:
        f"{PROBE_LOG}_training_dynamics.log",
    benchmark:
        f"{PROBE_BENCH}_training_dynamics.tsv"
    threads: 1  # start-up dominates on the CPU: two single-threaded jobs beat one with two threads
    resources:
        gpu=toy_gpus,
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    conda:
        "../../envs/toy.yaml"
    shell:
        "python -m revcurse.cli toy-probe training_dynamics --spec {params.spec:q} --checkpoint {input} "
        "--device {params.device} --out gradient_alignment={output.alignment} "
        "--out query_probability={output.probability} > {log} 2>&1"


rule probe_reverse_positions:
    input:
        f"{PROBE_RUN}/model.pt",
    output:
        f"{PROBE_RUN}/probes/reverse_positions.parquet",
    params:
        spec=toy_probe_spec,
    log:
        f"{PROBE_LOG}_reverse_positions.log",
    benchmark:
        f"{PROBE_BENCH}_reverse_positions.tsv"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 10 * attempt,
    conda:
        "../../envs/toy.yaml"
    shell:
        "python -m revcurse.cli toy-probe reverse_positions --spec {params.spec:q} --checkpoint {input} "
        "--device cpu --out reverse_positions={output} > {log} 2>&1"  # one forward pass: no GPU


# Every figure rule is this one with other inputs, outputs and figure name.
rule figure3:
    input:
        grid_probes("attention", masked_diffusion_models()),
    output:
        png=report(
            f"{FIGURE_DIR}/fig3_attention_correlation.png",
            caption="../report/fig3.rst",
            category="Toy study",
            labels={"figure": "Figure 3"},
        ),
        pdf=f"{FIGURE_DIR}/fig3_attention_correlation.pdf",
        csv=f"{FIGURE_DIR}/fig3_attention_correlation.csv",
    params:
        figure="fig3",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig3.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig3.tsv"
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.cli toy-figure {params.figure} --inputs {input} --settings {params.settings:q} "
        "--png {output.png} --pdf {output.pdf} --csv {output.csv} --config-hash {params.config_hash} "
        "> {log} 2>&1"


use rule figure3 as figure4 with:
    input:
        attention_only_probes("gradient_alignment") + attention_only_probes("query_probability"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig4_attention_only_alignment.png",
            caption="../report/fig4.rst",
            category="Toy study",
            labels={"figure": "Figure 4"},
        ),
        pdf=f"{FIGURE_DIR}/fig4_attention_only_alignment.pdf",
        csv=f"{FIGURE_DIR}/fig4_attention_only_alignment.csv",
    params:
        figure="fig4",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig4.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig4.tsv"


use rule figure3 as figure5 with:
    input:
        grid_probes("gradient_alignment", masked_diffusion_models())
        + grid_probes("query_probability", masked_diffusion_models()),
    output:
        png=report(
            f"{FIGURE_DIR}/fig5_gradient_alignment.png",
            caption="../report/fig5.rst",
            category="Toy study",
            labels={"figure": "Figure 5"},
        ),
        pdf=f"{FIGURE_DIR}/fig5_gradient_alignment.pdf",
        csv=f"{FIGURE_DIR}/fig5_gradient_alignment.csv",
    params:
        figure="fig5",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig5.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig5.tsv"


use rule figure3 as figure11 with:
    input:
        grid_probes("reverse_positions"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig11_reverse_positions.png",
            caption="../report/fig11.rst",
            category="Toy study",
            labels={"figure": "Figure 11"},
        ),
        pdf=f"{FIGURE_DIR}/fig11_reverse_positions.pdf",
        csv=f"{FIGURE_DIR}/fig11_reverse_positions.csv",
    params:
        figure="fig11",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig11.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig11.tsv"


use rule figure3 as figure12 with:
    input:
        grid_probes("gradient_alignment") + grid_probes("query_probability"),
    output:
        png=report(
            f"{FIGURE_DIR}/fig12_training_dynamics.png",
            caption="../report/fig12.rst",
            category="Toy study",
            labels={"figure": "Figure 12"},
        ),
        pdf=f"{FIGURE_DIR}/fig12_training_dynamics.pdf",
        csv=f"{FIGURE_DIR}/fig12_training_dynamics.csv",
    params:
        figure="fig12",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig12.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig12.tsv"


use rule figure3 as figure13 with:
    input:
        grid_probes("attention", masked_diffusion_models()),
    output:
        png=report(
            f"{FIGURE_DIR}/fig13_attention_dynamics.png",
            caption="../report/fig13.rst",
            category="Toy study",
            labels={"figure": "Figure 13"},
        ),
        pdf=f"{FIGURE_DIR}/fig13_attention_dynamics.pdf",
        csv=f"{FIGURE_DIR}/fig13_attention_dynamics.csv",
    params:
        figure="fig13",
        settings=as_json(TOY["probes"]),
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/figures/fig13.log",
    benchmark:
        f"{BENCH_DIR}/figures/fig13.tsv"
