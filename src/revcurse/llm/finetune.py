"""Fine-tuning (model, dataset direction, seed) runs: App. C's protocol, checkpoints, resume.

AdamW (weight decay 0.1) at a constant learning rate over the trainable weights (the LoRA
adapters; a stand-in's base weights too), batch 8, a fresh seeded order of the training examples
every epoch. ``accelerate`` places the model and, under ``accelerate launch``, splits every
batch of 8 over the processes: each example's loss is weighted so the processes' gradients sum
to the one-process mean, and all randomness (order, masking noise) is drawn per epoch from the
run seed, per example, so the run is the same on one process or several.

``finetune_stack`` trains K runs that differ only in their seed together over one frozen base
(``stacked_lora.py``): every step concatenates the K runs' batches of 8, each drawn in its own
run's order with its own masking noise, and each run's adapter sees only its own rows, so each
run ends with the weights and loss curve it has alone (tested) at a fraction of the GPU time.

Every ``checkpoint_every`` epochs (and at the end) each run's trainable weights are written to
``checkpoints/epochNNNN.safetensors`` in its run directory (the same files for a stacked run) and
the optimiser state to ``resume.pt`` (a stack: ``stack-resume.pt`` in its first run's directory);
a killed job restarts from there and ends with the weights of an uninterrupted run (the resume
file carries the job's fingerprint, so settings that changed start afresh).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from revcurse.core.config import derive_seed
from revcurse.core.io import load_checkpoint
from revcurse.llm.batches import Example, TrainingBatch, training_batch
from revcurse.llm.model.backbone import Backbone
from revcurse.llm.model.lora import load_trainable_state, trainable_state
from revcurse.llm.model.stacked_lora import run_adapters, stacked_runs
from revcurse.llm.objectives import (arm_loss_mask, draw_masking_noise, mask_answers, masked_diffusion_loss,
                                     next_token_loss)

log = logging.getLogger("revcurse.llm")

CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.pt"
STACK_RESUME_FILE = "stack-resume.pt"


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    checkpoint_every: int
    min_mask_rate: float        # MDM: t ~ U(min_mask_rate, 1)
    arm_prompt_in_loss: bool    # ARM: predict the prompt tokens too
    seed: int


def checkpoint_epochs(epochs: int, every: int) -> list[int]:
    return sorted({*range(every, epochs + 1, every), epochs})


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"epoch{epoch:04d}.safetensors"


def example_losses(backbone: Backbone, batch: TrainingBatch, settings: FinetuneSettings,
                   noise: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """The objective of the backbone's kind, one value per example of ``batch``."""
    if backbone.spec.kind == "mdm":
        noisy, masked = mask_answers(batch.input_ids, batch.answer_mask, backbone.mask_token_id, *noise)
        logits = backbone.logits(noisy, batch.padding_mask)
        return masked_diffusion_loss(logits, batch.input_ids, masked, noise[0], batch.answer_mask)
    logits = backbone.logits(batch.input_ids, batch.padding_mask)
    return next_token_loss(logits, batch.input_ids,
                           arm_loss_mask(batch.padding_mask, batch.answer_mask, settings.arm_prompt_in_loss))


def finetune(backbone: Backbone, examples: list[Example], settings: FinetuneSettings, run_dir: Path,
             fingerprint: str, accelerator) -> dict:
    """Train ``backbone.model`` in place; return the run summary (checkpoints, loss per epoch)."""
    return _train(backbone, examples, [settings], [Path(run_dir)], Path(run_dir) / RESUME_FILE, fingerprint,
                  accelerator, lambda model: [trainable_state(model)])[0]


def finetune_stack(backbone: Backbone, examples: list[Example], settings: list[FinetuneSettings],
                   run_dirs: list[Path], fingerprint: str, accelerator) -> list[dict]:
    """Train the K runs of ``settings`` (which differ only in their seed) together on a backbone
    whose model carries their K stacked adapters, in that order (``backbone.with_stacked_lora``);
    run k writes its checkpoints to ``run_dirs[k]``. One summary per run, as ``finetune`` returns."""
    if len({replace(s, seed=0) for s in settings}) != 1:
        raise ValueError(f"stacked runs may differ only in their seed: {settings}")
    runs = len(settings)
    if stacked_runs(backbone.model) != runs:
        raise ValueError(f"the model carries {stacked_runs(backbone.model)} stacked adapters for {runs} runs")
    return _train(backbone, examples, settings, [Path(d) for d in run_dirs], Path(run_dirs[0]) / STACK_RESUME_FILE,
                  fingerprint, accelerator, lambda model: [run_adapters(model, run) for run in range(runs)])


def _train(backbone: Backbone, examples: list[Example], settings: list[FinetuneSettings], run_dirs: list[Path],
           resume_path: Path, fingerprint: str, accelerator,
           run_weights: Callable[[torch.nn.Module], list[dict[str, torch.Tensor]]]) -> list[dict]:
    """The training loop of one run or of a stack of runs: every step takes each run's next batch
    (rows grouped by run, in ``settings`` order), sums the runs' mean losses and steps one AdamW.
    ``run_weights(model)``: what each run's checkpoint holds."""
    runs, protocol = len(settings), settings[0]
    resume = _load_resume(resume_path, fingerprint)
    if resume is None and accelerator.is_main_process:
        for run_dir in run_dirs:                                # of an earlier, finished run
            for stale in (run_dir / CHECKPOINT_DIR).glob("*.safetensors"):
                stale.unlink(missing_ok=True)
    if resume is not None:
        load_trainable_state(backbone.model, resume["trainable"])
        log.info("resuming after epoch %d from %s", resume["epoch"], resume_path)
    trainable = [p for p in backbone.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=protocol.learning_rate, weight_decay=protocol.weight_decay)
    model, optimizer = accelerator.prepare(backbone.model, optimizer)
    training = replace(backbone, model=model)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
    first_epoch = resume["epoch"] + 1 if resume else 1
    epoch_loss = resume["epoch_loss"] if resume else [[] for _ in range(runs)]
    epoch_seconds = resume["epoch_seconds"] if resume else []
    saves = set(checkpoint_epochs(protocol.epochs, protocol.checkpoint_every))
    width = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    log.info("%d run(s) (seeds %s), %d examples, %d trainable parameters, epochs %d-%d, batch %d per run, lr %g, "
             "%d process(es)", runs, [s.seed for s in settings], len(examples), sum(p.numel() for p in trainable),
             first_epoch, protocol.epochs, protocol.batch_size, protocol.learning_rate, accelerator.num_processes)

    for epoch in range(first_epoch, protocol.epochs + 1):
        started, tokens, losses = time.perf_counter(), 0, []
        draws = [_epoch_draws(len(examples), width, s, epoch) for s in settings]
        model.train()
        for start in range(0, len(examples), protocol.batch_size):
            # Every run has the same examples, hence the same rows per step: equal row groups.
            shards = [_shard(order[start : start + protocol.batch_size], accelerator.process_index,
                             accelerator.num_processes) for order, _ in draws]
            weight = shards[0][1]
            rows = torch.cat([mine for mine, _ in shards])
            noise = tuple(torch.cat([run_noise[part][mine] for (mine, _), (_, run_noise) in zip(shards, draws)])
                          for part in range(2))
            batch = training_batch([examples[i] for i in rows], backbone.pad_token_id)
            tokens += int(batch.padding_mask.sum())
            per_example = example_losses(training, batch.to(accelerator.device), protocol, noise)
            accelerator.backward(per_example.sum() * weight)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if weight:   # kept on the device: no wait for the GPU at every step
                losses.append(per_example.detach().view(runs, -1))
        for run, mean in enumerate(torch.cat(losses, dim=1).double().mean(dim=1).tolist()):
            epoch_loss[run].append(mean)
        epoch_seconds.append(time.perf_counter() - started)
        eta_min = sum(epoch_seconds) / len(epoch_seconds) * (protocol.epochs - epoch) / 60
        log.info("epoch %d/%d loss %s  %.1f s  %.0f tokens/s  ETA %.1f min", epoch, protocol.epochs,
                 " ".join(f"{run_loss[-1]:.4f}" for run_loss in epoch_loss), epoch_seconds[-1],
                 tokens / epoch_seconds[-1], eta_min)
        if epoch in saves:
            _save_checkpoint(accelerator, model, optimizer, run_dirs, run_weights, resume_path, {
                "fingerprint": fingerprint, "epoch": epoch, "epoch_loss": epoch_loss, "epoch_seconds": epoch_seconds},
                {"model_revision": backbone.revision})

    if accelerator.is_main_process:
        resume_path.unlink(missing_ok=True)
    return [{
        "checkpoints": {epoch: str(checkpoint_path(run_dir, epoch).relative_to(run_dir)) for epoch in sorted(saves)},
        "epoch_loss": run_loss,
        "epoch_seconds": epoch_seconds,          # wall time of each epoch (a stack's: of all its runs)
        "examples": len(examples),
        "processes": accelerator.num_processes,
    } for run_dir, run_loss in zip(run_dirs, epoch_loss)]


def _epoch_draws(examples: int, width: int, settings: FinetuneSettings,
                 epoch: int) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """A run's order of the examples and masking noise in ``epoch``, from its seed alone."""
    order = torch.randperm(examples, generator=_generator(settings.seed, "llm-data-order", epoch))
    noise = draw_masking_noise(examples, width, settings.min_mask_rate,
                               _generator(settings.seed, "llm-mask-noise", epoch))
    return order, noise


def _generator(seed: int, purpose: str, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, purpose, epoch))


def _shard(rows: torch.Tensor, process: int, processes: int) -> tuple[torch.Tensor, float]:
    """This process's rows of a global batch and the weight that makes the processes' summed
    gradients the batch mean. A process left without rows (a short last batch) runs one row at
    weight 0 so the gradient all-reduce still meets every process."""
    mine = rows[process::processes]
    if len(mine) == 0:
        return rows[:1], 0.0
    return mine, processes / len(rows)


def _save_checkpoint(accelerator, model, optimizer, run_dirs: list[Path], run_weights, resume_path: Path,
                     progress: dict, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        for run_dir, weights in zip(run_dirs, run_weights(unwrapped)):
            path = checkpoint_path(run_dir, progress["epoch"])
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, lambda tmp: save_file(weights, str(tmp), metadata=metadata))
            log.info("checkpoint %s", path)
        state = {**progress, "trainable": trainable_state(unwrapped), "optimizer": optimizer.state_dict()}
        _write_atomically(resume_path, lambda tmp: torch.save(state, tmp))
    accelerator.wait_for_everyone()


def _load_resume(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    state = load_checkpoint(path, "delete it to restart the run from its first epoch")
    if state.get("fingerprint") != fingerprint:
        log.info("ignoring %s: written by a run with other settings", path)
        return None
    return state


def _write_atomically(path: Path, write) -> None:
    """A killed job leaves either the previous file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)
