"""Command line of the report: ``python -m revcurse.report <command> ...``: the fidelity report (the paper's
printed values next to ours) and the HTML pages of the tables for ``snakemake --report``."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from revcurse.core.cli import run_command

log = logging.getLogger("revcurse")


def cmd_fidelity(args) -> None:
    """The paper's printed values next to ours, with a verdict (revcurse.report.fidelity, docs/fidelity.md)."""
    from revcurse.core.provenance import provenance
    from revcurse.report.fidelity import compare, load_paper_values, markdown, read_sources

    paths = dict(item.split("=", 1) for item in args.source or [])
    sources = read_sources(paths)
    paper_values = load_paper_values(args.paper_values)
    table = compare(paper_values, sources, args.selection)
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    stamp = {"config_hash": args.config_hash, "code_version": provenance()["code_version"]}
    table.assign(**stamp).to_csv(args.csv, index=False)
    Path(args.md).write_text(markdown(table, sources, paths, args.selection, paper_values))
    for artifact, verdicts in table.groupby("artifact", sort=False)["verdict"]:
        log.info("fidelity, %s: %s", artifact, verdicts.value_counts().to_dict())


def cmd_tables(args) -> None:
    """One HTML page per table: its Markdown layout rendered, then every row of its CSV (revcurse.report.html)."""
    from revcurse.report.html import page

    for title, csv, markdown, out in args.table:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(page(title, Path(csv), None if markdown == "-" else Path(markdown)))
        log.info("%s: %s", out, title)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.report", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fidelity", help="the paper's printed values next to ours, with verdicts (revcurse.report.fidelity)")
    p.add_argument("--paper-values", required=True, help="resources/paper_values.yaml")
    p.add_argument("--source", action="append", metavar="NAME=PATH",
                   help="one of our outputs (table2, table3, fig3, fig4, fig5, fig13); a missing one is 'not run'")
    p.add_argument("--selection", choices=["final", "best"], default="final", help="Table 2 rows compared")
    p.add_argument("--config-hash", required=True, help="hash of the toy config (as Table 2), a column of the CSV")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.set_defaults(func=cmd_fidelity)

    p = sub.add_parser("tables", help="HTML pages of tables for snakemake --report (revcurse.report.html)")
    p.add_argument("--table", nargs=4, action="append", required=True, metavar=("TITLE", "CSV", "MD", "OUT"),
                   help="one page: its title, the CSV, the Markdown file (- for none) and the HTML to write")
    p.set_defaults(func=cmd_tables)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
