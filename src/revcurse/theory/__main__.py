"""Command line of the theory study: ``python -m revcurse.theory <subcommand> --config '<theory section as JSON>' ...``
(workflow/rules/theory.smk, docs/theory.md). The quantities are in ``revcurse.theory.analysis``."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from revcurse.core.cli import run_command
from revcurse.core.config import config_hash, smoke_test_line
from revcurse.core.provenance import provenance
from revcurse.theory.analysis import (compare_table3, eq1_trace_table, plot_eq1_trace, read_printed_table3, table3,
                                      table3_markdown, theorem41_monte_carlo, theorem_b1_check)

log = logging.getLogger("revcurse")


def stamp(args, versions: dict) -> dict:
    """The columns every theory table carries: the preset, the hash of the ``theory:`` section and the code."""
    return {"preset": args.preset, "config_hash": config_hash(json.loads(args.config)),
            "code_version": versions["code_version"]}


def write_csv(table: pd.DataFrame, path: str, columns: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    table.assign(**columns).to_csv(path, index=False)


def cmd_table3(args) -> None:
    cfg, columns = json.loads(args.config), stamp(args, provenance())
    table = table3(cfg["deltas"], cfg["thresholds"], cfg["num_planes"], cfg["rope_base"])
    comparison = compare_table3(table, read_printed_table3(args.paper_table))
    write_csv(table, args.out, columns)
    write_csv(comparison, args.comparison, columns)
    Path(args.markdown).write_text(
        smoke_test_line(args.preset, "Table 3 is computed from the theory settings alone, but cite the paper "
                                     "preset's file, not this one")
        + "Table 3: Cantelli lower bounds (E−c)²/(V+(E−c)²) on Pr[Corr ≥ c], computed from App. A.3 "
        f"(preset {args.preset}, config {columns['config_hash']}, code {columns['code_version']}).\n\n"
        + table3_markdown(table))
    compared = comparison.dropna(subset=["printed_bound"])
    log.info("Table 3: %d cells, %d with a printed value; max |computed − printed| = %.5f; "
             "equal after truncation to 3 dp: %d, after rounding: %d", len(table), len(compared),
             compared["difference"].abs().max(), compared["equals_truncated"].sum(),
             compared["equals_rounded"].sum())


def cmd_eq1_figure(args) -> None:
    cfg, versions = json.loads(args.config), provenance()
    columns = stamp(args, versions)
    table = eq1_trace_table(cfg["trace_head_dims"], cfg["eq1_max_delta"], cfg["rope_base"])
    write_csv(table, args.table, columns)
    plot_eq1_trace(table, args.png, args.pdf, {**columns, **versions, "settings": cfg})
    for curve, values in table[table["delta"] >= 1].groupby("curve", sort=False):
        below = values.loc[values["trace"] < values["eq1_bound"], "delta"].tolist()
        log.info("%s: min trace %.4f over 1 <= Δ <= %d; below the Eq. (1) bound at Δ = %s",
                 curve, values["trace"].min(), cfg["eq1_max_delta"], below or "none")


def cmd_theorem41(args) -> None:
    cfg = json.loads(args.config)
    mc = cfg["monte_carlo"]
    table = theorem41_monte_carlo(cfg["deltas"], mc["head_dims"], mc["rho"], mc["samples"],
                                  mc["seed"], cfg["rope_base"])
    write_csv(table, args.out, stamp(args, provenance()))
    log.info("Theorem 4.1 Monte Carlo:\n%s", table[["head_dim", "delta", "rho", "trace_bound",
                                                    "mean_corr", "margin", "mean_corr_se"]])
    # Corr(q) ≥ A(q) holds for every q, not only on average: a violation is a bug, not noise.
    violations = table[table["min_pointwise_gap"] < -1e-12]
    if len(violations):
        raise SystemExit(f"Theorem 4.1: Corr(q) < A(q) for some q in\n{violations}")


def cmd_theorem_b1(args) -> None:
    cfg = json.loads(args.config)
    b1 = cfg["theorem_b1"]
    table = theorem_b1_check(b1["trials"], b1["head_dim"], b1["vocab_size"], b1["background_tokens"],
                             b1["max_delta"], b1["seed"], cfg["rope_base"], b1["tolerance"])
    write_csv(table, args.out, stamp(args, provenance()))
    log.info("Theorem B.1: max scaled error per block\n%s", table.groupby("block")["scaled_error"].max())
    if not table["agrees"].all():
        raise SystemExit(f"Theorem B.1: closed form and autograd differ by more than {b1['tolerance']:g} "
                         f"(relative to the gradient norms) in\n{table[~table['agrees']]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.theory", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", required=True, help="the config's 'theory' section as JSON")
    common.add_argument("--preset", default="paper", help="preset the config was resolved with")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("table3", parents=[common], help="Table 3 and its comparison with the paper")
    p.add_argument("--paper-table", required=True, help="transcribed printed Table 3 (CSV)")
    p.add_argument("--out", required=True, help="computed Table 3 (CSV, long format)")
    p.add_argument("--markdown", required=True, help="computed Table 3 in the paper's layout")
    p.add_argument("--comparison", required=True, help="computed vs printed (CSV)")
    p.set_defaults(func=cmd_table3)

    p = sub.add_parser("eq1-figure", parents=[common], help="trace vs Δ with the Eq. (1) bound")
    p.add_argument("--table", required=True, help="plotted values (CSV)")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.set_defaults(func=cmd_eq1_figure)

    p = sub.add_parser("theorem41", parents=[common], help="Monte-Carlo check of Theorem 4.1")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_theorem41)

    p = sub.add_parser("theorem-b1", parents=[common], help="Theorem B.1 closed form vs autograd")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_theorem_b1)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
