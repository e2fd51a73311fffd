# Theory of paper §4 and App. A–B: pure computation from config["theory"], no
# checkpoints needed. Every rule calls `python -m revcurse.theory`; see docs/theory.md.
THEORY = config["theory"]
THEORY_DIR = f"{OUT}/theory"
THEORY_LOG = f"{LOG_DIR}/theory"
THEORY_BENCH = f"{BENCH_DIR}/theory"

# A lambda rather than a def: `snakemake --lint` asks rule files not to define functions.
theory_targets = lambda: [
    f"{OUT}/table3.csv",
    f"{OUT}/table3.md",
    f"{THEORY_DIR}/table3_vs_paper.csv",
    f"{FIGURE_DIR}/eq1_trace.png",
    f"{FIGURE_DIR}/eq1_trace.pdf",
    f"{THEORY_DIR}/theorem41_mc.csv",
    f"{THEORY_DIR}/theoremB1_check.csv",
]


rule theory_table3:
    input:
        paper="resources/paper_table3.csv",
    output:
        table=report(
            f"{OUT}/table3.csv",
            caption="../report/table3.rst",
            category="Theory",
            labels={"table": "Table 3 (CSV)"},
        ),
        markdown=f"{OUT}/table3.md",   # in the report as an HTML page (report.smk)
        comparison=report(
            f"{THEORY_DIR}/table3_vs_paper.csv",
            caption="../report/table3_vs_paper.rst",
            category="Theory",
            labels={"table": "Table 3 vs the paper (CSV)"},
        ),
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        f"{THEORY_LOG}/table3.log",
    benchmark:
        f"{THEORY_BENCH}/table3.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.theory table3 --config {params.theory:q} --preset {params.preset}"
        " --paper-table {input.paper} --out {output.table} --markdown {output.markdown}"
        " --comparison {output.comparison} > {log} 2>&1"


rule theory_eq1_figure:
    output:
        png=report(
            f"{FIGURE_DIR}/eq1_trace.png",
            caption="../report/eq1_trace.rst",
            category="Theory",
            labels={"figure": "Eq. (1): RoPE trace against distance"},
        ),
        pdf=f"{FIGURE_DIR}/eq1_trace.pdf",
        table=f"{THEORY_DIR}/eq1_trace.csv",
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        f"{THEORY_LOG}/eq1_figure.log",
    benchmark:
        f"{THEORY_BENCH}/eq1_figure.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.theory eq1-figure --config {params.theory:q} --preset {params.preset}"
        " --table {output.table} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule theory_theorem41:
    output:
        table=report(
            f"{THEORY_DIR}/theorem41_mc.csv",
            caption="../report/theorem41_mc.rst",
            category="Theory",
            labels={"table": "Theorem 4.1, Monte-Carlo check (CSV)"},
        ),
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        f"{THEORY_LOG}/theorem41_mc.log",
    benchmark:
        f"{THEORY_BENCH}/theorem41_mc.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.theory theorem41 --config {params.theory:q} --preset {params.preset}"
        " --out {output.table} > {log} 2>&1"


rule theory_theorem_b1:
    output:
        table=report(
            f"{THEORY_DIR}/theoremB1_check.csv",
            caption="../report/theoremB1_check.rst",
            category="Theory",
            labels={"table": "Theorem B.1, closed form vs autograd (CSV)"},
        ),
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        f"{THEORY_LOG}/theoremB1_check.log",
    benchmark:
        f"{THEORY_BENCH}/theoremB1_check.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.theory theorem-b1 --config {params.theory:q} --preset {params.preset}"
        " --out {output.table} > {log} 2>&1"
