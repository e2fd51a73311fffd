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


def cmd_reference_provenance(args) -> None:
    """The shipped reference's provenance.json (revcurse.report.reference)."""
    import json

    from revcurse.report.reference import write_provenance

    record = write_provenance(Path(args.out), Path(args.benchmarks), json.loads(args.config_hashes))
    log.info("provenance: %s", json.dumps(record, indent=2))


def cmd_ship_reference(args) -> None:
    """Copy the built reference into the tree and write the README's Table 2 block (revcurse.report.reference)."""
    from revcurse.report.reference import ship

    copied = ship(Path(args.build), Path(args.to), Path(args.readme))
    log.info("shipped %d files from %s into %s", len(copied), args.build, args.to)


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

    p = sub.add_parser("reference-provenance", help="the shipped reference's provenance.json")
    p.add_argument("--benchmarks", required=True, help="the runs' Snakemake benchmark records, <preset>/.../<job>.tsv")
    p.add_argument("--config-hashes", required=True, help="JSON: preset -> the hash of its toy config")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_reference_provenance)

    p = sub.add_parser("ship-reference", help="copy the built reference into the tree, and README's Table 2 block")
    p.add_argument("--build", required=True, help="the built reference, e.g. results/reference")
    p.add_argument("--to", required=True, help="e.g. reference/paper")
    p.add_argument("--readme", required=True, help="the README whose Table 2 block is rewritten")
    p.set_defaults(func=cmd_ship_reference)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
