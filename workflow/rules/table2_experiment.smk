# The Table 2 experiment (docs/toy.md, "The Table 2 experiment"): its cells and verdicts from the MDM runs of
# the candidates (presets table2_* of reference/paper/config.yaml) that exist under results/, whatever preset
# this call names. reference/paper/table2_experiment.sh makes the runs, a stage at a time.
rule table2_experiment:
    input:
        evals=table2_experiment_files("eval.parquet"),
        curves=table2_experiment_files("accuracy_over_training.parquet"),
        paper_values="resources/paper_values.yaml",
    output:
        csv="results/table2_experiment.csv",
        verdicts="results/table2_experiment_verdicts.csv",
        md="results/table2_experiment.md",
    log:
        f"{LOG_DIR}/toy/table2_experiment.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy table2-experiment --evals {input.evals} --curves {input.curves} "
        "--paper-values {input.paper_values} --csv {output.csv} --verdicts-csv {output.verdicts} --md {output.md} "
        "> {log} 2>&1"
