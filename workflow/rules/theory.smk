# Theory of paper §4 and App. A–B (SPEC §5): pure computation from config["theory"], no
# checkpoints needed. Every rule calls `python -m revcurse.theory`; see docs/theory.md.
THEORY = config["theory"]
THEORY_DIR = "results/theory"

# A lambda rather than a def: `snakemake --lint` asks rule files not to define functions.
theory_targets = lambda: [
    "results/table3.csv",
    "results/table3.md",
    f"{THEORY_DIR}/table3_vs_paper.csv",
    "results/figures/eq1_trace.png",
    "results/figures/eq1_trace.pdf",
    f"{THEORY_DIR}/theorem41_mc.csv",
    f"{THEORY_DIR}/theoremB1_check.csv",
]


rule theory_table3:
    input:
        paper="resources/paper_table3.csv",
    output:
        table=report("results/table3.csv", caption="../report/table3.rst", category="Theory"),
        markdown="results/table3.md",
        comparison=report(
            f"{THEORY_DIR}/table3_vs_paper.csv",
            caption="../report/table3_vs_paper.rst",
            category="Theory",
        ),
        provenance="results/table3.provenance.json",
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        "logs/theory/table3.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.theory table3 --config {params.theory:q} --preset {params.preset}"
        " --paper-table {input.paper} --out {output.table} --markdown {output.markdown}"
        " --comparison {output.comparison} > {log} 2>&1"


rule theory_eq1_figure:
    output:
        png=report(
            "results/figures/eq1_trace.png", caption="../report/eq1_trace.rst", category="Theory"
        ),
        pdf="results/figures/eq1_trace.pdf",
        table=f"{THEORY_DIR}/eq1_trace.csv",
        provenance="results/figures/eq1_trace.provenance.json",
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        "logs/theory/eq1_figure.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.theory eq1-figure --config {params.theory:q} --preset {params.preset}"
        " --table {output.table} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule theory_theorem41:
    output:
        table=report(
            f"{THEORY_DIR}/theorem41_mc.csv",
            caption="../report/theorem41_mc.rst",
            category="Theory",
        ),
        provenance=f"{THEORY_DIR}/theorem41_mc.provenance.json",
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        "logs/theory/theorem41_mc.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.theory theorem41 --config {params.theory:q} --preset {params.preset}"
        " --out {output.table} > {log} 2>&1"


rule theory_theorem_b1:
    output:
        table=report(
            f"{THEORY_DIR}/theoremB1_check.csv",
            caption="../report/theoremB1_check.rst",
            category="Theory",
        ),
        provenance=f"{THEORY_DIR}/theoremB1_check.provenance.json",
    params:
        theory=as_json(THEORY),
        preset=PRESET,
    log:
        "logs/theory/theoremB1_check.log",
    conda:
        "../../envs/analysis.yaml"
    shell:
        "python -m revcurse.theory theorem-b1 --config {params.theory:q} --preset {params.preset}"
        " --out {output.table} > {log} 2>&1"
