"""LoRA adapters on the attention projections (App. C: r = 32, α = 64).

peft matches a target name against the last component(s) of each module's dotted name, so
``q_proj`` wraps every layer's query projection. Each family names its projections differently
(LLaDA's output projection is ``attn_out``, the Llama/Qwen2 ones ``o_proj``), so a name that
matches nothing is an error here rather than a silently smaller adapter.
"""
from __future__ import annotations

import torch

PEFT_PREFIX = "base_model.model."


def attach_lora(model: torch.nn.Module, targets: tuple[str, ...], rank: int, alpha: float, dropout: float,
                train_base: bool, config_key: str) -> torch.nn.Module:
    """``model`` wrapped with LoRA on ``targets``; only the adapters train unless ``train_base``
    (a stand-in trained from scratch trains its base weights with them)."""
    from peft import LoraConfig, get_peft_model

    linear_names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    unmatched = [t for t in targets if not any(n == t or n.endswith("." + t) for n in linear_names)]
    if unmatched:
        raise ValueError(
            f"config.yaml: {config_key} names {unmatched}, which match no linear layer of the model; its "
            f"attention layers are named like {sorted({n.rsplit('.', 1)[-1] for n in linear_names})}"
        )
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none")
    wrapped = get_peft_model(model, config)
    if train_base:
        for parameter in wrapped.parameters():
            parameter.requires_grad_(True)
    return wrapped


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: the adapters, plus the base weights when they train too."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = {name for name, p in model.named_parameters() if p.requires_grad}
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state))[:3], sorted(set(state) - expected)[:3]
        raise ValueError(f"checkpoint does not fit the model: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(state, strict=False)
