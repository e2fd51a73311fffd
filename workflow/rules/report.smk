# What `snakemake --report` shows (captions: workflow/report/). The report shows an HTML file inside
# the page but a CSV or Markdown file only as a download, so every table also gets an HTML page
# (revcurse.report.html: the Markdown layout, then every row of the CSV). Included last: it reads
# the other rule files' paths. Also here: the stop for a paper path asked for under another preset.
import re
import shlex

REPORT_DIR = f"{OUT}/report"


report: "../report/workflow.rst"


# page name: title (the report's label), category, caption, CSV, Markdown (None: the CSV alone)
REPORT_TABLES = {
    "table2": ("Table 2", "Toy study", "table2.rst", f"{OUT}/table2.csv", f"{OUT}/table2.md"),
    "toy_decoding_choices": ("Decoding choices", "Toy study", "toy_decoding_choices.rst",
                             f"{OUT}/toy_decoding_choices.csv", f"{OUT}/toy_decoding_choices.md"),
    "table3": ("Table 3", "Theory", "table3.rst", f"{OUT}/table3.csv", f"{OUT}/table3.md"),
    "table3_vs_paper": ("Table 3 vs the paper", "Theory", "table3_vs_paper.rst",
                        f"{THEORY_DIR}/table3_vs_paper.csv", None),
    "theorem41_mc": ("Theorem 4.1, Monte-Carlo check", "Theory", "theorem41_mc.rst",
                     f"{THEORY_DIR}/theorem41_mc.csv", None),
    "theoremB1_check": ("Theorem B.1, closed form vs autograd", "Theory", "theoremB1_check.rst",
                        f"{THEORY_DIR}/theoremB1_check.csv", None),
    "table1": ("Table 1", "Large-scale study", "table1.rst", f"{OUT}/table1.csv", f"{OUT}/table1.md"),
    **{t: (t.replace("table", "Table "), "Large-scale study", "seed_tables.rst", f"{OUT}/{t}.csv", f"{OUT}/{t}.md")
       for t in SEED_TABLES},
    "ablation": ("Ablation grid and conclusion", "Ablation", "ablation.rst", f"{OUT}/ablation.csv",
                 f"{OUT}/ablation_conclusion.md"),
    "fidelity": ("Fidelity report", "Fidelity", "fidelity.rst", f"{OUT}/fidelity.csv", f"{OUT}/fidelity.md"),
}
# Called by all_targets() once the rule below is defined.
report_targets = lambda: list(rules.report_tables.output)


rule report_tables:
    input:
        [path for *_, csv, md in REPORT_TABLES.values() for path in (csv, md) if path],
    output:
        [
            report(
                f"{REPORT_DIR}/{name}.html",
                caption=f"../report/{caption}",
                category=category,
                labels={"table": title},
            )
            for name, (title, category, caption, *_) in REPORT_TABLES.items()
        ],
    params:
        pages=" ".join(
            shlex.join(["--table", title, csv, md or "-", f"{REPORT_DIR}/{name}.html"])
            for name, (title, _, _, csv, md) in REPORT_TABLES.items()
        ),
    log:
        f"{LOG_DIR}/report_tables.log",
    benchmark:
        f"{BENCH_DIR}/report_tables.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.report tables {params.pages} > {log} 2>&1"


# Under a smoke-test preset the paper's paths (results/table2.csv, results/figures/...) are not this
# preset's: asking for one stops the run, naming the preset's own path, instead of "no rule".
if OUT != "results":
    PAPER_PATHS = [path[len(OUT) + 1:] for path in all_targets() if path.startswith(f"{OUT}/")]

    rule paper_preset_output:
        input:
            lambda wildcards: other_presets_output(f"results/{wildcards.path}", PRESET),
        output:
            "results/{path}",
        wildcard_constraints:
            path="|".join(map(re.escape, PAPER_PATHS)),
        shell:
            "false"
