"""Command line of the relational datasets, called by workflow/rules/datasets.smk.

    python -m revcurse.data.relational check parent_child --settings '{...}' \
        --resources resources/relational --report results/data/checks/parent_child.json
    python -m revcurse.data.relational build parent_child --settings '{...}' \
        --resources resources/relational --manifest results/data/parent_child/manifest.json
    python -m revcurse.data.relational audit M1 M2 ... --report results/data/relational_audit.json
    python -m revcurse.data.relational card M --out results/data/parent_child/card.md

A bad input or a failed audit ends with one message on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from revcurse.core.provenance import provenance
from revcurse.data.relational.audit import AuditFailure, audit_manifests
from revcurse.data.relational.build import DATASETS, build_dataset
from revcurse.data.relational.cards import render_card
from revcurse.data.relational.naming import RESOURCE_DIR, load_resources
from revcurse.data.relational.records import MANIFEST, write_dataset, write_files_atomically


def cmd_check(args) -> None:
    dataset = build_dataset(args.dataset, json.loads(args.settings), load_resources(args.resources))
    report = {"dataset": dataset.name, "source": dataset.source,
              "training_statements": {d.name: len(d.train) for d in dataset.directions}}
    _write_text(args.report, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def cmd_build(args) -> None:
    dataset = build_dataset(args.dataset, json.loads(args.settings), load_resources(args.resources))
    write_dataset(dataset, args.manifest.parent, provenance())
    for direction in dataset.directions:
        logging.info("%s/%s (%s): %d training statements, %d forward and %d reverse queries",
                     dataset.name, direction.name, direction.task, len(direction.train),
                     len(direction.eval_forward), len(direction.eval_reverse))


def cmd_audit(args) -> None:
    report = audit_manifests(args.manifests)
    logging.info("audit passed: %s", ", ".join(report["checks"]))
    _write_text(args.report, json.dumps(report, indent=2) + "\n")


def cmd_card(args) -> None:
    _write_text(args.out, render_card(args.manifest))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m revcurse.data.relational")
    commands = parser.add_subparsers(dest="command", required=True)
    dataset = argparse.ArgumentParser(add_help=False)
    dataset.add_argument("dataset", choices=sorted(DATASETS))
    dataset.add_argument("--settings", required=True, help="JSON of config.yaml's datasets.<dataset>")
    dataset.add_argument("--resources", type=Path, default=RESOURCE_DIR)
    check = commands.add_parser("check", parents=[dataset],
                                help="generate or import one dataset in memory, writing only a report: "
                                     "the step before a build replaces a dataset")
    check.add_argument("--report", type=Path, required=True)
    check.set_defaults(func=cmd_check)
    build = commands.add_parser("build", parents=[dataset], help="generate or import one dataset")
    build.add_argument("--manifest", type=Path, required=True, help="manifest path; files go next to it")
    build.set_defaults(func=cmd_build)
    audit = commands.add_parser("audit", help="leakage and ambiguity audit; fails on any problem")
    audit.add_argument("manifests", type=Path, nargs="+")
    audit.add_argument("--report", type=Path, required=True)
    audit.set_defaults(func=cmd_audit)
    card = commands.add_parser("card", help="Markdown dataset card from a manifest")
    card.add_argument("manifest", type=Path)
    card.add_argument("--out", type=Path, required=True)
    card.set_defaults(func=cmd_card)
    args = parser.parse_args(argv)
    if args.command == "build" and args.manifest.name != MANIFEST:
        parser.error(f"--manifest must be named {MANIFEST}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    try:
        args.func(args)
    except (ValueError, AuditFailure) as error:  # InputError and DatasetIntegrityError are ValueErrors
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _write_text(path: Path, text: str) -> None:
    write_files_atomically(path.parent, {path.name: text.encode()})


if __name__ == "__main__":
    sys.exit(main())
