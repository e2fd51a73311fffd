"""The model registry: where weights come from, and the error when they are not here."""
import pytest
import torch
from llm_helpers import registry_entry, tiny_standin, write_tiny_tokenizer
from transformers import PreTrainedTokenizerFast

from revcurse.llm import plan
from revcurse.llm.backbone import load_backbone
from revcurse.llm.registry import MissingWeightsError, ModelSpec, resolve_weights
from revcurse.llm.standins import build_standin
from revcurse.llm.tokenizer import EOS_TOKEN


def real_spec(weights: str) -> ModelSpec:
    return ModelSpec.from_config("llada", {**registry_entry("llada"), "weights": weights})


def test_an_uncached_hub_id_names_the_config_key_and_the_fixes():
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec("revcurse-tests/no-such-model"))
    message = str(error.value)
    assert "llm.models.llada.weights = 'revcurse-tests/no-such-model'" in message
    assert "Nothing is downloaded" in message
    assert "--configfile" in message and "llm: {models: {llada: {weights: /path/to/" in message
    assert "preset=quick" in message and "docs/llm.md" in message


def test_a_local_directory_needs_a_config_json(tmp_path):
    with pytest.raises(MissingWeightsError, match="has no config.json"):
        resolve_weights(real_spec(str(tmp_path)))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_weights(real_spec(str(tmp_path))) == tmp_path


def test_model_inputs_stop_a_real_run_and_only_warn_in_a_dry_run(capsys):
    config = {"preset": "paper", "llm": {"models": {"llada": {**registry_entry("llada"),
                                                              "weights": "revcurse-tests/absent"}}}}
    with pytest.raises(MissingWeightsError):
        plan.model_inputs(config, "llada", dry_run=False)
    assert plan.model_inputs(config, "llada", dry_run=True) == {}
    assert "llm.models.llada.weights" in capsys.readouterr().err


def test_entries_are_checked_for_consistency():
    entry = registry_entry("standin_llama")
    with pytest.raises(ValueError, match="exactly one of 'weights'"):
        ModelSpec.from_config("x", {**entry, "weights": "somewhere"})
    with pytest.raises(ValueError, match=r"llm\.models\.x\.sampler = 'llada'"):
        ModelSpec.from_config("x", {**entry, "sampler": "llada"})


def test_learning_rates_per_dataset_as_in_app_c():
    rates = {name: ModelSpec.from_config(name, registry_entry(name)) for name in ("llada", "llama", "qwen")}
    assert [rates[m].learning_rate("parent_child") for m in rates] == [5e-5, 5e-5, 1e-4]
    assert [rates[m].learning_rate("trex") for m in rates] == [2e-4, 9e-5, 5e-5]


def test_remote_code_models_run_in_the_older_transformers_env():
    config = {"llm": {"models": {m: registry_entry(m) for m in ("llada", "dream", "llama", "standin_llada")}}}
    envs = {m: plan.conda_env(config, m) for m in config["llm"]["models"]}
    assert envs == {"llada": "../../envs/llm-remote-code.yaml", "dream": "../../envs/llm-remote-code.yaml",
                    "llama": "../../envs/llm.yaml", "standin_llada": "../../envs/llm.yaml"}


def test_a_real_arm_loads_from_a_local_checkpoint_with_pad_equal_to_eos(tmp_path):
    # A checkpoint directory as a user has it: config, weights, a tokenizer without pad token (as LLaMA-3.1).
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(write_tiny_tokenizer(tmp_path / "tokenizer.json")),
                                        eos_token=EOS_TOKEN)
    model = build_standin(tiny_standin("standin_llama"), len(tokenizer), tokenizer.eos_token_id, seed=0)
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    spec = ModelSpec.from_config("llama", {**registry_entry("llama"), "weights": str(tmp_path / "ckpt"),
                                           "dtype": "fp32"})
    backbone = load_backbone(spec, torch.device("cpu"), seed=0)
    assert type(backbone.model).__name__ == "LlamaForCausalLM"
    assert backbone.pad_token_id == backbone.eos_token_id == tokenizer.eos_token_id
    logits = backbone.logits(torch.tensor([[3, 4, 5]]), torch.ones(1, 3, dtype=torch.long))
    assert logits.shape == (1, 3, len(tokenizer))
