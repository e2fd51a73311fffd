"""One model with its tokenizer and the calling conventions of its family.

Everything that differs between LLaDA, Dream, the ARMs and the stand-ins is here, so the
objectives and samplers see one interface: ``logits(input_ids, padding_mask)``.

- ARMs: the usual causal call; ``logits[:, i]`` predicts token ``i + 1``.
- MDMs: bidirectional attention over the non-padding tokens; ``logits[:, i]`` predicts token
  ``i``. LLaDA builds its bidirectional bias from a 2-D padding mask (``attention_mask:
  padding_2d``); Dream and the stand-ins take a ready 4-D additive mask (``additive_4d``), which
  transformers passes through unchanged in every release the project runs on. Dream's head
  predicts the *next* token as in its AR parent Qwen2.5, so its logits are shifted right by one
  position (``logits_shift``), exactly as Dream's own sampler does.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from revcurse.config import derive_seed

from .lora import attach_lora, trainable_state
from .registry import ModelSpec, resolve_weights
from .stacked_lora import stack_adapters
from .standins import build_standin
from .tokenizer import load_standin_tokenizer

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Backbone:
    spec: ModelSpec
    model: torch.nn.Module           # the transformers model: bare, wrapped by peft, or with stacked adapters
    tokenizer: object
    pad_token_id: int
    eos_token_id: int                # appended after every completion
    stop_token_ids: frozenset[int]   # any of them ends a generated answer
    mask_token_id: int | None        # MDMs only

    def logits(self, input_ids: torch.Tensor, padding_mask: torch.Tensor,
               positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, V) logits; MDMs, given (B, m) ``positions``: (B, m, V), the logits predicting the
        tokens at those positions, with the LM head run on those positions' hidden states alone
        (the diffusion samplers need no others, and the head is the largest layer)."""
        if self.spec.kind == "arm":
            return self.model(input_ids=input_ids, attention_mask=padding_mask).logits
        if positions is not None:
            # Dream's position i-1 predicts token i (positions are answer tokens, never column 0).
            head_positions = positions - 1 if self.spec.logits_shift else positions
            with _lm_head_only_at(self.model, head_positions):
                return self.model(input_ids=input_ids, **self._bidirectional(padding_mask)).logits
        logits = self.model(input_ids=input_ids, **self._bidirectional(padding_mask)).logits
        if self.spec.logits_shift:
            # Position i-1 predicts token i; position 0 has no predecessor and keeps its own row
            # (it is always a prompt or padding token, never predicted).
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits

    def _bidirectional(self, padding_mask: torch.Tensor) -> dict:
        if self.spec.attention_mask == "padding_2d":
            return {"attention_mask": padding_mask}
        dtype = next(self.model.parameters()).dtype
        blocked = ~padding_mask.bool()[:, None, None, :].expand(-1, 1, padding_mask.shape[1], -1)
        return {"attention_mask": torch.zeros(blocked.shape, dtype=dtype, device=padding_mask.device)
                .masked_fill(blocked, torch.finfo(dtype).min)}


@contextmanager
def _lm_head_only_at(model: torch.nn.Module, positions: torch.Tensor):
    """While open, the model's LM head (its output embeddings, a linear layer in every model the
    project runs: transformers' ``lm_head``, LLaDA's ``ff_out``) receives the (B, m) ``positions``
    of the final hidden states instead of all of them, so the model returns (B, m, V) logits."""
    head = model.get_output_embeddings()
    if not isinstance(head, torch.nn.Linear):
        raise TypeError(f"the LM head is a {type(head).__name__}, not a linear layer: cannot restrict it to positions")

    def gather(module, args):
        hidden = args[0]
        return (hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1])),)

    handle = head.register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def load_backbone(spec: ModelSpec, device: torch.device, seed: int, tokenizer_path: Path | None = None) -> Backbone:
    """A real model from its weights (offline), or a stand-in built from its config with ``seed``."""
    if spec.is_standin:
        if tokenizer_path is None:
            raise ValueError(f"{spec.name} is a stand-in: it needs the stand-in tokenizer")
        tokenizer = load_standin_tokenizer(tokenizer_path)
        model = build_standin(spec, len(tokenizer), tokenizer.eos_token_id, seed)
        generation_eos = []
    else:
        model, tokenizer = _load_pretrained(spec)
        generation_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None) or []
        generation_eos = [generation_eos] if isinstance(generation_eos, int) else list(generation_eos)
    model.to(device=device, dtype=DTYPES[spec.dtype])
    eos = tokenizer.eos_token_id
    # App. C: pad = EOS for LLaMA; tokenizers that define their own pad token (Qwen) keep it.
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    mask = spec.mask_token_id if spec.mask_token_id is not None else tokenizer.mask_token_id
    if spec.kind == "mdm" and mask is None:
        raise ValueError(f"config.yaml: llm.models.{spec.name}.mask_token_id is null and the tokenizer has no mask token")
    return Backbone(spec, model, tokenizer, pad, eos, frozenset([eos, pad, *generation_eos]), mask)


def load_adapted_backbone(spec: ModelSpec, lora: dict, device: torch.device, seed: int,
                          tokenizer_path: Path | None = None) -> Backbone:
    """The backbone with fresh LoRA adapters (seeded), as fine-tuning starts and evaluation rebuilds it."""
    return with_seeded_lora(load_backbone(spec, device, seed, tokenizer_path), lora, seed)


def with_seeded_lora(backbone: Backbone, lora: dict, seed: int) -> Backbone:
    """``backbone`` with peft LoRA adapters drawn from the run ``seed``."""
    spec = backbone.spec
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "llm-lora-init"))
        model = attach_lora(backbone.model, spec.lora_targets, lora["r"], lora["alpha"], lora["dropout"],
                            spec.train_base, f"llm.models.{spec.name}.lora_targets")
    return replace(backbone, model=model)


def with_stacked_lora(backbone: Backbone, lora: dict, seeds: list[int]) -> Backbone:
    """``backbone`` (frozen) with the adapters of the runs of ``seeds`` stacked (``stacked_lora.py``),
    each drawn exactly as ``with_seeded_lora`` draws it for its run alone."""
    spec = backbone.spec
    if spec.train_base:
        raise ValueError(
            f"config.yaml: llm.models.{spec.name}.train_base is true: its runs train their base weights, so they "
            f"cannot share one base; set llm.train.stack_seeds: false for it (the quick preset does)")
    if lora["dropout"]:
        raise ValueError(f"config.yaml: llm.lora.dropout = {lora['dropout']}: stacked runs (llm.train.stack_seeds) "
                         f"have no LoRA dropout; set it to 0 or stack_seeds to false")
    adapters = []
    for seed in seeds:   # peft draws each run's initial adapters, then gives the base back unchanged
        wrapped = with_seeded_lora(backbone, lora, seed).model
        adapters.append(trainable_state(wrapped))
        wrapped.unload()
    return replace(backbone, model=stack_adapters(backbone.model, adapters, lora["alpha"] / lora["r"]))


def _load_pretrained(spec: ModelSpec):
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    path = resolve_weights(spec)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=spec.remote_code)
    # LLaDA and Dream register their language-model classes under AutoModel.
    auto_class = AutoModel if spec.kind == "mdm" else AutoModelForCausalLM
    # transformers renamed the keyword in 4.56; the remote-code env pins an older release.
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_keyword = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    model = auto_class.from_pretrained(path, trust_remote_code=spec.remote_code, **{dtype_keyword: DTYPES[spec.dtype]})
    return model, tokenizer
