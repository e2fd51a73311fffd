"""Command line of the large-scale study, which its rules call: ``python -m revcurse.llm <command> ...``.

``tokenizer``, ``finetune``, ``evaluate`` and ``tables`` make Table 1 and Tables 4-6; ``probe`` probes
every selected checkpoint of one run and ``probe-figure`` draws Figure 6, 7 or 9 from probe tables.
Each run command takes its run spec as one JSON argument (built by ``plan.py`` and
``probes/plan.py``), so Snakemake reruns a job exactly when the settings it depends on change.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from pathlib import Path

import pandas as pd
import torch

from revcurse.core.cli import run_command
from revcurse.core.config import config_hash
from revcurse.core.io import check_writable, write_parquet
from revcurse.llm.runs import LLM_PACKAGES, check_trained_revision, direction_records, llm_provenance, run_backbone

log = logging.getLogger("revcurse.llm")


def cmd_tokenizer(args) -> None:
    from revcurse.llm.model.tokenizer import dataset_texts, train_tokenizer

    texts = dataset_texts([Path(m) for m in args.manifests])
    tokenizer = train_tokenizer(texts, args.vocab_size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(args.out)
    log.info("stand-in tokenizer: %d tokens from %d texts -> %s", tokenizer.get_vocab_size(), len(texts), args.out)


def cmd_finetune(args) -> None:
    """One run, or (a list of specs) its seeds stacked over one frozen base: the same files per run."""
    from accelerate import Accelerator

    from revcurse.core.devices import resolve_device
    from revcurse.llm.batches import encode_example
    from revcurse.llm.finetune import FinetuneSettings, finetune, finetune_stack

    job = json.loads(args.spec)
    stacked = isinstance(job, list)
    specs, outs = (job if stacked else [job]), [Path(out) for out in args.out]
    if len(outs) != len(specs):
        raise SystemExit(f"--out names {len(outs)} files for {len(specs)} run spec(s)")
    check_writable(*{out.parent for out in outs})
    first, train = specs[0], specs[0]["train"]
    seeds = [spec["seed"] for spec in specs]
    accelerator = Accelerator(cpu=resolve_device(train["device"]).type == "cpu")
    backbone = run_backbone(first, accelerator.device, seeds if stacked else None)
    rows = direction_records(args.manifest, first["direction"]).train
    examples = [encode_example(backbone.prompt_format, r.prompt, r.completion, backbone.eos_token_id,
                               first["answer_length"]) for r in rows]
    settings = [FinetuneSettings(
        epochs=train["epochs"], batch_size=train["batch_size"], learning_rate=spec["learning_rate"],
        weight_decay=train["weight_decay"], checkpoint_every=train["checkpoint_every"],
        min_mask_rate=train["min_mask_rate"], arm_prompt_in_loss=train["arm_prompt_in_loss"], seed=spec["seed"],
    ) for spec in specs]
    log.info("%s on %s/%s seed(s) %s%s: %s", first["model"], first["dataset"], first["direction"], seeds,
             " stacked over one frozen base" if stacked else "", settings[0])
    if stacked:
        summaries = finetune_stack(backbone, examples, settings, [out.parent for out in outs], config_hash(specs),
                                   accelerator)
    else:
        summaries = [finetune(backbone, examples, settings[0], outs[0].parent, config_hash(first), accelerator)]
    if accelerator.is_main_process:
        for spec, summary, out in zip(specs, summaries, outs):
            record = {"spec": spec, "config_hash": config_hash(spec), **summary, "trained_with_seeds": seeds,
                      "model_revision": backbone.revision, "provenance": llm_provenance(backbone.revision)}
            out.write_text(json.dumps(record, indent=2) + "\n")


def cmd_evaluate(args) -> None:
    from safetensors.torch import load_file

    from revcurse.core.devices import resolve_device
    from revcurse.core.progress import Progress
    from revcurse.llm.evaluate import DecodingSettings, is_exact_match, predict
    from revcurse.llm.model.lora import load_trainable_state

    spec = json.loads(args.spec)
    training = json.loads(Path(args.checkpoints).read_text())
    device = resolve_device(spec["device"])
    backbone = run_backbone(spec, device)
    check_trained_revision(training, backbone, args.checkpoints)
    direction = direction_records(args.manifest, spec["direction"])
    settings = DecodingSettings.from_config(spec["eval"])
    queries = {"forward": direction.eval_forward, "reverse": direction.eval_reverse}
    frames = []
    progress = Progress(len(training["checkpoints"]) * sum(map(len, queries.values())))
    for epoch, relative in sorted(training["checkpoints"].items(), key=lambda item: int(item[0])):
        load_trainable_state(backbone.model, load_file(str(Path(args.checkpoints).parent / relative)))
        for query_direction, rows in queries.items():
            predictions = predict(backbone, [r.prompt for r in rows], settings)
            correct = [is_exact_match(p, r.accepted_answers) for p, r in zip(predictions, rows)]
            log.info("epoch %s %s: %.1f%% of %d; queries %s", epoch, query_direction, 100 * sum(correct) / len(rows),
                     len(rows), progress.line(sum(map(len, frames)) + len(rows)))
            frames.append(pd.DataFrame({
                "epoch": int(epoch), "direction": query_direction,
                "fact_id": [r.fact_id for r in rows], "prompt": [r.prompt for r in rows],
                "prediction": predictions, "target": [r.completion for r in rows],
                "accepted_answers": [list(r.accepted_answers) for r in rows], "correct": correct,
            }))
    model, versions = backbone.spec, llm_provenance(backbone.revision)
    frame = pd.concat(frames, ignore_index=True).assign(
        preset=spec["preset"], model=model.name, label=model.label, kind=model.kind, task=spec["task"],
        dataset=spec["dataset"], trained_direction=spec["direction"], seed=spec["seed"],
        train_config_hash=training["config_hash"], config_hash=config_hash(spec),
        code_version=training["provenance"]["code_version"], model_revision=backbone.revision,
        packages=", ".join(f"{package} {versions[package]}" for package in ("torch", *LLM_PACKAGES)),
    )
    write_parquet(frame, Path(args.out), {"spec": spec, "train_spec": training["spec"], "provenance": versions})


def cmd_tables(args) -> None:
    from revcurse.core.io import read_parquets
    from revcurse.llm.tables import SEED_TABLES, seed_level, seed_table_markdown, table1, table1_markdown

    seeds = seed_level(read_parquets(args.inputs)).assign(config_hash=args.config_hash)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = table1(seeds).assign(config_hash=args.config_hash)
    summary.to_csv(out / "table1.csv", index=False, float_format="%.2f")
    (out / "table1.md").write_text(table1_markdown(summary, args.config_hash))
    for name, dataset in SEED_TABLES.items():
        seeds[seeds.dataset == dataset].to_csv(out / f"{name}.csv", index=False, float_format="%.2f")
        (out / f"{name}.md").write_text(seed_table_markdown(seeds, name, args.config_hash))
    log.info("%s", (out / "table1.md").read_text())


def selected_checkpoints(training: dict, which: str) -> list[tuple[int, str]]:
    """(epoch, relative path) of ``checkpoints.json``'s checkpoints: ``all`` or the ``final`` one."""
    checkpoints = sorted((int(epoch), path) for epoch, path in training["checkpoints"].items())
    if which not in ("all", "final"):
        raise ValueError(f"config.yaml: llm.probes.checkpoints = {which!r}; expected 'all' or 'final'")
    return checkpoints if which == "all" else checkpoints[-1:]


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident memory on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cmd_probe(args) -> None:
    from safetensors.torch import load_file

    from revcurse.core.devices import resolve_device
    from revcurse.llm.model.lora import load_trainable_state
    from revcurse.llm.probes.measure import attention_scores, query_pairs, training_dynamics, with_run_columns
    from revcurse.llm.probes.plan import MEASUREMENTS

    spec = json.loads(args.spec)
    settings = spec["probes"]
    outs = dict(item.split("=", 1) for item in args.out)
    if set(outs) != set(MEASUREMENTS[args.measurement]):
        raise SystemExit(f"probe {args.measurement}: --out names {sorted(outs)}, "
                         f"expected {MEASUREMENTS[args.measurement]}")
    training = json.loads(Path(args.checkpoints).read_text())
    device = resolve_device(spec["device"])
    backbone = run_backbone(spec, device)
    check_trained_revision(training, backbone, args.checkpoints)
    pairs, excluded = query_pairs(backbone, direction_records(args.manifest, spec["direction"]), settings["context"],
                                  spec["answer_length"], settings["samples"])
    for fact, why in excluded.items():
        log.info("sample %s excluded: %s", fact, why)
    log.info("%d samples, %d excluded (A or B would be different tokens in the two queries)", len(pairs),
             len(excluded))
    versions = llm_provenance(backbone.revision)
    model = backbone.spec
    run = {"preset": spec["preset"], "model": model.name, "label": model.label, "kind": model.kind,
           "task": spec["task"], "dataset": spec["dataset"], "trained_direction": spec["direction"], "seed": spec["seed"],
           "context": settings["context"], "excluded_samples": len(excluded), "config_hash": config_hash(spec),
           "train_config_hash": training["config_hash"], "code_version": versions["code_version"],
           "model_revision": backbone.revision}
    frames: dict[str, list[pd.DataFrame]] = {table: [] for table in outs}
    started = time.perf_counter()
    for epoch, relative in selected_checkpoints(training, settings["checkpoints"]):
        load_trainable_state(backbone.model, load_file(str(Path(args.checkpoints).parent / relative)))
        tick = time.perf_counter()
        if args.measurement == "attention":
            tables = (attention_scores(backbone, pairs, settings["placements"], settings["batch_size"]),)
        else:
            tables = training_dynamics(backbone, pairs)
        for table, frame in zip(MEASUREMENTS[args.measurement], tables):
            frames[table].append(with_run_columns(frame.assign(epoch=epoch), table, run))
        log.info("epoch %d: %s of %d samples in %.1f s, peak memory %.0f MB", epoch, args.measurement, len(pairs),
                 time.perf_counter() - tick, peak_memory_mb(device))
    log.info("probe pass: %.1f s for %d checkpoint(s) on %s", time.perf_counter() - started,
             len(frames[next(iter(frames))]), device)
    for table, path in outs.items():
        write_parquet(pd.concat(frames[table], ignore_index=True), Path(path),
                      {"spec": spec, "train_spec": training["spec"], "provenance": versions, "excluded_samples": excluded})


def cmd_probe_figure(args) -> None:
    from revcurse.core.provenance import provenance
    from revcurse.llm.probes.figures import read_probe_tables, render

    versions = provenance()
    frames = read_probe_tables(args.inputs)
    presets = sorted(set().union(*(frame["preset"].unique() for frame in frames.values())))
    stamp = {"figure": args.name, "preset": ", ".join(presets), "config_hash": args.config_hash,
             "code_version": versions["code_version"]}
    table = render(args.name, frames, json.loads(args.settings), Path(args.png), Path(args.pdf), Path(args.csv),
                   stamp, versions)
    log.info("%s: %d plotted values -> %s", args.name, len(table), args.png)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.llm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tokenizer", help="train the stand-ins' BPE tokenizer on the datasets' text")
    p.add_argument("--manifests", nargs="+", required=True)
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tokenizer)

    p = sub.add_parser("finetune", help="fine-tune one (model, dataset direction, seed) run, or stacked seeds")
    p.add_argument("--spec", required=True, help="run spec as JSON, or a JSON list of run specs that differ only "
                   "in their seed: trained together over one frozen base (llm.train.stack_seeds)")
    p.add_argument("--manifest", required=True, help="the dataset's manifest.json")
    p.add_argument("--out", required=True, nargs="+",
                   help="checkpoints.json of each run, in the specs' order; its checkpoints go next to it")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("evaluate", help="forward/reverse exact match of every checkpoint of a run")
    p.add_argument("--spec", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--checkpoints", required=True, help="the run's checkpoints.json")
    p.add_argument("--out", required=True, help="predictions .parquet")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("tables", help="Table 1 and Tables 4-6 from prediction files")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("probe", help="probe every selected checkpoint of one run (revcurse.llm.probes)")
    p.add_argument("measurement", choices=["attention", "dynamics"])
    p.add_argument("--spec", required=True, help="probe spec as JSON (revcurse.llm.probes.plan.probe_spec)")
    p.add_argument("--manifest", required=True, help="the dataset's manifest.json")
    p.add_argument("--checkpoints", required=True, help="the run's checkpoints.json")
    p.add_argument("--out", action="append", required=True, help="TABLE=path.parquet, once per table")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("probe-figure", help="Figure 6, 7 or 9 from probe tables")
    p.add_argument("name", choices=["fig6", "fig7", "fig9"])
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--settings", required=True, help="llm.probes as JSON")
    p.add_argument("--png", required=True)
    p.add_argument("--pdf", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=cmd_probe_figure)

    run_command(parser, argv)


if __name__ == "__main__":
    main()
