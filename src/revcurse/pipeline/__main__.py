"""Command line of what spans the studies: ``python -m revcurse.pipeline config ...`` prints the resolved config
(revcurse.pipeline.config.load_config) as the workflow would run it, or the one line saying what is wrong with it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from revcurse.core.cli import run_command
from revcurse.core.config import dotted_values
from revcurse.pipeline.config import load_config


def cmd_config(args) -> None:
    config = load_config([*args.configfile, dotted_values(args.set)])
    yaml.safe_dump(config, sys.stdout, sort_keys=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="the resolved, checked config (config.yaml, the files, the preset, --set)")
    p.add_argument("--configfile", type=Path, nargs="+", default=[],
                   help="config overlays after config.yaml, in order, as snakemake --configfile")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="values (YAML) after the files, e.g. preset=quick toy.train.steps=50")
    p.set_defaults(func=cmd_config)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
