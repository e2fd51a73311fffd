"""Training toy models, one or several seeds stacked, with checkpoint and exact resume.

Randomness is per member: member e draws its batches, its masking noise and its
dropout masks from one generator seeded with its own seed, and that generator's
state is checkpointed. A run therefore ends with the same weights whether it ran
alone, inside a stack, or was killed and resumed.

With ``snapshot_every`` the weights (raw and EMA) are also kept at step 0, every
``snapshot_every`` steps and at the end, for the probes of training dynamics
(revcurse.toy.probes). Taking a snapshot only copies tensors, so it changes no result.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from revcurse.core.devices import autocast, device_and_precision
from revcurse.core.io import load_checkpoint
from revcurse.toy.model import ModelConfig, ToyTransformer

log = logging.getLogger(__name__)

# t ~ U(eps, 1) rather than U(0, 1): the 1/t weight is unbounded at 0 (SEDD/RADD use 1e-3).
MASK_RATE_EPS = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    grad_clip: float
    weight_decay: float
    device: str                         # auto | cpu | cuda
    precision: str                      # auto | fp32 | bf16
    ema_decay: float | None = None
    ema_warmup: bool = True
    checkpoint_every: int = 250
    log_every: int = 100
    snapshot_every: int | None = None   # None: no snapshots

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- objectives
def masked_diffusion_loss(logits: torch.Tensor, clean: torch.Tensor, masked: torch.Tensor,
                          mask_rate: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-member loss: (1/t)·Σ_masked CE, averaged over the batch; with ``reduction`` 'mean' divided by L.

    The 1/t weight makes the sum an unbiased estimate of the sequence's total CE over all positions
    (E[#masked] = t·L), as RADD's t_DCE_loss; 'mean' puts it on the next-token loss's per-token scale.
    logits [E,B,L,V], clean/masked [E,B,L], mask_rate [E,B].
    """
    ce = F.cross_entropy(logits.flatten(0, 2).float(), clean.flatten(), reduction="none").view_as(clean)
    per_sequence = (ce * masked).sum(-1) / mask_rate
    return per_sequence.mean(-1) / (clean.shape[-1] if reduction == "mean" else 1)


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-member CE of predicting ``targets`` [E,B,T] from ``logits`` [E,B,T,V]: summed over positions
    ('sum') or averaged ('mean', GPT-2's), then averaged over the batch."""
    ce = F.cross_entropy(logits.flatten(0, 2).float(), targets.flatten(), reduction="none").view_as(targets)
    per_sequence = ce.sum(-1) if reduction == "sum" else ce.mean(-1)
    return per_sequence.mean(-1)


def stratified_uniform(rng: Sequence[torch.Generator], batch_size: int, device) -> torch.Tensor:
    """[E, B] uniforms, one draw u per member spread over the batch: (u + i/B) mod 1 (RADD's 'vdm' sampler)."""
    offsets = torch.arange(batch_size, device=device) / batch_size
    return (member_rand(rng, (1,), device) + offsets) % 1.0


def member_rand(rng: Sequence[torch.Generator], shape: tuple[int, ...], device) -> torch.Tensor:
    return torch.stack([torch.rand(shape, generator=g, device=device) for g in rng])


def training_loss(model: ToyTransformer, clean: torch.Tensor, mask_id: int,
                  rng: Sequence[torch.Generator]) -> torch.Tensor:
    """Per-member loss [E] of one batch ``clean`` [E,B,L] under the model's objective."""
    if model.cfg.objective == "next_token":
        logits = model(clean[..., :-1], rng)
        return next_token_loss(logits, clean[..., 1:], model.cfg.loss_reduction)
    E, B, L = clean.shape
    if model.cfg.objective == "fixed_rate_masking":
        # The masked-diffusion loss at a constant t: still an unbiased estimate of the mean
        # per-token CE. A sequence that drew no masked position adds 0 and still counts in
        # the batch mean (dropping or redrawing it would bias the estimate).
        mask_rate = torch.full((E, B), model.cfg.fixed_mask_rate, device=clean.device)
    else:
        uniform = stratified_uniform(rng, B, clean.device) if model.cfg.mask_rate_sampler == "stratified" \
            else member_rand(rng, (B,), clean.device)
        mask_rate = MASK_RATE_EPS + (1 - MASK_RATE_EPS) * uniform
    masked = member_rand(rng, (B, L), clean.device) < mask_rate[..., None]
    logits = model(torch.where(masked, mask_id, clean), rng)
    return masked_diffusion_loss(logits, clean, masked, mask_rate, model.cfg.loss_reduction)


# ---------------------------------------------------------------- optimisation pieces
def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warm-up to the base rate, then constant (SEDD/RADD's schedule)."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


@torch.no_grad()
def clip_member_grad_norms(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``clip_grad_norm_`` applied to each member separately; returns the norms [E]."""
    grads = [p.grad for p in params if p.grad is not None]
    # Python's sum adds the tensors' [E] norms one after another, the same order for every E;
    # torch.stack(...).sum(0) reduced the [tensors, E] table in an E-dependent order (1-ulp drift).
    squared = sum(g.float().pow(2).flatten(1).sum(1) for g in grads)
    norms = squared.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return norms


class EMA:
    """Exponential moving average of the parameters.

    With ``warmup`` the decay is min(decay, (1+n)/(10+n)) after n updates, as in the
    SEDD code RADD is built on; otherwise it is the constant ``decay``.
    """

    def __init__(self, params: Sequence[torch.Tensor], decay: float, warmup: bool):
        self.decay, self.warmup = decay, warmup
        self.shadow = [p.detach().clone() for p in params]
        self.updates = 0

    @torch.no_grad()
    def update(self, params: Sequence[torch.Tensor]) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.decay
        torch._foreach_lerp_(self.shadow, [p.detach() for p in params], 1.0 - decay)

    def state_dict(self) -> dict:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        for mine, saved in zip(self.shadow, state["shadow"]):
            mine.copy_(saved)
        self.updates = state["updates"]


# ---------------------------------------------------------------- the loop
@dataclass
class TrainState:
    step: int
    model: ToyTransformer
    optimizer: torch.optim.Optimizer
    ema: EMA | None
    rng: list[torch.Generator]
    losses: list[dict]            # {"step", "member", "loss", "grad_norm"} every log_every steps
    snapshots: list[dict] = field(default_factory=list)   # {"step", "raw", "ema"}, stacked, on the CPU

    def ema_state_dict(self) -> dict[str, torch.Tensor] | None:
        if self.ema is None:
            return None
        names = [name for name, _ in self.model.named_parameters()]
        return {name: t.detach().clone() for name, t in zip(names, self.ema.shadow)}

    def take_snapshot(self) -> None:
        def on_cpu(weights: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
            return None if weights is None else {name: t.detach().to("cpu", copy=True) for name, t in weights.items()}

        self.snapshots.append({"step": self.step, "raw": on_cpu(self.model.state_dict()),
                               "ema": on_cpu(self.ema_state_dict())})


def _atomic_save(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)        # atomic: a kill mid-write leaves the previous file


def _save_resume(state: TrainState, path: Path, fingerprint: str) -> None:
    payload = {
        "fingerprint": fingerprint,
        "step": state.step,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "ema": state.ema.state_dict() if state.ema else None,
        "rng": [g.get_state() for g in state.rng],
        "losses": state.losses,
        "snapshots": state.snapshots,
    }
    _atomic_save(payload, path)


def _load_resume(state: TrainState, path: Path, fingerprint: str) -> bool:
    if not path.exists():
        return False
    payload = load_checkpoint(path, "delete it to restart this run from step 0")
    if payload["fingerprint"] != fingerprint:
        log.warning("ignoring %s: written for a different run configuration", path)
        return False
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    if state.ema:
        state.ema.load_state_dict(payload["ema"])
    for g, saved in zip(state.rng, payload["rng"]):
        g.set_state(saved)
    state.step = payload["step"]
    state.losses = payload["losses"]
    state.snapshots = payload["snapshots"]
    return True


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    data: torch.Tensor,
    seeds: Sequence[int],
    mask_id: int,
    resume_path: Path | None = None,
    fingerprint: str = "",
    callbacks: Sequence[Callable[[TrainState], None]] = (),
) -> TrainState:
    """Train ``len(seeds)`` models of one shape as a stack on the sequences ``data`` [N, L].

    Seed s drives member e's initialisation and all its randomness. With
    ``resume_path`` a checkpoint is written every ``checkpoint_every`` steps and
    picked up again if it exists and its ``fingerprint`` matches. ``callbacks`` run
    after every step (probes, or a test simulating a kill).
    """
    device, precision = device_and_precision(train_cfg.device, train_cfg.precision)
    init_rng = [torch.Generator().manual_seed(int(s)) for s in seeds]
    model = ToyTransformer(model_cfg, ensemble=len(seeds), init_rng=init_rng).to(device)
    rng = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    ema = EMA(params, train_cfg.ema_decay, train_cfg.ema_warmup) if train_cfg.ema_decay else None
    state = TrainState(0, model, optimizer, ema, rng, [])
    if resume_path is not None and _load_resume(state, resume_path, fingerprint):
        log.info("resumed from %s at step %d", resume_path, state.step)
    if train_cfg.snapshot_every and state.step == 0:
        state.take_snapshot()

    data = data.to(device)
    log.info("device %s, precision %s (toy.train.precision: %s), %d threads", device, precision,
             train_cfg.precision, torch.get_num_threads())
    model.train()
    started, started_step = time.perf_counter(), state.step
    while state.step < train_cfg.steps:
        for group in optimizer.param_groups:
            group["lr"] = train_cfg.lr * warmup_factor(state.step, train_cfg.warmup_steps)
        batch = torch.stack([
            data[torch.randint(len(data), (train_cfg.batch_size,), generator=g, device=device)] for g in rng
        ])
        with autocast(precision, device):
            losses = training_loss(model, batch, mask_id, rng)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()       # members share no parameters: each gets its own gradient
        norms = clip_member_grad_norms(params, train_cfg.grad_clip)
        optimizer.step()
        if ema:
            ema.update(params)
        state.step += 1

        if state.step % train_cfg.log_every == 0 or state.step == train_cfg.steps:
            elapsed = time.perf_counter() - started
            ms_per_step = 1000 * elapsed / max(1, state.step - started_step)
            if not all(math.isfinite(x) for x in losses.tolist()):
                raise FloatingPointError(f"training diverged at step {state.step}: losses {losses.tolist()}")
            for member, (loss, norm) in enumerate(zip(losses.tolist(), norms.tolist())):
                state.losses.append({"step": state.step, "member": member, "loss": loss, "grad_norm": norm})
            eta_min = ms_per_step * (train_cfg.steps - state.step) / 60000
            log.info("step %d/%d  loss %s  lr %.2e  %.1f ms/step  ETA %.1f min", state.step, train_cfg.steps,
                     " ".join(f"{x:.4f}" for x in losses.tolist()), optimizer.param_groups[0]["lr"], ms_per_step,
                     eta_min)
        if train_cfg.snapshot_every and (state.step % train_cfg.snapshot_every == 0 or state.step == train_cfg.steps):
            state.take_snapshot()      # before the checkpoint, so a resumed run keeps it
        if resume_path is not None and state.step % train_cfg.checkpoint_every == 0 and state.step < train_cfg.steps:
            _save_resume(state, resume_path, fingerprint)
        for callback in callbacks:
            callback(state)
    return state


# ---------------------------------------------------------------- toy runs as the workflow sees them
def toy_configs(spec: dict) -> tuple[ModelConfig, TrainConfig]:
    """Model and training config of one toy run spec (built by workflow/rules/common.smk).

    ``spec['model_fields']`` holds the model's config entry (ModelConfig fields plus
    ``ema_decay``); ``spec['train']`` the training section.
    """
    from revcurse.data.toy import MASK_ID, VOCAB_SIZE

    fields = dict(spec["model_fields"])
    ema_decay = fields.pop("ema_decay", None)
    model_cfg = ModelConfig(vocab_size=VOCAB_SIZE, seq_len=spec["length"], never_predict=MASK_ID, **fields)
    train_cfg = TrainConfig(ema_decay=ema_decay, **spec["train"])
    return model_cfg, train_cfg


def _run_header(state: TrainState, spec: dict, fingerprint: str, provenance: dict) -> dict:
    return {"spec": spec, "config_hash": fingerprint, "provenance": provenance,
            "model_config": state.model.cfg.to_dict()}


def _member_weights(raw: dict, ema: dict | None, member: int) -> dict:
    from revcurse.toy.model import member_state

    return {"raw": member_state(raw, member), "ema": member_state(ema, member) if ema is not None else None}


def save_run(path: Path, state: TrainState, member: int, spec: dict, fingerprint: str, provenance: dict) -> None:
    """Write member ``member`` of a finished stack as one run's checkpoint."""
    payload = {
        **_run_header(state, spec, fingerprint, provenance),
        "step": state.step,
        "weights": _member_weights(state.model.state_dict(), state.ema_state_dict(), member),
        "losses": [{k: v for k, v in row.items() if k != "member"} for row in state.losses if row["member"] == member],
    }
    _atomic_save(payload, path)


def save_snapshots(path: Path, state: TrainState, member: int, spec: dict, fingerprint: str,
                   provenance: dict) -> None:
    """Write member ``member``'s snapshots (``TrainConfig.snapshot_every``) as one file."""
    payload = {
        **_run_header(state, spec, fingerprint, provenance),
        "snapshots": [{"step": snap["step"], "weights": _member_weights(snap["raw"], snap["ema"], member)}
                      for snap in state.snapshots],
    }
    _atomic_save(payload, path)


def _model_with(model_config: dict, weights_by_kind: dict, weights: str,
                device: str | torch.device) -> tuple[ToyTransformer, str]:
    """The model with ``weights`` ('ema' or 'raw'; models without EMA give raw) in eval mode, and which it got."""
    model = ToyTransformer(ModelConfig(**model_config))
    chosen = weights_by_kind[weights] if weights == "ema" else None
    model.load_state_dict(chosen if chosen is not None else weights_by_kind["raw"])
    return model.to(device).eval(), "ema" if chosen is not None else "raw"


def load_run(path: Path, weights: str = "ema", device: str | torch.device = "cpu") -> tuple[ToyTransformer, dict]:
    """A run's model in eval mode with its ``weights`` ('ema' or 'raw'; models without EMA give raw)."""
    payload = load_checkpoint(path, "rerun the training job that writes it (snakemake --forcerun it)")
    model, payload["weights_used"] = _model_with(payload["model_config"], payload["weights"], weights, device)
    return model, payload


def load_snapshots(path: Path, weights: str = "ema",
                   device: str | torch.device = "cpu") -> tuple[list[tuple[int, ToyTransformer]], dict]:
    """A run's snapshots as (step, model in eval mode) in step order, with ``weights`` as in ``load_run``."""
    payload = load_checkpoint(path, "rerun the training job that writes it (snakemake --forcerun it)")
    if not payload["snapshots"]:
        raise ValueError(f"{path}: no snapshots; set toy.train.snapshot_every in config.yaml")
    models = []
    for snap in payload.pop("snapshots"):
        model, payload["weights_used"] = _model_with(payload["model_config"], snap["weights"], weights, device)
        models.append((snap["step"], model))
    return models, payload


def every_and_last(models: list[tuple[int, ToyTransformer]], every: int) -> list[tuple[int, ToyTransformer]]:
    """The (step, model) pairs of ``load_snapshots`` at multiples of ``every`` steps, and the last."""
    last = models[-1][0]
    return [(step, model) for step, model in models if step % every == 0 or step == last]
