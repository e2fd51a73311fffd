# The figure rules of both studies, alike but for their table: Figures 3, 4, 5, 11, 12, 13 (toy,
# TOY_FIGURES in probes.smk) and 6, 7, 9 (large models, LLM_FIGURES in llm_probes.smk). Each runs its
# study's figure command on the probe tables it reads and writes PNG, PDF and the plotted values (CSV).
FIGURES = {
    figure_rule_name(figure): dict(
        figure=figure, stem=stem, inputs=figure_probes(figure, TOY), command="python -m revcurse.toy figure",
        category="Toy study",
        settings=as_json(TOY["probes"]), config_hash=config_hash(TOY),
    )
    for figure, (stem, _) in TOY_FIGURES.items()
} | {
    figure_rule_name(figure, "llm_"): dict(
        figure=figure, stem=stem, inputs=llm_probe_inputs(measurement, *tables),
        command="python -m revcurse.llm probe-figure", category="Large-scale study",
        settings=as_json(LLM_PROBES), config_hash=config_hash(LLM),
    )
    for figure, (stem, measurement, tables) in LLM_FIGURES.items()
}

# A figure job's command line (also reference.smk's, which draws the toy figures from shipped probe tables).
FIGURE_COMMAND = (
    "{params.command} {params.figure} --inputs {input} --settings {params.settings:q} "
    "--png {output.png} --pdf {output.pdf} --csv {output.csv} --config-hash {params.config_hash} > {log} 2>&1"
)


for _rule, _figure in FIGURES.items():

    rule:
        name:
            _rule
        input:
            _figure["inputs"],
        output:
            png=report(
                f"{FIGURE_DIR}/{_figure['stem']}.png",
                caption=f"../report/{_figure['figure']}.rst",
                category=_figure["category"],
                labels={"figure": f"Figure {_figure['figure'][3:]}"},
            ),
            pdf=f"{FIGURE_DIR}/{_figure['stem']}.pdf",
            csv=f"{FIGURE_DIR}/{_figure['stem']}.csv",
        params:
            command=_figure["command"],
            figure=_figure["figure"],
            settings=_figure["settings"],
            config_hash=_figure["config_hash"],
        log:
            f"{LOG_DIR}/figures/{_figure['figure']}.log",
        benchmark:
            f"{BENCH_DIR}/figures/{_figure['figure']}.tsv"
        conda:
            ENV_ANALYSIS
        shell:
            FIGURE_COMMAND
