"""The calling conventions of each family: bidirectional MDMs, causal ARMs, Dream's shifted logits and
positions; the padding check every MDM passes when it is loaded; the chat template option."""
import pytest
import torch
import torch.nn.functional as F

from helpers.llm import local_checkpoint, real_llama, tiny_standin
from revcurse.llm.batches import encode_example
from revcurse.llm.model.backbone import Backbone, load_backbone
from revcurse.llm.model.standins import build_standin
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
