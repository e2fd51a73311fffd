"""K LoRA adapters over one frozen base: K runs trained together in one forward/backward pass.

Runs that share a frozen base model (e.g. the seeds of one model, dataset and direction) differ
only in their adapters, so their batches can go through the base once: the batch is the
concatenation of the K runs' batches, rows grouped by run in equal numbers, and every target
linear layer adds to the frozen output, row group k, adapter k's update:

    y[k] = W x[k] + scaling * B[k] A[k] x[k]        A: (K, r, in), B: (K, out, r)

computed as peft computes one adapter (in the adapters' dtype, fp32 under a bf16 base, cast back
to the base's output dtype), so a run's gradients are those it gets alone: rows of another run
never touch its adapter. AdamW is elementwise, so one AdamW over the stacked tensors is K AdamWs.

Adapters enter and leave in peft's naming (``base_model.model.<module>.lora_A.default.weight``,
one run's (r, in) and (out, r) matrices), so checkpoints are those of a single run.
"""
from __future__ import annotations

import torch

from revcurse.llm.model.lora import PEFT_PREFIX

PEFT_SUFFIXES = {"lora_A": ".lora_A.default.weight", "lora_B": ".lora_B.default.weight"}


class StackedLoRALinear(torch.nn.Module):
    """A frozen ``nn.Linear`` and K adapters; the input's rows are grouped by run, equally."""

    def __init__(self, base: torch.nn.Linear, lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float):
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Parameter(lora_A)      # (K, r, in)
        self.lora_B = torch.nn.Parameter(lora_B)      # (K, out, r)
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.base(x)
        runs = self.lora_A.shape[0]
        per_run = x.to(self.lora_A.dtype).reshape(runs, -1, x.shape[-1])          # (K, rows·tokens, in)
        update = torch.bmm(torch.bmm(per_run, self.lora_A.transpose(1, 2)), self.lora_B.transpose(1, 2))
        return (result + update.view(result.shape) * self.scaling).to(result.dtype)


def stack_adapters(model: torch.nn.Module, adapters: list[dict[str, torch.Tensor]], scaling: float) -> torch.nn.Module:
    """Replace every linear layer that ``adapters`` (K runs' peft-named LoRA weights, same keys)
    name with a ``StackedLoRALinear`` holding the K adapters; freeze everything else."""
    keys = set(adapters[0])
    if any(set(a) != keys for a in adapters):
        raise ValueError("the stacked runs' adapters do not wrap the same layers")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name in _adapted_modules(keys):
        base = model.get_submodule(name)
        device = base.weight.device
        stacked = {part: torch.stack([a[PEFT_PREFIX + name + suffix] for a in adapters]).to(device)
                   for part, suffix in PEFT_SUFFIXES.items()}
        parent, _, leaf = name.rpartition(".")
        model.get_submodule(parent).add_module(leaf, StackedLoRALinear(base, **stacked, scaling=scaling))
    return model


def run_adapters(model: torch.nn.Module, run: int) -> dict[str, torch.Tensor]:
    """Run ``run``'s adapters in peft's naming, on the CPU: what its checkpoint holds."""
    return {PEFT_PREFIX + name + suffix: getattr(module, part)[run].detach().cpu().contiguous()
            for name, module in model.named_modules() if isinstance(module, StackedLoRALinear)
            for part, suffix in PEFT_SUFFIXES.items()}


def stacked_runs(model: torch.nn.Module) -> int:
    """How many runs' adapters ``model`` carries (0: none stacked)."""
    return next((m.lora_A.shape[0] for m in model.modules() if isinstance(m, StackedLoRALinear)), 0)


def _adapted_modules(keys: set[str]) -> list[str]:
    suffix = PEFT_SUFFIXES["lora_A"]
    names = sorted(k.removeprefix(PEFT_PREFIX).removesuffix(suffix) for k in keys if k.endswith(suffix))
    if set(keys) != {PEFT_PREFIX + n + s for n in names for s in PEFT_SUFFIXES.values()}:
        raise ValueError(f"not LoRA adapters in peft's naming: {sorted(keys)[:3]} ...")
    return names
