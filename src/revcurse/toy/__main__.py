"""Command line of the toy study, which the toy rules call: ``python -m revcurse.toy <command> ...``.

Each command takes its run spec as one JSON argument (built by workflow/rules/common.smk),
so Snakemake reruns a job exactly when the settings it depends on change.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd
import torch

from revcurse.core.cli import run_command
from revcurse.core.config import config_hash, derive_seed
from revcurse.core.io import check_writable, write_parquet
from revcurse.core.provenance import provenance

log = logging.getLogger("revcurse")


def cmd_data(args) -> None:
    from revcurse.data.toy import make_forward_dataset, write_dataset

    manifest = write_dataset(make_forward_dataset(args.length), Path(args.out), Path(args.manifest))
    log.info("toy L=%d: %d sequences (expected %d), no reverse pair; sha256 %s", args.length,
             manifest["sequences"], manifest["expected_sequences"], manifest["sha256"][:16])


def cmd_check_data(args) -> None:
    """The step before training (rule toy_data_check): the data file passes every check of ``read_dataset`` at
    its L, so a file training would reject stops the run before Snakemake reruns (and first deletes) a model."""
    import hashlib

    from revcurse.data.toy import read_dataset

    data = read_dataset(Path(args.data), args.length)
    report = {"data": args.data, "length": data.length, "sequences": len(data.tokens),
              "sha256": hashlib.sha256(Path(args.data).read_bytes()).hexdigest()}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    log.info("%s: %d sequences of length %d, every check passed", args.data, len(data.tokens), data.length)


def cmd_train(args) -> None:
    """Train one or several seeds of one (model, L) stacked; one checkpoint per seed."""
    from revcurse.data.toy import MASK_ID, read_dataset
    from revcurse.toy.train import save_run, save_snapshots, toy_configs, train

    specs = [json.loads(s) for s in args.spec]
    outs = [Path(p) for p in args.out]
    snapshot_outs = [Path(p) for p in args.snapshots or []]
    if len(specs) != len(outs) or snapshot_outs and len(snapshot_outs) != len(outs):
        raise SystemExit(f"train: {len(specs)} --spec, {len(outs)} --out, {len(snapshot_outs)} --snapshots")
    shapes = {json.dumps({k: v for k, v in s.items() if k != "seed"}, sort_keys=True) for s in specs}
    if len(shapes) != 1:
        raise SystemExit("train: stacked runs must share everything but the seed")
    model_cfg, train_cfg = toy_configs(specs[0])
    length = specs[0]["length"]
    data = read_dataset(Path(args.data), length).tokens
    seeds = [s["seed"] for s in specs]
    fingerprint = config_hash(specs)
    resume = outs[0].with_name("resume.pt")
    check_writable(*{path.parent for path in outs + snapshot_outs})
    log.info("training %s L=%d seeds %s: %s", specs[0]["model"], length, seeds, model_cfg)
    state = train(model_cfg, train_cfg, data, seeds, MASK_ID, resume_path=resume, fingerprint=fingerprint)
    versions = provenance()
    for member, (spec, out) in enumerate(zip(specs, outs)):
        save_run(out, state, member, spec, config_hash(spec), versions)
    for member, (spec, out) in enumerate(zip(specs, snapshot_outs)):
        save_snapshots(out, state, member, spec, config_hash(spec), versions)
    resume.unlink(missing_ok=True)
    log.info("wrote %s", ", ".join(map(str, outs + snapshot_outs)))


def cmd_evaluate(args) -> None:
    from revcurse.core.devices import autocast, device_and_precision
    from revcurse.core.progress import Progress
    from revcurse.data.toy import N_LETTERS
    from revcurse.toy.evaluate import DIRECTIONS, success_counts
    from revcurse.toy.train import load_run

    spec = json.loads(args.spec)
    settings = spec["eval"]
    device, precision = device_and_precision(spec["device"], settings["precision"])
    model, run = load_run(Path(args.model), settings["weights"], device)
    frames = []
    progress = Progress(len(DIRECTIONS) * N_LETTERS * settings["samples_per_letter"])     # generations
    for direction in DIRECTIONS:
        rng = torch.Generator(device=device).manual_seed(derive_seed(spec["seed"], "toy-eval", direction))
        with autocast(precision, device):
            counts = success_counts(model, spec["length"], direction, settings["samples_per_letter"],
                                    settings["top_k"], settings["unmask_order"], rng, settings["batch_size"])
        frames.append(counts)
        log.info("%s L=%d seed %d %s: %.2f%%; generations %s", spec["model"], spec["length"], spec["seed"], direction,
                 100 * counts["successes"].sum() / counts["samples"].sum(),
                 progress.line(sum(int(f["samples"].sum()) for f in frames)))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame.assign(
        preset=spec["preset"], model=spec["model"], length=spec["length"], seed=spec["seed"],
        top_k=settings["top_k"], unmask_order=settings["unmask_order"] if model.cfg.reads_mask else "n/a",
        weights=run["weights_used"], precision=precision, train_config_hash=run["config_hash"], config_hash=config_hash(spec),
        code_version=run["provenance"]["code_version"],
    )
    write_parquet(frame, Path(args.out), {"spec": spec, "train_spec": run["spec"], "provenance": provenance()})


def cmd_evaluate_over_training(args) -> None:
    """Forward/reverse success of a run's snapshots (toy.eval_over_training), raw and EMA weights."""
    from revcurse.core.devices import autocast, device_and_precision
    from revcurse.toy.evaluate import accuracy_over_training
    from revcurse.toy.train import load_snapshots

    spec = json.loads(args.spec)
    settings, decoding = spec["over_training"], spec["eval"]
    device, precision = device_and_precision(spec["device"], decoding["precision"])
    snapshots = {}
    for weights in settings["weights"]:
        models, run = load_snapshots(Path(args.snapshots), weights, device)
        if run["weights_used"] == weights:          # a model without EMA has raw weights only
            snapshots[weights] = models
    with autocast(precision, device):
        frame = accuracy_over_training(snapshots, spec["length"], spec["seed"], settings["every"],
                                       settings["samples_per_letter"], decoding["top_k"], decoding["unmask_order"],
                                       settings["curve_unmask_orders"], settings["unmask_orders"],
                                       decoding["batch_size"])
    frame = frame.assign(
        preset=spec["preset"], model=spec["model"], length=spec["length"], seed=spec["seed"],
        top_k=decoding["top_k"], precision=precision, train_config_hash=run["config_hash"],
        config_hash=config_hash(spec), code_version=run["provenance"]["code_version"],
    )
    curve = frame.groupby(["weights", "unmask_order", "step", "direction"])[["successes", "samples"]].sum()
    log.info("%s L=%d seed %d, success %% by step:\n%s", spec["model"], spec["length"], spec["seed"],
             (100 * curve["successes"] / curve["samples"]).unstack("direction").round(1).to_string())
    write_parquet(frame, Path(args.out), {"spec": spec, "train_spec": run["spec"], "provenance": provenance()})


def cmd_probe(args) -> None:
    """One measurement of one run (revcurse.toy.probes.MEASUREMENTS), at the snapshots every
    ``spec["every"]`` steps and the last, or at the end, in ``spec["precision"]``."""
    from revcurse.core.devices import autocast, device_and_precision
    from revcurse.toy.probes import MEASUREMENTS, measure, with_run_columns
    from revcurse.toy.train import every_and_last, load_run, load_snapshots

    spec = json.loads(args.spec)
    names, source = MEASUREMENTS[args.measurement]
    outs = dict(item.split("=", 1) for item in args.out)
    if sorted(outs) != sorted(names):
        raise SystemExit(f"probe {args.measurement}: --out must name {list(names)}, got {sorted(outs)}")
    device, precision = device_and_precision(spec["device"], spec["precision"])
    if source == "final":
        model, run = load_run(Path(args.checkpoint), spec["weights"], device)
        models = [(run["step"], model)]
    else:
        models, run = load_snapshots(Path(args.checkpoint), spec["weights"], device)
        models = every_and_last(models, spec["every"])
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in names}
    for step, model in models:
        with autocast(precision, device):
            measured = measure(args.measurement, model, spec["length"])
        for name, frame in measured.items():
            tables[name].append(frame.assign(step=step))
    versions = provenance()
    run_columns = {**{key: spec[key] for key in ("preset", "study", "model", "length", "seed")},
                   "weights": run["weights_used"]}
    stamp = {"precision": precision, "config_hash": config_hash(spec), "train_config_hash": run["config_hash"],
             "code_version": versions["code_version"]}
    for name, frames in tables.items():
        frame = with_run_columns(pd.concat(frames, ignore_index=True), name, run_columns, stamp)
        write_parquet(frame, Path(outs[name]), {"spec": spec, "train_spec": run["spec"], "provenance": versions})
        log.info("%s: %d rows at steps %s -> %s", name, len(frame), sorted(frame["step"].unique()), outs[name])


def cmd_figure(args) -> None:
    from revcurse.toy.figures import read_probes, render

    frames = read_probes(args.inputs)
    versions = provenance()
    stamp = {"config_hash": args.config_hash, "code_version": versions["code_version"]}
    table = render(args.figure, frames, json.loads(args.settings), Path(args.png), Path(args.pdf), Path(args.csv),
                   stamp, versions)
    log.info("%s, plotted values:\n%s", args.figure, table.to_string(max_rows=80))


def cmd_table2(args) -> None:
    from revcurse.core.io import read_parquets
    from revcurse.toy.tables import table2 as build_table2
    from revcurse.toy.tables import table2_markdown

    evals = read_parquets(args.inputs)
    table = build_table2(evals, read_parquets(args.curves) if args.curves else None)
    table["config_hash"] = args.config_hash
    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False, float_format="%.4f")
    Path(args.md).write_text(table2_markdown(table))
    log.info("table 2 from %d runs:\n%s", evals.groupby(["model", "length", "seed"]).ngroups, Path(args.md).read_text())


def cmd_table2_experiment(args) -> None:
    """The Table 2 experiment's cells and verdicts (revcurse.toy.experiment), from the runs' Parquet files."""
    from revcurse.core.io import listed_values, read_parquets
    from revcurse.toy.experiment import experiment, markdown, summary

    evals = read_parquets(args.evals)
    table, verdicts, runs = experiment(evals, read_parquets(args.curves), args.paper_values,
                                       read_parquets(args.losses) if args.losses else None,
                                       json.loads(args.loss_reductions))
    # The code that made the runs (one version, once the experiment's runs come from one clone) and this table's.
    stamp = {"runs_code_version": ", ".join(listed_values(evals["code_version"])),
             "code_version": provenance()["code_version"]}
    table.assign(**stamp).to_csv(args.csv, index=False, float_format="%.4f")
    verdicts.assign(**stamp).to_csv(args.verdicts_csv, index=False, float_format="%.4f")
    Path(args.md).write_text(markdown(table, verdicts, runs))
    Path(args.summary_md).write_text(summary(table, verdicts) + "\n")
    log.info("Table 2 experiment:\n%s", verdicts.to_string(index=False))


def add_loss_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--losses", nargs="+", required=True,
                   help="loss_curve.parquet files of the same runs (`python -m revcurse.toy loss-curve`)")


def cmd_stuck_seed(args) -> None:
    """Stage B's stuck seed, unchanged and under one change at a time (revcurse.toy.experiment.stuck_seed)."""
    from revcurse.core.io import read_parquets
    from revcurse.toy.experiment import stuck_seed, stuck_seed_markdown

    runs, reading = stuck_seed(read_parquets(args.evals), read_parquets(args.curves), read_parquets(args.losses),
                               json.loads(args.loss_reductions))
    runs.assign(code_version_of_table=provenance()["code_version"]).to_csv(args.csv, index=False, float_format="%.4f")
    Path(args.md).write_text(stuck_seed_markdown(runs, reading))
    log.info("stuck seed: %s", reading)


def cmd_loss_curve(args) -> None:
    """One run's logged training loss, read from its checkpoint (revcurse.toy.tables.loss_curves)."""
    from revcurse.toy.tables import loss_curves

    write_parquet(loss_curves([args.model]), Path(args.out), {"provenance": provenance()})


def cmd_training_curves(args) -> None:
    """Accuracy over training (figure) and the decoding-choice table, from the runs' curves."""
    from revcurse.core.io import read_parquets
    from revcurse.plotting import render_figure
    from revcurse.toy.figures import ACCURACY_FIGURES
    from revcurse.toy.tables import decoding_choices, decoding_choices_markdown

    curves = read_parquets(args.inputs)
    versions = provenance()
    stamp = {"config_hash": args.config_hash, "code_version": versions["code_version"]}
    render_figure(ACCURACY_FIGURES, "accuracy_over_training", {"accuracy_over_training": curves}, {},
                  Path(args.png), Path(args.pdf), Path(args.csv), stamp, versions)
    choices = decoding_choices(curves).assign(**stamp)
    choices.to_csv(args.choices_csv, index=False, float_format="%.4f")
    Path(args.choices_md).write_text(decoding_choices_markdown(choices))
    log.info("decoding choices:\n%s", Path(args.choices_md).read_text())


def cmd_compare_presets(args) -> None:
    """Two presets that differ in one setting, on the same toy cells and seeds (docs/toy.md: "Precision",
    "Choices that move the number")."""
    from revcurse.core.io import read_parquets
    from revcurse.toy.tables import UNLEARNED_BELOW_FORWARD_PCT, preset_comparison

    evals = read_parquets(args.evals)
    losses = read_parquets(args.losses)
    curves = read_parquets(args.curves) if args.curves else None
    table = preset_comparison(evals, losses, args.baseline, args.variant, curves)
    if table.empty:
        raise SystemExit(f"compare-presets: no cell was run by both {args.baseline} and {args.variant}")
    table.to_csv(args.csv, index=False, float_format="%.4f")
    Path(args.md).write_text(
        f"{args.variant} − {args.baseline} on the same cells and seeds: mean (sd) over seeds, the difference with "
        "its Welch 95% interval and p-value (none where a preset has fewer than two seeds). `*_unlearned_seeds`: seeds whose forward success ended below "
        f"{UNLEARNED_BELOW_FORWARD_PCT:.0f}%: they did not learn the task, so their reverse success measures no "
        "reversal and the reverse rows leave them out (`*_seeds`: the seeds each row averages).\n\n" + table.to_markdown(index=False, floatfmt=".3g") + "\n")
    log.info("%s against %s:\n%s", args.variant, args.baseline, Path(args.md).read_text())


def main(argv: list[str] | None = None) -> None:
    from revcurse.toy.probes import MEASUREMENTS

    parser = argparse.ArgumentParser(prog="python -m revcurse.toy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="all forward placements for one length")
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--manifest", required=True)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("check-data", help="check a data file at its length before training reads it")
    p.add_argument("--data", required=True)
    p.add_argument("--length", type=int, required=True)
    p.add_argument("--out", required=True, help="a JSON report, written only if every check passes")
    p.set_defaults(func=cmd_check_data)

    p = sub.add_parser("train", help="train toy run(s); several --spec/--out pairs are trained stacked")
    p.add_argument("--spec", action="append", required=True, help="run spec as JSON")
    p.add_argument("--data", required=True)
    p.add_argument("--out", action="append", required=True)
    p.add_argument("--snapshots", action="append", help="where to write each run's snapshots (train.snapshot_every)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="forward/reverse success rate of one run")
    p.add_argument("--spec", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-over-training", help="success rate of one run's snapshots (accuracy over training)")
    p.add_argument("--spec", required=True)
    p.add_argument("--snapshots", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_evaluate_over_training)

    p = sub.add_parser("probe", help="probe one toy run (revcurse.toy.probes)")
    p.add_argument("measurement", choices=sorted(MEASUREMENTS))
    p.add_argument("--spec", required=True, help="probe spec as JSON")
    p.add_argument("--checkpoint", required=True, help="snapshots.pt, or model.pt for reverse_positions")
    p.add_argument("--out", action="append", required=True, metavar="PROBE=PATH", help="one per probe table")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("figure", help="one toy figure from probe Parquet files (revcurse.toy.figures)")
    p.add_argument("figure", help="a key of revcurse.toy.figures.FIGURES, e.g. fig3")
    p.add_argument("--inputs", nargs="+", required=True, help="probe Parquet files, named <probe>.parquet")
    p.add_argument("--settings", required=True, help="the config's toy.probes section as JSON")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--csv", required=True, help="the plotted values")
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("table2", help="aggregate toy evaluations into Table 2")
    p.add_argument("--inputs", nargs="+", required=True, help="eval.parquet files: the final rows")
    p.add_argument("--curves", nargs="+", help="accuracy_over_training.parquet files: the best rows")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_table2)

    p = sub.add_parser("training-curves", help="accuracy over training figure and decoding-choice table")
    p.add_argument("--inputs", nargs="+", required=True, help="accuracy_over_training.parquet files")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--csv", required=True, help="the plotted values")
    p.add_argument("--choices-csv", required=True)
    p.add_argument("--choices-md", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_training_curves)

    p = sub.add_parser("compare-presets", help="two presets differing in one setting, on the same cells and seeds")
    p.add_argument("--baseline", required=True, help="e.g. paper_fp32")
    p.add_argument("--variant", required=True, help="e.g. paper_bf16")
    p.add_argument("--evals", nargs="+", required=True, help="eval.parquet files of both presets")
    add_loss_arguments(p)
    p.add_argument("--curves", nargs="+", help="accuracy_over_training.parquet files of both presets' runs: adds "
                   "the best over training of each direction")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.set_defaults(func=cmd_compare_presets)

    p = sub.add_parser("table2-experiment", help="the Table 2 experiment's cells and verdicts (docs/toy.md)")
    p.add_argument("--evals", nargs="+", required=True, help="eval.parquet files of the candidates' MDM runs")
    p.add_argument("--curves", nargs="+", required=True, help="accuracy_over_training.parquet files of the same runs")
    p.add_argument("--paper-values", required=True, help="resources/paper_values.yaml")
    p.add_argument("--losses", nargs="*", default=[], help="loss_curve.parquet files of those runs that have one")
    p.add_argument("--loss-reductions", default="{}", help="JSON: preset -> its MDM's loss_reduction (sum | mean)")
    p.add_argument("--csv", required=True, help="every cell")
    p.add_argument("--verdicts-csv", required=True)
    p.add_argument("--md", required=True)
    p.add_argument("--summary-md", required=True, help="candidate × L and the verdicts (reference/paper/README.md's block)")
    p.set_defaults(func=cmd_table2_experiment)

    p = sub.add_parser("loss-curve", help="a run's logged training loss, from its checkpoint")
    p.add_argument("--model", required=True, help="the run's model.pt")
    p.add_argument("--out", required=True, help="Parquet: one row per logged step")
    p.set_defaults(func=cmd_loss_curve)

    p = sub.add_parser("stuck-seed", help="the Table 2 experiment's stuck seed, unchanged and under single changes")
    p.add_argument("--evals", nargs="+", required=True, help="eval.parquet files of the runs")
    p.add_argument("--curves", nargs="+", required=True, help="accuracy_over_training.parquet files of the same runs")
    add_loss_arguments(p)
    p.add_argument("--loss-reductions", required=True, help="JSON: preset -> its MDM's loss_reduction (sum | mean)")
    p.add_argument("--csv", required=True)
    p.add_argument("--md", required=True)
    p.set_defaults(func=cmd_stuck_seed)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
