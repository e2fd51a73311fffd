"""What every study's command line shares: parse, log to stderr with timestamps, run the chosen command."""
from __future__ import annotations

import argparse
import logging
import sys


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> None:
    """Parse ``argv`` and call the chosen subcommand's ``func`` (set with ``set_defaults(func=...)``)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args.func(args)
