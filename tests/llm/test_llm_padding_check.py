"""The load-time padding check (``backbone.check_padding_is_ignored``) in the model's own dtype:
the stand-ins pass in fp32, bf16 and fp16, and every known misconfiguration fails in each, with
the margins between rounding, the tolerance and a fault measured on the stand-ins.

Run with ``-s`` to print the measured margins (``test_the_tolerance_lies_between_rounding_and_every_fault``)."""
import pytest
import torch

import revcurse.llm.model.backbone as backbone_module
from helpers.llm import COMMIT, registry_entry, tiny_standin, write_tiny_tokenizer
from revcurse.llm.model.backbone import (DTYPES, Backbone, PaddingMaskError, check_padding_is_ignored, load_backbone,
                                         measure_padding)
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.standins import build_standin
from revcurse.llm.model.tokenizer import load_standin_tokenizer

MDMS = ["standin_llada", "standin_dream"]
MARGIN = 3          # each side of the tolerance: rounding at most a third of it, a fault at least three times it
SEEDS = range(4)


class IgnoresItsMask(torch.nn.Module):
    """Attention sees every position whatever mask it is given, as LLaDA's older modeling_llada.py
    (it passes attn_mask=None)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        everything = torch.zeros(input_ids.shape[0], 1, input_ids.shape[1], input_ids.shape[1])
        return self.inner(input_ids=input_ids, attention_mask=everything, **kwargs)


class KeepsItsCausalMask(IgnoresItsMask):
    """Applies the padding mask but also a causal one, as a modeling file whose attention keeps its
    decoder mask would: padding is ignored and the padded row is the row alone, but attention only
    looks back."""

    def forward(self, input_ids, attention_mask=None, **kwargs):
        width = input_ids.shape[1]
        future = torch.ones(width, width, dtype=torch.bool, device=input_ids.device).triu(1)
        causal = attention_mask.masked_fill(future, torch.finfo(attention_mask.dtype).min)
        return self.inner(input_ids=input_ids, attention_mask=causal, **kwargs)


# name -> (how the stand-in is misbuilt, registry overrides, the quantity that must fail, message)
MISCONFIGURATIONS = {
    "ignores its mask": (IgnoresItsMask, {}, "content", "change by up to"),
    # transformers builds its causal decoder mask from a 2-D padding mask: bidirectional on a full
    # row (no mask is needed), causal on a padded one.
    "2-D mask form on a decoder": (None, {"attention_mask": "padding_2d"}, "alone", "differ from the row alone"),
    "keeps its causal mask": (KeepsItsCausalMask, {}, "reach", "attention is not bidirectional on a padded row"),
}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_standin_tokenizer(write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"))


def standin(tokenizer, name: str, precision: str, seed: int = 1, wrap=None, **overrides) -> Backbone:
    """The registry's stand-in at its configured size, in ``precision``, optionally misbuilt."""
    spec = ModelSpec.from_config(name, {**registry_entry(name), "precision": precision, **overrides})
    model = build_standin(spec, len(tokenizer), tokenizer.eos_token_id, seed)
    model = (wrap(model) if wrap else model).to(DTYPES[precision]).eval()
    eos = tokenizer.eos_token_id
    return Backbone(spec, model, tokenizer, eos, eos, frozenset([eos]), tokenizer.mask_token_id)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("name", MDMS)
def test_the_stand_ins_pass_in_their_own_dtype(tokenizer, name, precision):
    check = check_padding_is_ignored(standin(tokenizer, name, precision))
    assert max(check.content, check.alone) <= check.tolerance < check.reach


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("fault", MISCONFIGURATIONS)
@pytest.mark.parametrize("name", MDMS)
def test_every_known_misconfiguration_fails_in_every_dtype(tokenizer, name, fault, precision):
    wrap, overrides, _, message = MISCONFIGURATIONS[fault]
    with pytest.raises(PaddingMaskError) as error:
        check_padding_is_ignored(standin(tokenizer, name, precision, wrap=wrap, **overrides))
    assert message in str(error.value) and f"llm.models.{name} (revision stand-in)" in str(error.value)


def test_the_tolerance_lies_between_rounding_and_every_fault(tokenizer):
    """Over seeds, stand-ins and the low-precision dtypes: what rounding moves stays ``MARGIN``
    times below the tolerance, what a fault moves (or, for reach, what a bidirectional model moves)
    ``MARGIN`` times above it. Printed in tolerance units."""
    rounding, faults = [], []
    for name, precision, seed in [(n, d, s) for n in MDMS for d in ("bf16", "fp16") for s in SEEDS]:
        check = measure_padding(standin(tokenizer, name, precision, seed))
        rounding.append(max(check.content, check.alone) / check.tolerance)
        faults.append(check.reach / check.tolerance)
        for fault, (wrap, overrides, quantity, _) in MISCONFIGURATIONS.items():
            broken = measure_padding(standin(tokenizer, name, precision, seed, wrap=wrap, **overrides))
            if quantity == "reach":      # a causal model's reach is rounding
                rounding.append(broken.reach / broken.tolerance)
            else:
                faults.append(getattr(broken, quantity) / broken.tolerance)
    print(f"\npadding check, in tolerance units (bf16 and fp16, {len(SEEDS)} seeds, {MDMS}): rounding at most "
          f"{max(rounding):.3g}, faults and bidirectional reach at least {min(faults):.3g}")
    assert max(rounding) <= 1 / MARGIN and min(faults) >= MARGIN


@pytest.mark.parametrize("name", MDMS)
def test_loading_an_mdm_that_ignores_its_padding_mask_stops(name, monkeypatch, tmp_path):
    tokenizer = write_tiny_tokenizer(tmp_path / "tokenizer.json")
    spec = tiny_standin(name)
    load_backbone(spec, torch.device("cpu"), 1, tokenizer)
    monkeypatch.setattr(backbone_module, "build_standin", lambda *args: IgnoresItsMask(build_standin(*args)))
    with pytest.raises(PaddingMaskError) as error:
        load_backbone(spec, torch.device("cpu"), 1, tokenizer)
    message = str(error.value)
    assert f"llm.models.{name} (revision stand-in): padding is not ignored" in message
    assert f"Modeling code: {__file__}" in message and f"llm.models.{name}.attention_mask" in message


def test_the_padding_error_of_a_remote_code_model_names_the_revision_and_the_llada_fix(tokenizer):
    spec = ModelSpec.from_config("llada", {**registry_entry("llada"), "revision": COMMIT, "precision": "bf16"})
    model = IgnoresItsMask(build_standin(tiny_standin("standin_llada"), len(tokenizer), 0, seed=1)).to(torch.bfloat16)
    backbone = Backbone(spec, model.eval(), tokenizer, 0, 0, frozenset([0]), tokenizer.mask_token_id, COMMIT)
    with pytest.raises(PaddingMaskError) as error:
        check_padding_is_ignored(backbone)
    message = str(error.value)
    assert f"llm.models.llada (revision {COMMIT})" in message and "change by up to" in message
    assert f"pin llm.models.llada.revision to a commit of {registry_entry('llada')['weights']}" in message
    assert "modeling_llada.py" in message and "github.com/ML-GSAI/LLaDA/issues/89" in message
