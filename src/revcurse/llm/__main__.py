"""Command line the large-scale rules call: ``python -m revcurse.llm <command> ...``.

Each run command takes its run spec as one JSON argument (built by ``plan.py``), so Snakemake
reruns a job exactly when the settings it depends on change.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

from revcurse.cli import write_parquet
from revcurse.config import config_hash, provenance

log = logging.getLogger("revcurse.llm")

LLM_PACKAGES = ("transformers", "peft", "accelerate", "tokenizers")


def llm_provenance(model_revision: str) -> dict[str, str]:
    """Code and package versions, and the revision of the model (``Backbone.revision``)."""
    versions = {**provenance(), "model_revision": model_revision}
    for package in LLM_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def direction_records(manifest: str, direction: str):
    """One direction of a relational dataset, after checking the files against the manifest."""
    from revcurse.data.relational import load_dataset

    dataset, _ = load_dataset(Path(manifest))
    return next(d for d in dataset.directions if d.name == direction)


def run_backbone(spec: dict, device: torch.device, stacked_seeds: list[int] | None = None):
    """The run's model with its seeded adapters; or, with ``stacked_seeds``, the frozen base with
    the adapters of those runs stacked (their specs differ only in the seed)."""
    from .backbone import load_backbone, with_seeded_lora, with_stacked_lora
    from .registry import ModelSpec

    model = ModelSpec.from_config(spec["model"], spec["model_config"])
    if stacked_seeds is not None and model.is_standin:
        raise ValueError(f"{model.name} is a stand-in: each run draws its random base from its seed, so runs of "
                         f"different seeds cannot be stacked over one (llm.train.stack_seeds)")
    tokenizer = Path(spec["tokenizer"]) if spec["tokenizer"] else None
    backbone = load_backbone(model, device, spec["seed"], tokenizer)
    if stacked_seeds is None:
        return with_seeded_lora(backbone, spec["lora"], spec["seed"])
    return with_stacked_lora(backbone, spec["lora"], stacked_seeds)


def check_trained_revision(training: dict, backbone, checkpoints: str) -> None:
    """Adapters trained on one revision of a model are not evaluated or probed on another."""
    if training.get("model_revision") != backbone.revision:
        name = backbone.spec.name
        raise SystemExit(f"{checkpoints} was trained on {name} revision {training.get('model_revision')}, but "
                         f"revision {backbone.revision} is loaded (config.yaml: llm.models.{name}.revision): "
                         f"retrain the run")


def tokenizer_command(args) -> None:
    from .tokenizer import dataset_texts, train_tokenizer

    texts = dataset_texts([Path(m) for m in args.manifests])
    tokenizer = train_tokenizer(texts, args.vocab_size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(args.out)
    log.info("stand-in tokenizer: %d tokens from %d texts -> %s", tokenizer.get_vocab_size(), len(texts), args.out)


def finetune_command(args) -> None:
    """One run, or (a list of specs) its seeds stacked over one frozen base: the same files per run."""
    from accelerate import Accelerator

    from .batches import encode_example
    from .finetune import FinetuneSettings, finetune, finetune_stack

    from revcurse.training import resolve_device

    job = json.loads(args.spec)
    stacked = isinstance(job, list)
    specs, outs = (job if stacked else [job]), [Path(out) for out in args.out]
    if len(outs) != len(specs):
        raise SystemExit(f"--out names {len(outs)} files for {len(specs)} run spec(s)")
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


def evaluate_command(args) -> None:
    from safetensors.torch import load_file

    from revcurse.progress import Progress
    from revcurse.training import resolve_device

    from .evaluate import DecodingSettings, is_exact_match, predict
    from .lora import load_trainable_state

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


def tables_command(args) -> None:
    from revcurse.aggregation import read_parquets

    from .tables import SEED_TABLES, seed_level, seed_table_markdown, table1, table1_markdown

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m revcurse.llm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tokenizer", help="train the stand-ins' BPE tokenizer on the datasets' text")
    p.add_argument("--manifests", nargs="+", required=True)
    p.add_argument("--vocab-size", type=int, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=tokenizer_command)

    p = sub.add_parser("finetune", help="fine-tune one (model, dataset direction, seed) run, or stacked seeds")
    p.add_argument("--spec", required=True, help="run spec as JSON, or a JSON list of run specs that differ only "
                   "in their seed: trained together over one frozen base (llm.train.stack_seeds)")
    p.add_argument("--manifest", required=True, help="the dataset's manifest.json")
    p.add_argument("--out", required=True, nargs="+",
                   help="checkpoints.json of each run, in the specs' order; its checkpoints go next to it")
    p.set_defaults(func=finetune_command)

    p = sub.add_parser("evaluate", help="forward/reverse exact match of every checkpoint of a run")
    p.add_argument("--spec", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--checkpoints", required=True, help="the run's checkpoints.json")
    p.add_argument("--out", required=True, help="predictions .parquet")
    p.set_defaults(func=evaluate_command)

    p = sub.add_parser("tables", help="Table 1 and Tables 4-6 from prediction files")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--config-hash", required=True)
    p.set_defaults(func=tables_command)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    args.func(args)


if __name__ == "__main__":
    main()
