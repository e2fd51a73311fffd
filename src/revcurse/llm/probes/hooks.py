"""Raw attention scores of chosen (query, key) positions, captured from q and k after RoPE.

Neither LLaDA's remote code nor ``output_attentions`` under sdpa gives the pre-softmax scores,
and a full attention map of an 8B model is 32 layers x 32 heads x T² values per sequence. So the
probe asks for one (query position, key position) per batch row and keeps, per layer, only the
``[rows, heads]`` scores q·k (unscaled, as the toy probe's ``score``), computed where the rotated
q and k exist and then dropped. Three capture points cover the project's families:

- ``llada_rotary``: LLaDA's blocks call their ``rotary_emb`` module with (q, k) and get the
  rotated (q, k) back: a forward hook on it sees exactly what attention uses;
- ``attention_interface`` (transformers >= 5: the stand-ins, LLaMA, Qwen2): the attention layer
  hands post-RoPE q and k to the function registered for ``config._attn_implementation``; a
  registered function records the scores and delegates to sdpa;
- ``rope_function`` (Dream's remote code, written for transformers 4.46): its attention calls the
  module-level ``apply_rotary_pos_emb``; it is wrapped for the duration of the capture.

Grouped-query attention: query head h reads key/value head h // (heads / kv_heads), as sdpa's
``enable_gqa`` and LLaDA's ``repeat_interleave`` do.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import torch

PROBE_ATTENTION = "revcurse_score_probe"

# The recorder of the capture in progress (one at a time; the probes are single-threaded).
_active: "_ScoreRecorder | None" = None


class _ScoreRecorder:
    """Scores q[row, h, query_pos[row]] · k[row, kv(h), key_pos[row]] of every layer, in call order."""

    def __init__(self, query_pos: torch.Tensor, key_pos: torch.Tensor):
        self.query_pos, self.key_pos = query_pos, key_pos
        self.per_layer: list[torch.Tensor] = []
        self.heads_per_kv_head = 1

    def record(self, q: torch.Tensor, k: torch.Tensor) -> None:
        """``q``: [rows, heads, T, d], ``k``: [rows, kv_heads, T, d] after RoPE."""
        rows = torch.arange(q.shape[0], device=q.device)
        q_at = q[rows, :, self.query_pos.to(q.device)].float()                 # [rows, heads, d]
        k_at = k[rows, :, self.key_pos.to(k.device)].float()                   # [rows, kv_heads, d]
        self.heads_per_kv_head = q.shape[1] // k.shape[1]
        k_at = k_at.repeat_interleave(self.heads_per_kv_head, dim=1)
        self.per_layer.append((q_at * k_at).sum(-1).detach().cpu())            # [rows, heads]


def capture_method(model: torch.nn.Module) -> str:
    """Which of the module docstring's capture points ``model`` has."""
    for module in model.modules():
        rotary = getattr(module, "rotary_emb", None)
        if rotary is not None and hasattr(rotary, "rotate_half") and hasattr(module, "attn_out"):
            return "llada_rotary"
    attention = next((m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "q_proj")), None)
    if attention is None:
        raise ValueError(f"{type(model).__name__}: no attention layer with q_proj found to probe")
    namespace = vars(sys.modules[type(attention).__module__])
    if "ALL_ATTENTION_FUNCTIONS" in namespace:
        return "attention_interface"
    if "apply_rotary_pos_emb" in namespace:
        return "rope_function"
    raise ValueError(f"{type(attention).__name__}: neither an attention interface nor apply_rotary_pos_emb to hook")


@contextmanager
def recorded_scores(model: torch.nn.Module, query_pos: torch.Tensor,
                    key_pos: torch.Tensor) -> Iterator["_ScoreRecorder"]:
    """Inside the block, every forward pass of ``model`` appends, per layer, the [rows, heads]
    float32 scores from ``query_pos[row]`` to ``key_pos[row]`` to the recorder's ``per_layer``."""
    global _active
    if _active is not None:
        raise RuntimeError("recorded_scores is not re-entrant")
    recorder = _active = _ScoreRecorder(query_pos, key_pos)
    method = capture_method(model)
    try:
        with {"llada_rotary": _rotary_hooks, "attention_interface": _attention_interface,
              "rope_function": _rope_function}[method](model, recorder):
            yield recorder
    finally:
        _active = None


@contextmanager
def _rotary_hooks(model, recorder: _ScoreRecorder):
    def record(module, args, output):
        recorder.record(*output)

    handles = [module.rotary_emb.register_forward_hook(record) for module in model.modules()
               if hasattr(module, "attn_out") and hasattr(getattr(module, "rotary_emb", None), "rotate_half")]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _probe_attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if _active is not None:
        _active.record(query, key)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


@contextmanager
def _attention_interface(model, recorder: _ScoreRecorder):
    from transformers import AttentionInterface

    AttentionInterface.register(PROBE_ATTENTION, _probe_attention)
    configs = {id(m.config): m.config for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "config")}
    previous = {key: config._attn_implementation for key, config in configs.items()}
    for config in configs.values():
        if config._attn_implementation != "sdpa":
            raise ValueError(f"attention probe: the model runs {config._attn_implementation!r}; it delegates to sdpa, "
                             "so it probes sdpa models only")
        config._attn_implementation = PROBE_ATTENTION
    try:
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation = previous[key]


@contextmanager
def _rope_function(model, recorder: _ScoreRecorder):
    attention = next(m for m in model.modules() if hasattr(m, "layer_idx") and hasattr(m, "q_proj"))
    namespace = sys.modules[type(attention).__module__]
    original = namespace.apply_rotary_pos_emb

    def recording(q, k, *args, **kwargs):
        q, k = original(q, k, *args, **kwargs)
        recorder.record(q, k)
        return q, k

    namespace.apply_rotary_pos_emb = recording
    try:
        yield
    finally:
        namespace.apply_rotary_pos_emb = original
