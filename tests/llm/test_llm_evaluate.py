"""Exact match after lowercasing and stripping, against the dataset's accepted-answer sets."""
import pytest

from helpers.llm import write_tiny_tokenizer
from revcurse.llm.evaluate import answer_text, is_exact_match
from revcurse.llm.model.tokenizer import load_standin_tokenizer


@pytest.mark.parametrize("prediction,accepted,expected", [
    ("Chris Hemsworth", ["Chris Hemsworth"], True),
    ("  chris HEMSWORTH \n", ["Chris Hemsworth"], True),            # case and surrounding whitespace
    ("Chris  Hemsworth", ["Chris Hemsworth"], True),                # inner whitespace collapsed
    ("Craig Hemsworth", ["Leonie Hemsworth", "Craig Hemsworth"], True),   # either parent is accepted
    ("Chris Hemsworth.", ["Chris Hemsworth"], False),               # nothing else is normalised away
    ("Chris", ["Chris Hemsworth"], False),
    ("Chris Hemsworth and Liam", ["Chris Hemsworth"], False),
    ("", ["Chris Hemsworth"], False),
])
def test_exact_match(prediction, accepted, expected):
    assert is_exact_match(prediction, accepted) == expected


def test_answer_is_cut_at_the_first_stop_token_and_stripped(tmp_path):
    tokenizer = load_standin_tokenizer(write_tiny_tokenizer(tmp_path / "tokenizer.json"))
    eos = tokenizer.eos_token_id
    name = tokenizer(" Carl Dorn", add_special_tokens=False)["input_ids"]
    trailing = tokenizer(" Anna", add_special_tokens=False)["input_ids"]
    assert answer_text(tokenizer, [*name, eos, *trailing], frozenset([eos])) == "Carl Dorn"
    assert answer_text(tokenizer, name, frozenset([eos])) == "Carl Dorn"         # no stop token: all of it
    assert answer_text(tokenizer, [eos, *name], frozenset([eos])) == ""
