"""What every study's command line shares: parse, log to stderr with timestamps, run the chosen command."""
from __future__ import annotations

import argparse
import logging
import sys


class BadInput(ValueError):
    """An input a person can fix (a file, a setting): the message names it, what was found and what was
    expected, and a command line prints it alone, without a traceback (``run_command``)."""


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> None:
    """Parse ``argv`` and call the chosen subcommand's ``func`` (set with ``set_defaults(func=...)``).
    A ``BadInput`` ends the command with its message on stderr and exit status 1."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        args.func(args)
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
