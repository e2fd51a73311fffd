# Fidelity report (docs/fidelity.md): the paper's printed values (resources/paper_values.yaml,
# resources/paper_table3.csv) next to ours, with a verdict per value. Included after the rules
# that make its sources.
#
# Inputs: Table 2 and Table 3 are always built for it (the report is about them; Table 3 takes
# seconds). The figure CSVs are read only where they already exist when the DAG is built, so
# asking for the report never starts the probes (GPU-hours of snapshots and probe jobs); a figure
# not built yet gives "not run". Built later, it changes the report's input set, and Snakemake's
# default rerun trigger `input` rebuilds the report on the next invocation.
import os

FIDELITY_REQUIRED = {"table2": f"{OUT}/table2.csv", "table3": f"{OUT}/table3.csv"}
FIDELITY_FIGURES = {
    "fig3": rules.figure3.output.csv,
    "fig4": rules.figure4.output.csv,
    "fig5": rules.figure5.output.csv,
    "fig13": rules.figure13.output.csv,
}
# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
fidelity_sources = lambda wildcards: {
    **FIDELITY_REQUIRED,
    **{name: path for name, path in FIDELITY_FIGURES.items() if os.path.exists(path)},
}
# The report's --source arguments: each source the job's input has.
fidelity_source_args = lambda wildcards, input: " ".join(
    f"--source {name}={input[name]}" for name in [*FIDELITY_REQUIRED, *FIDELITY_FIGURES] if name in input.keys()
)


rule fidelity:
    input:
        unpack(fidelity_sources),
        paper_values="resources/paper_values.yaml",
        paper_table3="resources/paper_table3.csv",
    output:
        md=f"{OUT}/fidelity.md",   # in the report as an HTML page (report.smk)
        csv=report(
            f"{OUT}/fidelity.csv",
            caption="../report/fidelity.rst",
            category="Fidelity",
            labels={"table": "Fidelity report (CSV)"},
        ),
    params:
        sources=fidelity_source_args,
        selection="final",  # Table 2 rows compared; the other selection is shown, not counted
        config_hash=config_hash(TOY),  # as Table 2; Table 3 brings its own (fidelity.md lists each source's)
    log:
        f"{LOG_DIR}/fidelity.log",
    benchmark:
        f"{BENCH_DIR}/fidelity.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.report fidelity --paper-values {input.paper_values} {params.sources} "
        "--selection {params.selection} --config-hash {params.config_hash} --csv {output.csv} --md {output.md} "
        "> {log} 2>&1"
