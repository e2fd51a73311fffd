"""Command line of the ablation study: ``python -m revcurse.ablation table ...`` (its runs use ``python -m revcurse.toy``)."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from revcurse.core.cli import run_command

log = logging.getLogger("revcurse")


def cmd_table(args) -> None:
    from revcurse.ablation.grid import write_outputs

    grid = json.loads(args.grid)
    table = write_outputs(grid, Path(args.csv), Path(args.per_seed_csv), Path(args.md), Path(args.png),
                          Path(args.pdf), {"config_hash": args.config_hash})
    log.info("ablation grid, %d cells:\n%s\n%s", len(table), table.to_string(max_rows=80), Path(args.md).read_text())



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.ablation", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("table", help="the ablation grid's table, conclusion and figure (revcurse.ablation.grid)")
    p.add_argument("--grid", required=True, help="revcurse.ablation.grid.grid_record(config) as JSON")
    p.add_argument("--csv", required=True, help="one row per cell")
    p.add_argument("--per-seed-csv", required=True, help="one row per cell and seed (the plotted values)")
    p.add_argument("--md", required=True, help="the written conclusion")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_table)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
