"""LLaDA's and Dream's own modeling code, tiny and with random weights, through the path a real
checkpoint takes: ``trust_remote_code`` loading from a weights directory at a pinned revision, the
tokenizer-id checks, the padding check in fp32 and bf16 (LLaDA's 2-D mask path, Dream's 4-D one),
the LM head restricted to chosen positions, LoRA on the registry's targets and the probes' score
capture.

The project does not ship that code. The tests run where a local copy of the files is named:

    LLADA_MODELING_DIR  a folder with configuration_llada.py and modeling_llada.py
    DREAM_MODELING_DIR  a folder with configuration_dream.py, modeling_dream.py, generation_utils.py

(from the Hub repositories beside the weights, GSAI-ML/LLaDA-8B-Instruct and
Dream-org/Dream-v0-Instruct-7B, or a public copy of them), in the environment the remote code runs
in (envs/llm-remote-code.yaml: transformers 4.46.2); otherwise they are skipped, saying so.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from helpers.llm import COMMIT, record_revision, registry_entry, write_tiny_tokenizer
from revcurse.llm.model.backbone import check_padding_is_ignored, load_backbone, with_seeded_lora
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.tokenizer import EOS_TOKEN
from revcurse.llm.probes.hooks import capture_method, recorded_scores

LAYERS, HEADS = 2, 4
# model -> (environment variable, the files it names, the remote code's classes, its mask token,
# whether the tokenizer names it as its mask token (Dream's does; LLaDA's has it as an added token only))
REMOTE = {
    "llada": ("LLADA_MODELING_DIR", ("configuration_llada.py", "modeling_llada.py"),
              {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
              "<|mdm_mask|>", False),
    "dream": ("DREAM_MODELING_DIR", ("configuration_dream.py", "modeling_dream.py", "generation_utils.py"),
              {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
              "<|mask|>", True),
}


def tiny_config(model: str, vocab: int, eos: int, mask: int) -> dict:
    """The real config.json's fields at toy size (LLaDA-8B-Instruct's and Dream-v0-Instruct-7B's keys)."""
    if model == "llada":
        return {"model_type": "llada", "d_model": 64, "n_heads": HEADS, "n_kv_heads": HEADS, "n_layers": LAYERS,
                "mlp_hidden_size": 128, "mlp_ratio": 4, "activation_type": "silu", "block_type": "llama",
                "rope": True, "rope_theta": 500000.0, "rope_full_precision": True, "alibi": False,
                "flash_attention": False, "attention_dropout": 0.0, "residual_dropout": 0.0,
                "embedding_dropout": 0.0, "layer_norm_type": "rms", "rms_norm_eps": 1e-5, "include_bias": False,
                "include_qkv_bias": False, "weight_tying": False, "scale_logits": False, "input_emb_norm": False,
                "attention_layer_norm": False, "max_sequence_length": 256, "vocab_size": vocab,
                "embedding_size": vocab, "eos_token_id": eos, "pad_token_id": eos, "mask_token_id": mask,
                "init_device": "cpu", "init_fn": "mitchell", "init_std": 0.02}
    return {"model_type": "Dream", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "num_key_value_heads": 2, "max_position_embeddings": 256,
            "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "vocab_size": vocab, "tie_word_embeddings": False,
            "mask_token_id": mask, "pad_token_id": eos, "eos_token_id": eos, "bos_token_id": eos,
            "attention_dropout": 0.0, "hidden_act": "silu", "use_sliding_window": False}


def modeling_dir(model: str) -> Path:
    variable, files, *_ = REMOTE[model]
    folder = os.environ.get(variable)
    if not folder:
        pytest.skip(f"{model}'s own modeling code is not here: set {variable} to a folder with {', '.join(files)} "
                    f"(not shipped with the project; this test's docstring says where they come from)")
    missing = [f for f in files if not (Path(folder) / f).is_file()]
    if missing:
        pytest.fail(f"{variable}={folder} lacks {', '.join(missing)}; expected {', '.join(files)}")
    import transformers
    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip(f"transformers {transformers.__version__}: the remote code is written for 4.4x; run this test in "
                    f"envs/llm-remote-code.yaml (transformers 4.46.2)")
    return Path(folder)


def remote_checkpoint(model: str, folder: Path) -> tuple[Path, int]:
    """A weights directory as `hf download --local-dir` leaves it (revision COMMIT): the remote code,
    a config.json naming it, tiny random weights, and a tokenizer with the model's mask token.
    Returns it and the mask token's id."""
    from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

    variable, files, auto_map, mask_token, named = REMOTE[model]
    folder.mkdir(parents=True)
    for name in files:
        shutil.copy(Path(os.environ[variable]) / name, folder / name)
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(write_tiny_tokenizer(folder / "bpe.json")),
                                        eos_token=EOS_TOKEN, **({"mask_token": mask_token} if named else {}))
    if not named:
        tokenizer.add_special_tokens({"additional_special_tokens": [mask_token]})
    tokenizer.save_pretrained(folder)
    mask = tokenizer.convert_tokens_to_ids(mask_token)
    config = {**tiny_config(model, len(tokenizer), tokenizer.eos_token_id, mask), "auto_map": auto_map}
    (folder / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    network = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=True), trust_remote_code=True)
    network.save_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**json.loads((folder / "config.json").read_text()),
                                                    "auto_map": auto_map}))
    for name in files:           # save_pretrained may rewrite the code files; keep the originals
        shutil.copy(Path(os.environ[variable]) / name, folder / name)
    return record_revision(folder, COMMIT), mask


def spec_of(model: str, weights: Path, precision: str, **overrides) -> ModelSpec:
    return ModelSpec.from_config(model, {**registry_entry(model), "weights": str(weights), "revision": COMMIT,
                                         "precision": precision, **overrides})


@pytest.fixture(scope="module", params=list(REMOTE))
def checkpoint(request, tmp_path_factory):
    model = request.param
    modeling_dir(model)
    folder, mask = remote_checkpoint(model, tmp_path_factory.mktemp(model) / "weights")
    return model, folder, mask


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_real_code_loads_at_its_revision_and_passes_the_padding_check(checkpoint, precision):
    model, folder, mask = checkpoint
    backbone = load_backbone(spec_of(model, folder, precision, mask_token_id=mask), torch.device("cpu"), seed=0)
    assert type(backbone.model).__name__ == REMOTE[model][2]["AutoModel"].split(".")[1]
    assert backbone.revision == COMMIT and backbone.mask_token_id == mask
    assert next(backbone.model.parameters()).dtype == {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    check = check_padding_is_ignored(backbone)                # load_backbone ran it; its figures, to show them
    print(f"\n{model} {precision}: padding check {check}")
    assert check.content <= check.tolerance < check.reach


def test_a_wrong_mask_id_stops_before_the_weights_are_read(checkpoint):
    model, folder, mask = checkpoint
    with pytest.raises(ValueError, match=f"llm.models.{model}.mask_token_id = {mask - 1}, but"):
        load_backbone(spec_of(model, folder, "fp32", mask_token_id=mask - 1), torch.device("cpu"), seed=0)


def test_the_lm_head_runs_on_the_chosen_positions_only(checkpoint):
    model, folder, mask = checkpoint
    backbone = load_backbone(spec_of(model, folder, "fp32", mask_token_id=mask), torch.device("cpu"), seed=0)
    ids = torch.tensor([[5, 6, 7, mask, mask, 8], [9, 10, mask, mask, mask, 11]])
    padding = torch.ones_like(ids)
    positions = torch.tensor([[3, 4], [2, 4]])
    with torch.no_grad():
        full = backbone.logits(ids, padding)
        chosen = backbone.logits(ids, padding, positions)
    assert chosen.shape == (2, 2, full.shape[-1])
    assert torch.allclose(chosen, full.gather(1, positions[..., None].expand(-1, -1, full.shape[-1])), atol=1e-5)


def test_lora_wraps_the_registry_targets_and_starts_as_the_base(checkpoint):
    model, folder, mask = checkpoint
    backbone = load_backbone(spec_of(model, folder, "fp32", mask_token_id=mask), torch.device("cpu"), seed=0)
    ids, padding = torch.tensor([[5, 6, mask, 7]]), torch.ones(1, 4, dtype=torch.long)
    with torch.no_grad():
        base = backbone.logits(ids, padding)
    adapted = with_seeded_lora(backbone, {"r": 4, "alpha": 8, "dropout": 0.0}, seed=1)
    wrapped = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in adapted.model.named_parameters()
               if "lora_A" in name}
    assert wrapped == set(registry_entry(model)["lora_targets"])
    with torch.no_grad():
        assert torch.allclose(adapted.logits(ids, padding), base, atol=1e-6)       # LoRA's B starts at 0


def test_the_probe_captures_one_score_per_layer_and_head(checkpoint):
    model, folder, mask = checkpoint
    backbone = load_backbone(spec_of(model, folder, "fp32", mask_token_id=mask), torch.device("cpu"), seed=0)
    assert capture_method(backbone.model) == {"llada": "llada_rotary", "dream": "rope_function"}[model]
    ids = torch.tensor([[mask, mask, 5, 6, 7], [8, 9, 10, mask, mask]])
    padding = torch.ones_like(ids)
    with torch.no_grad(), recorded_scores(backbone.model, torch.tensor([0, 3]), torch.tensor([3, 0])) as recorder:
        backbone.logits(ids, padding, sequence_positions=True)
    assert len(recorder.per_layer) == LAYERS
    assert all(scores.shape == (2, HEADS) and torch.isfinite(scores).all() for scores in recorder.per_layer)
    changed = ids.clone()
    changed[0, 3] = 11                                             # the key token of row 0
    with torch.no_grad(), recorded_scores(backbone.model, torch.tensor([0, 3]), torch.tensor([3, 0])) as again:
        backbone.logits(changed, padding, sequence_positions=True)
    assert not torch.allclose(again.per_layer[0][0], recorder.per_layer[0][0])      # row 0 reads that key
    assert torch.equal(again.per_layer[0][1], recorder.per_layer[0][1])               # row 1 does not
