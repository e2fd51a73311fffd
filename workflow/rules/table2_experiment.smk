# The Table 2 experiment (docs/toy.md, "The Table 2 experiment"): its cells and verdicts from the MDM runs of
# the candidates (presets table2_* of reference/paper/config.yaml) that exist under results/, whatever preset
# this call names. reference/paper/table2_experiment.sh makes the runs, a stage at a time.
TABLE2_EXPERIMENT_RUNS = "results/{candidate}/toy/mdm/L{L}/seed{seed}"


def table2_experiment_files(name):
    """Input function: ``name`` of every evaluated run of a table2_* preset."""
    def files(wildcards):
        runs = glob_wildcards(f"{TABLE2_EXPERIMENT_RUNS}/eval.parquet")
        found = sorted(f"{TABLE2_EXPERIMENT_RUNS}/{name}".format(candidate=c, L=L, seed=s)
                       for c, L, s in zip(runs.candidate, runs.L, runs.seed) if c.startswith("table2_"))
        if not found:
            raise ValueError("results/table2_experiment.*: no evaluated run of a table2_* preset under results/; "
                             "make them first: bash reference/paper/table2_experiment.sh A")
        return found
    return files


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
