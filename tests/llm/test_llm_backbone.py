"""The calling conventions of each family: bidirectional MDMs, causal ARMs, Dream's shifted logits and
positions; the padding check every MDM passes when it is loaded; the chat template option."""
import pytest
import torch
import torch.nn.functional as F

import revcurse.llm.model.backbone as backbone_module
from helpers.llm import COMMIT, local_checkpoint, real_llama, registry_entry, tiny_standin, write_tiny_tokenizer
from revcurse.llm.batches import encode_example
from revcurse.llm.model.backbone import Backbone, PaddingMaskError, check_padding_is_ignored, load_backbone
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.standins import build_standin
from revcurse.llm.model.tokenizer import load_standin_tokenizer
from revcurse.llm.samplers import dream_generate

STANDINS = ["standin_llada", "standin_dream", "standin_llama", "standin_qwen"]


def standin_backbone(name: str) -> Backbone:
    spec = tiny_standin(name)
    return Backbone(spec, build_standin(spec, 64, 0, seed=1).eval(), None, 0, 0, frozenset([0]), 1)


@pytest.mark.parametrize("name", STANDINS)
def test_mdm_stand_ins_attend_both_ways_arms_causally(name):
    backbone = standin_backbone(name)
    ids, mask = torch.tensor([[5, 6, 7, 8, 9]]), torch.ones(1, 5, dtype=torch.long)
    changed = ids.clone()
    changed[0, 4] = 10
    with torch.no_grad():
        before, after = backbone.logits(ids, mask), backbone.logits(changed, mask)
    # Row 1 is computed from position 1 (position 0 with Dream's shift): it sees the last token
    # only through bidirectional attention.
    sees_the_future = not torch.allclose(before[0, 1], after[0, 1])
    assert sees_the_future == (backbone.spec.kind == "mdm")


@pytest.mark.parametrize("name", STANDINS)
def test_left_padding_changes_no_logit(name):
    backbone = standin_backbone(name)
    ids, mask = torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long)
    padded, padded_mask = torch.tensor([[0, 0, 5, 6, 7, 8]]), torch.tensor([[0, 0, 1, 1, 1, 1]])
    with torch.no_grad():
        plain, left_padded = backbone.logits(ids, mask), backbone.logits(padded, padded_mask)
    # Dream's shift gives row 2 of the padded batch the first pad's prediction: compare from row 3.
    assert torch.allclose(plain[0, 1:], left_padded[0, 3:], atol=1e-5)


class RawLogits(torch.nn.Module):
    """A model whose raw logits at position i favour token 100 + i, whatever the input."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        batch, width = input_ids.shape
        logits = torch.zeros(batch, width, 200)
        logits[:, torch.arange(width), 100 + torch.arange(width)] = 10.0
        return type("Output", (), {"logits": logits + self.weight})()


@pytest.mark.parametrize("shift", [True, False])
def test_dream_shift_moves_every_prediction_one_position_right(shift):
    spec = tiny_standin("standin_dream", logits_shift=shift)
    logits = Backbone(spec, RawLogits(), None, 0, 0, frozenset([0]), 1).logits(
        torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.long))
    predicted = logits.argmax(-1)[0].tolist()
    assert predicted == ([100, 100, 101, 102, 103, 104] if shift else [100, 101, 102, 103, 104, 105])


# ---------------------------------------------------------------- padding check (load time)
class IgnoresItsMask(torch.nn.Module):
    """A stand-in whose attention sees every position whatever mask it is given, as LLaDA's older
    modeling_llada.py does (it passes attn_mask=None)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, input_ids, attention_mask=None, **kwargs):
        everything = torch.zeros(input_ids.shape[0], 1, input_ids.shape[1], input_ids.shape[1])
        return self.inner(input_ids=input_ids, attention_mask=everything, **kwargs)


@pytest.mark.parametrize("name", ["standin_llada", "standin_dream"])
def test_loading_an_mdm_that_ignores_its_padding_mask_stops(name, monkeypatch, tmp_path):
    tokenizer = write_tiny_tokenizer(tmp_path / "tokenizer.json")
    spec = tiny_standin(name)
    assert check_padding_is_ignored(load_backbone(spec, torch.device("cpu"), 1, tokenizer)) < 1e-4
    monkeypatch.setattr(backbone_module, "build_standin", lambda *args: IgnoresItsMask(build_standin(*args)))
    with pytest.raises(PaddingMaskError) as error:
        load_backbone(spec, torch.device("cpu"), 1, tokenizer)
    message = str(error.value)
    assert f"llm.models.{name} (revision stand-in): padding is not ignored" in message
    assert f"Modeling code: {__file__}" in message and f"llm.models.{name}.attention_mask" in message


def test_the_padding_error_of_a_remote_code_model_names_the_revision_and_the_llada_fix(tmp_path):
    spec = ModelSpec.from_config("llada", {**registry_entry("llada"), "revision": COMMIT, "dtype": "bf16"})
    model = IgnoresItsMask(build_standin(tiny_standin("standin_llada"), 320, 0, seed=1)).to(torch.bfloat16)
    tokenizer = load_standin_tokenizer(write_tiny_tokenizer(tmp_path / "tokenizer.json"))
    backbone = Backbone(spec, model.eval(), tokenizer, 0, 0, frozenset([0]), 1, COMMIT)
    with pytest.raises(PaddingMaskError) as error:
        check_padding_is_ignored(backbone)
    message = str(error.value)
    assert f"llm.models.llada (revision {COMMIT})" in message and "change by up to" in message
    assert "pin llm.models.llada.revision to a commit of GSAI-ML/LLaDA-8B-Instruct" in message
    assert "modeling_llada.py" in message and "#89 and #90" in message


# ---------------------------------------------------------------- Dream's position ids
def dream_tok_idx(attention_mask: torch.Tensor, max_length: int) -> torch.Tensor | None:
    """Dream's position ids, transcribed from its official sampler (generation_utils.py, ``_sample``)."""
    if attention_mask is not None and torch.any(attention_mask == 0.0):
        attention_mask = F.pad(attention_mask, (0, max_length - attention_mask.shape[1]), value=1.0)
        tok_idx = attention_mask.long().cumsum(-1) - 1
        tok_idx.masked_fill_(attention_mask == 0, 1)
    else:
        tok_idx = None
    return tok_idx


def test_dream_decodes_with_the_position_ids_of_its_official_sampler():
    backbone = standin_backbone("standin_dream")
    prompts = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12], [0, 13, 14, 15, 16]])
    prompt_mask = (prompts != 0).long()
    seen = []
    handle = backbone.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["position_ids"]),
                                                      with_kwargs=True)
    dream_generate(backbone.logits, prompts, prompt_mask, mask_token_id=1, gen_length=4, steps=2, alg="entropy",
                   eps=1e-3)
    handle.remove()
    expected = dream_tok_idx(prompt_mask, 5 + 4)
    assert len(seen) == 2 and all(torch.equal(s, expected) for s in seen)
    assert expected[0, 2] == 0 and expected[2, 1] == 0          # each row restarts at its first real token
    # LLaDA keeps the model's own positions (the sequence index): none are passed.
    llada = standin_backbone("standin_llada")
    handle = llada.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs), with_kwargs=True)
    llada.logits(prompts, prompt_mask)
    handle.remove()
    assert "position_ids" not in seen[-1]


# ---------------------------------------------------------------- chat template
TEMPLATE = "{% for m in messages %}<|user|>{{ m['content'] }}<|end|>{% endfor %}<|assistant|>"


def test_chat_template_wraps_prompts_and_answers_start_the_assistant_turn(tmp_path):
    spec = real_llama(local_checkpoint(tmp_path / "ckpt", TEMPLATE), chat_template=True)
    backbone = load_backbone(spec, torch.device("cpu"), seed=0)
    tokenizer, text = backbone.tokenizer, lambda s: tuple(tokenizer(s, add_special_tokens=False)["input_ids"])
    example = encode_example(backbone.prompt_format, "Anna Bell's child is", "Carl Dorn", backbone.eos_token_id, None)
    assert example.prompt_ids == text("<|user|>") + text("Anna Bell's child is") + text("<|end|><|assistant|>")
    assert example.answer_ids == text("Carl Dorn") + (backbone.eos_token_id,)
    raw = load_backbone(real_llama(tmp_path / "ckpt"), torch.device("cpu"), seed=0)
    example = encode_example(raw.prompt_format, "Anna Bell's child is", "Carl Dorn", raw.eos_token_id, None)
    assert example.prompt_ids == text("Anna Bell's child is") and example.answer_ids[:-1] == text(" Carl Dorn")


def test_chat_template_on_a_tokenizer_without_one_names_the_setting(tmp_path):
    with pytest.raises(ValueError) as error:
        load_backbone(real_llama(local_checkpoint(tmp_path / "ckpt"), chat_template=True), torch.device("cpu"), 0)
    assert "llm.models.llama.chat_template is true, but the tokenizer has no chat template" in str(error.value)
    assert str(tmp_path / "ckpt") in str(error.value) and "set it to false" in str(error.value)
