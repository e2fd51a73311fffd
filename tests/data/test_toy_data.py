import pytest
import torch

from revcurse.data import toy


@pytest.mark.parametrize("length", [2, 3, 10, 40])
def test_every_forward_placement_once(length):
    data = toy.make_forward_dataset(length)
    assert len(data.tokens) == 26 * length * (length - 1) // 2
    assert (data.lower_pos < data.upper_pos).all()
    assert len({toy.decode(row) for row in data.tokens}) == len(data.tokens)


def test_paper_example_l3():
    data = toy.make_forward_dataset(3)
    d_rows = {toy.decode(r) for r, letter in zip(data.tokens, data.letter) if letter == 3}
    assert d_rows == {"dD0", "d0D", "0dD"}


def test_check_rejects_a_planted_reverse_pair():
    data = toy.make_forward_dataset(4)
    tokens = data.tokens.clone()
    tokens[0] = toy.encode("Aa00")
    with pytest.raises(AssertionError, match="reverse-ordered"):
        toy.check_forward_dataset(toy.ToyDataset(tokens, data.letter, data.lower_pos, data.upper_pos))


def test_check_rejects_mismatched_pair():
    data = toy.make_forward_dataset(4)
    tokens = data.tokens.clone()
    tokens[0] = toy.encode("aB00")
    with pytest.raises(AssertionError, match="another letter"):
        toy.check_forward_dataset(toy.ToyDataset(tokens, data.letter, data.lower_pos, data.upper_pos))


def test_write_and_read_roundtrip(tmp_path):
    data = toy.make_forward_dataset(5)
    manifest = toy.write_dataset(data, tmp_path / "L5.parquet", tmp_path / "L5.json")
    assert manifest["sequences"] == manifest["expected_sequences"] == 260
    again = toy.read_dataset(tmp_path / "L5.parquet")
    assert torch.equal(again.tokens, data.tokens)
    # Deterministic bytes: a second write hashes the same.
    second = toy.write_dataset(data, tmp_path / "b.parquet", tmp_path / "b.json")
    assert second["sha256"] == manifest["sha256"]


@pytest.mark.parametrize("damage, message", [
    (lambda f: f.drop(columns="sequence"), r"missing column\(s\) \['sequence'\]"),
    (lambda f: f.assign(sequence=f["sequence"].where(f.index != 3, f["sequence"] + "0")),
     r"row 3 has a sequence of length 6, row 0 of 5"),
    (lambda f: f.assign(sequence=f["sequence"].str.replace("a", "#")), r"holds tokens \['#'\]"),
    (lambda f: f.iloc[:0], "no rows"),
    (lambda f: f.iloc[1:], "sequences, expected"),
])
def test_malformed_data_stops_with_the_file_and_what_was_expected(tmp_path, damage, message):
    import pandas as pd

    toy.write_dataset(toy.make_forward_dataset(5), tmp_path / "L5.parquet", tmp_path / "L5.json")
    bad = tmp_path / "bad.parquet"
    damage(pd.read_parquet(tmp_path / "L5.parquet")).to_parquet(bad)
    with pytest.raises(toy.ToyDataError, match=message) as error:
        toy.read_dataset(bad)
    assert str(bad) in str(error.value)


def test_a_file_that_is_not_parquet_names_itself(tmp_path):
    bad = tmp_path / "L5.parquet"
    bad.write_text("not parquet")
    with pytest.raises(toy.ToyDataError, match="not a readable Parquet file"):
        toy.read_dataset(bad)


def test_data_of_another_length_names_both(tmp_path):
    toy.write_dataset(toy.make_forward_dataset(5), tmp_path / "L6.parquet", tmp_path / "L6.json")
    with pytest.raises(toy.ToyDataError, match=r"L6.parquet: sequences of length 5; expected L = 6"):
        toy.read_dataset(tmp_path / "L6.parquet", length=6)
