"""Fine-tuning one (model, dataset direction, seed) run: App. C's protocol, checkpoints, resume.

AdamW (weight decay 0.1) at a constant learning rate over the trainable weights (the LoRA
adapters; a stand-in's base weights too), batch 8, a fresh seeded order of the training examples
every epoch. ``accelerate`` places the model and, under ``accelerate launch``, splits every
batch of 8 over the processes: each example's loss is weighted so the processes' gradients sum
to the one-process mean, and all randomness (order, masking noise) is drawn per epoch from the
run seed, per example, so the run is the same on one process or several.

Every ``checkpoint_every`` epochs (and at the end) the trainable weights are written to
``checkpoints/epochNNNN.safetensors`` and the optimiser state to ``resume.pt``; a killed job
restarts from there and ends with the weights of an uninterrupted run (``resume.pt`` carries the
run's fingerprint, so settings that changed start afresh).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from revcurse.config import derive_seed

from .backbone import Backbone
from .batches import Example, TrainingBatch, training_batch
from .lora import load_trainable_state, trainable_state
from .objectives import arm_loss_mask, draw_masking_noise, mask_answers, masked_diffusion_loss, next_token_loss

log = logging.getLogger("revcurse.llm")

CHECKPOINT_DIR = "checkpoints"
RESUME_FILE = "resume.pt"


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
    run_dir = Path(run_dir)
    resume_path = run_dir / RESUME_FILE
    resume = _load_resume(resume_path, fingerprint)
    if resume is None and accelerator.is_main_process:
        for stale in (run_dir / CHECKPOINT_DIR).glob("*.safetensors"):   # of an earlier, finished run
            stale.unlink(missing_ok=True)
    if resume is not None:
        load_trainable_state(backbone.model, resume["trainable"])
        log.info("resuming after epoch %d from %s", resume["epoch"], resume_path)
    trainable = [p for p in backbone.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    model, optimizer = accelerator.prepare(backbone.model, optimizer)
    training = replace(backbone, model=model)
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
    first_epoch = resume["epoch"] + 1 if resume else 1
    epoch_loss = resume["epoch_loss"] if resume else []
    saves = set(checkpoint_epochs(settings.epochs, settings.checkpoint_every))
    width = max(len(e.prompt_ids) + len(e.answer_ids) for e in examples)
    log.info("%d examples, %d trainable parameters, epochs %d-%d, batch %d, lr %g, %d process(es)",
             len(examples), sum(p.numel() for p in trainable), first_epoch, settings.epochs, settings.batch_size,
             settings.learning_rate, accelerator.num_processes)

    for epoch in range(first_epoch, settings.epochs + 1):
        started, tokens, losses = time.perf_counter(), 0, []
        order = torch.randperm(len(examples), generator=_generator(settings.seed, "llm-data-order", epoch))
        noise = draw_masking_noise(len(examples), width, settings.min_mask_rate,
                                   _generator(settings.seed, "llm-mask-noise", epoch))
        model.train()
        for start in range(0, len(examples), settings.batch_size):
            rows = order[start : start + settings.batch_size]
            mine, weight = _shard(rows, accelerator.process_index, accelerator.num_processes)
            batch = training_batch([examples[i] for i in mine], backbone.pad_token_id).to(accelerator.device)
            per_example = example_losses(training, batch, settings, (noise[0][mine], noise[1][mine]))
            accelerator.backward(per_example.sum() * weight)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses += per_example.detach().float().cpu().tolist() if weight else []
            tokens += int(batch.padding_mask.sum())
        epoch_loss.append(sum(losses) / len(losses))
        seconds = time.perf_counter() - started
        log.info("epoch %d/%d loss %.4f  %.1f s  %.0f tokens/s", epoch, settings.epochs, epoch_loss[-1], seconds,
                 tokens / seconds)
        if epoch in saves:
            _save_checkpoint(accelerator, model, optimizer, run_dir, epoch, epoch_loss, fingerprint)

    if accelerator.is_main_process:
        resume_path.unlink(missing_ok=True)
    return {
        "checkpoints": {epoch: str(checkpoint_path(run_dir, epoch).relative_to(run_dir)) for epoch in sorted(saves)},
        "epoch_loss": epoch_loss,
        "examples": len(examples),
        "processes": accelerator.num_processes,
    }


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


def _save_checkpoint(accelerator, model, optimizer, run_dir: Path, epoch: int, epoch_loss: list[float],
                     fingerprint: str) -> None:
    from safetensors.torch import save_file

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        weights = trainable_state(accelerator.unwrap_model(model))
        path = checkpoint_path(run_dir, epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, lambda tmp: save_file(weights, str(tmp)))
        state = {"fingerprint": fingerprint, "epoch": epoch, "epoch_loss": epoch_loss,
                 "trainable": weights, "optimizer": optimizer.state_dict()}
        _write_atomically(run_dir / RESUME_FILE, lambda tmp: torch.save(state, tmp))
        log.info("checkpoint %s", path)
    accelerator.wait_for_everyone()


def _load_resume(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.info("ignoring %s: written by a run with other settings", path)
        return None
    return state


def _write_atomically(path: Path, write) -> None:
    """A killed job leaves either the previous file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)
