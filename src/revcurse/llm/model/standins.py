"""Small models of the real architectures, built from configs, for machines without the checkpoints.

A Llama stands in for LLaMA-3.1 and, with bidirectional attention, for LLaDA (a Llama-style
encoder); a Qwen2 stands in for Qwen2.5 and, bidirectional, for Dream (initialised from Qwen2.5,
hence its shifted logits, which the registry entry turns on). Bidirectionality comes from the
mask the backbone passes (``backbone.py``); ``is_causal`` is cleared as well so that attention
kernels that read it agree.
"""
from __future__ import annotations

import torch

from revcurse.core.config import derive_seed
from revcurse.llm.model.registry import ModelSpec

ARCHITECTURES = ("llama", "qwen2")


def build_standin(spec: ModelSpec, vocab_size: int, eos_token_id: int, seed: int) -> torch.nn.Module:
    """A randomly initialised stand-in (the same weights for the same ``seed``)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[spec.standin["architecture"]]
    shape = spec.standin
    config = config_class(
        vocab_size=vocab_size,
        hidden_size=shape["hidden_size"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape.get("kv_heads", shape["heads"]),   # fewer: grouped-query attention
        intermediate_size=shape["intermediate_size"],
        max_position_embeddings=shape["max_positions"],
        tie_word_embeddings=False,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "llm-standin-init"))
        model = model_class(config)
    if spec.kind == "mdm":
        for module in model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False
    return model
