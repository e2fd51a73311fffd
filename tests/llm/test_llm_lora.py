"""LoRA wraps exactly the attention projections of each family, with the registry's target names."""
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from helpers.llm import module_tree, registry_entry, tiny_standin
from revcurse.llm.model.lora import PEFT_PREFIX, attach_lora
from revcurse.llm.model.standins import build_standin

LAYERS = 2


def llada_names():
    """LLaDA-8B's linear layers (modeling_llada.py, LLaDALlamaBlock): the output projection is
    attn_out, the MLP has ff_proj/up_proj/ff_out, and the LM head is transformer.ff_out."""
    blocks = [f"model.transformer.blocks.{i}.{p}" for i in range(LAYERS)
              for p in ("q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out")]
    return blocks + ["model.transformer.ff_out"]


def dream_names():
    """Dream-7B's linear layers (Qwen2 naming, modeling_dream.py)."""
    layers = [f"model.layers.{i}.{p}" for i in range(LAYERS)
              for p in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")]
    return layers + ["lm_head"]


def hf_model(config_class, model_class):
    config = config_class(vocab_size=64, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=2,
                          num_key_value_heads=2, intermediate_size=64)
    return model_class(config)


FAMILIES = {
    "llada": (lambda: module_tree(llada_names()), "model.transformer.blocks.{i}.{p}",
              ("q_proj", "k_proj", "v_proj", "attn_out")),
    "dream": (lambda: module_tree(dream_names()), "model.layers.{i}.self_attn.{p}",
              ("q_proj", "k_proj", "v_proj", "o_proj")),
    "llama": (lambda: hf_model(LlamaConfig, LlamaForCausalLM), "model.layers.{i}.self_attn.{p}",
              ("q_proj", "k_proj", "v_proj", "o_proj")),
    "qwen": (lambda: hf_model(Qwen2Config, Qwen2ForCausalLM), "model.layers.{i}.self_attn.{p}",
             ("q_proj", "k_proj", "v_proj", "o_proj")),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_wraps_exactly_the_attention_projections(family):
    build, pattern, projections = FAMILIES[family]
    targets = tuple(registry_entry(family)["lora_targets"])
    model = attach_lora(build(), targets, rank=4, alpha=8, dropout=0.0, train_base=False, config_key="k")
    expected = {pattern.format(i=i, p=p) for i in range(LAYERS) for p in projections}
    assert lora_wrapped_modules(model) == expected
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)


@pytest.mark.parametrize("standin", ["standin_llada", "standin_dream", "standin_llama", "standin_qwen"])
def test_standins_wrap_their_attention_and_train_every_weight(standin):
    spec = tiny_standin(standin)
    model = attach_lora(build_standin(spec, 64, 0, seed=1), spec.lora_targets, 4, 8, 0.0, spec.train_base, "k")
    assert lora_wrapped_modules(model) == {f"model.layers.{i}.self_attn.{p}" for i in range(LAYERS)
                                           for p in ("q_proj", "k_proj", "v_proj", "o_proj")}
    assert spec.train_base and all(p.requires_grad for p in model.parameters())


def test_a_target_matching_nothing_names_the_config_key():
    llada_targets = tuple(registry_entry("llada")["lora_targets"])
    with pytest.raises(ValueError, match=r"llm\.models\.x\.lora_targets names \['attn_out'\].*o_proj"):
        attach_lora(hf_model(LlamaConfig, LlamaForCausalLM), llada_targets, 4, 8, 0.0, False,
                    "llm.models.x.lora_targets")


def lora_wrapped_modules(model: torch.nn.Module) -> set[str]:
    """Dotted names (in the unwrapped model) of the modules that carry a LoRA adapter."""
    return {name.removeprefix(PEFT_PREFIX) for name, module in model.named_modules() if hasattr(module, "lora_A")}
