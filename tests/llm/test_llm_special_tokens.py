"""The special-token ids are checked against the tokenizer when a model is loaded, before its
weights are read: a configured mask id must be the tokenizer's mask token or a special added token
of it (LLaDA's tokenizer names no mask token), and differ from pad and EOS."""
import pytest
import torch

import revcurse.llm.model.backbone as backbone_module
from helpers.llm import COMMIT, local_checkpoint, registry_entry, write_tiny_tokenizer
from revcurse.llm.model.backbone import load_backbone, special_token_ids
from revcurse.llm.model.registry import ModelSpec
from revcurse.llm.model.tokenizer import EOS_TOKEN, MASK_TOKEN, load_standin_tokenizer

SOURCE = "/weights/of/the/model"


def mdm(mask_token_id, **overrides) -> ModelSpec:
    return ModelSpec.from_config("llada", {**registry_entry("llada"), "mask_token_id": mask_token_id, **overrides})


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """The stand-in tokenizer (it names its mask token), and one that names none but has a special
    added token for it, as LLaDA's."""
    from transformers import PreTrainedTokenizerFast

    path = write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")
    unnamed = PreTrainedTokenizerFast(tokenizer_file=str(path), eos_token=EOS_TOKEN)
    unnamed.add_special_tokens({"additional_special_tokens": ["<|mdm_mask|>"]})
    return load_standin_tokenizer(path), unnamed


def test_the_configured_mask_id_must_be_the_tokenizers_mask_token(tokenizers):
    named, _ = tokenizers
    own = named.convert_tokens_to_ids(MASK_TOKEN)
    assert special_token_ids(mdm(None), named, SOURCE) == (named.eos_token_id, named.eos_token_id, own)
    assert special_token_ids(mdm(own), named, SOURCE)[2] == own
    with pytest.raises(ValueError) as error:
        special_token_ids(mdm(own + 1), named, SOURCE)
    assert (f"config.yaml: llm.models.llada.mask_token_id = {own + 1}, but the tokenizer at {SOURCE} has mask token "
            f"'{MASK_TOKEN}' = {own}; expected the same id") in str(error.value)


def test_without_a_named_mask_token_the_id_must_be_a_special_added_token(tokenizers):
    _, unnamed = tokenizers
    special = unnamed.convert_tokens_to_ids("<|mdm_mask|>")
    assert special_token_ids(mdm(special), unnamed, SOURCE)[2] == special
    ordinary = unnamed.convert_tokens_to_ids("Anna")
    with pytest.raises(ValueError, match=f"mask_token_id = {ordinary}, but in the tokenizer at {SOURCE} that id is "
                                         f"'Anna'; expected a special added token"):
        special_token_ids(mdm(ordinary), unnamed, SOURCE)
    with pytest.raises(ValueError, match=f"mask_token_id = {len(unnamed) + 7}, but .* that id is not a token of it"):
        special_token_ids(mdm(len(unnamed) + 7), unnamed, SOURCE)
    with pytest.raises(ValueError, match=f"mask_token_id is null and the tokenizer at {SOURCE} has no mask token"):
        special_token_ids(mdm(None), unnamed, SOURCE)


def test_the_mask_id_is_neither_pad_nor_eos(tokenizers):
    named, _ = tokenizers
    with pytest.raises(ValueError, match=f"mask_token_id = {named.eos_token_id} is also the tokenizer's pad id"):
        special_token_ids(mdm(named.eos_token_id), type(named)(tokenizer_object=named.backend_tokenizer,
                                                               eos_token=EOS_TOKEN, pad_token=EOS_TOKEN), SOURCE)


def test_a_bad_mask_id_stops_the_load_before_the_weights_are_read(tmp_path, monkeypatch):
    directory = local_checkpoint(tmp_path / "ckpt")
    spec = mdm(5, weights=str(directory), revision=COMMIT, remote_code=False, precision="fp32")

    def never(*args):
        raise AssertionError("the weights were read before the tokenizer was checked")
    monkeypatch.setattr(backbone_module, "_load_model", never)
    with pytest.raises(ValueError, match=f"mask_token_id = 5, but in the tokenizer at {directory} that id is"):
        load_backbone(spec, torch.device("cpu"), seed=0)


def test_ids_beyond_the_models_embeddings_are_refused(tmp_path):
    from transformers import PreTrainedTokenizerFast

    directory = local_checkpoint(tmp_path / "ckpt")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|mdm_mask|>"]})   # one past the embeddings
    tokenizer.save_pretrained(directory)
    spec = mdm(len(tokenizer) - 1, weights=str(directory), revision=COMMIT, remote_code=False, precision="fp32")
    with pytest.raises(ValueError, match=rf"{directory}: the model's input embeddings have {len(tokenizer) - 1} rows, "
                                         rf"but the special-token ids are .*'mask': {len(tokenizer) - 1}"):
        load_backbone(spec, torch.device("cpu"), seed=0)
