"""The toy letter-pair task of paper §5 / App. D.1.

A sequence of length L holds one lowercase letter at position i and its uppercase
at j > i; every other position is the pad token '0'. The training set is *every*
such placement for every letter, 26·L(L−1)/2 sequences. The reverse order
(uppercase first) never appears; ``make_forward_dataset`` asserts it.
"""
from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from revcurse.core.cli import BadInput

GENERATOR_VERSION = "toy-1"
PAD = "0"
MASK = "[M]"
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
# Token ids: pad, a..z, A..Z, then the mask token (used by masked-diffusion models only).
VOCAB: tuple[str, ...] = (PAD, *LOWER, *UPPER, MASK)
TOKEN_ID = {token: idx for idx, token in enumerate(VOCAB)}
PAD_ID = TOKEN_ID[PAD]
MASK_ID = TOKEN_ID[MASK]
VOCAB_SIZE = len(VOCAB)
N_LETTERS = len(LOWER)


def lower_id(letter: int) -> int:
    """Token id of the lowercase letter with index ``letter`` (0 = 'a')."""
    return 1 + letter


def upper_id(letter: int) -> int:
    return 1 + N_LETTERS + letter


def expected_count(length: int) -> int:
    return N_LETTERS * length * (length - 1) // 2


@dataclass(frozen=True)
class ToyDataset:
    """All forward placements for one length: token ids plus where the pair sits."""

    tokens: torch.Tensor      # [N, L] int64
    letter: torch.Tensor      # [N] letter index 0..25
    lower_pos: torch.Tensor   # [N] i
    upper_pos: torch.Tensor   # [N] j > i

    @property
    def length(self) -> int:
        return self.tokens.shape[1]


def make_forward_dataset(length: int) -> ToyDataset:
    if length < 2:
        raise ValueError(f"toy length must be >= 2, got {length}")
    i, j = torch.triu_indices(length, length, offset=1)        # all i < j
    letters = torch.arange(N_LETTERS).repeat_interleave(len(i))
    i, j = i.repeat(N_LETTERS), j.repeat(N_LETTERS)
    tokens = torch.full((len(letters), length), PAD_ID, dtype=torch.long)
    rows = torch.arange(len(letters))
    tokens[rows, i] = lower_id(0) + letters
    tokens[rows, j] = upper_id(0) + letters
    data = ToyDataset(tokens, letters, i, j)
    check_forward_dataset(data)
    return data


def _letter_masks(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the lowercase and where the uppercase letters are."""
    is_lower = (tokens >= lower_id(0)) & (tokens < upper_id(0))
    is_upper = (tokens >= upper_id(0)) & (tokens < MASK_ID)
    return is_lower, is_upper


def reverse_pair_count(data: ToyDataset) -> int:
    """Sequences whose first uppercase comes before their first lowercase."""
    is_lower, is_upper = _letter_masks(data.tokens)
    return int((is_upper.int().argmax(1) < is_lower.int().argmax(1)).sum())


def check_forward_dataset(data: ToyDataset) -> None:
    """Counts, uniqueness and the absence of any reverse-ordered pair."""
    n, length = data.tokens.shape
    if n != expected_count(length):
        raise AssertionError(f"toy L={length}: {n} sequences, expected {expected_count(length)}")
    if len(torch.unique(data.tokens, dim=0)) != n:
        raise AssertionError(f"toy L={length}: duplicate sequences")
    is_lower, is_upper = _letter_masks(data.tokens)
    if not (is_lower.sum(1).eq(1).all() and is_upper.sum(1).eq(1).all()):
        raise AssertionError(f"toy L={length}: each sequence must hold one lowercase and one uppercase")
    first_lower = is_lower.int().argmax(1)
    first_upper = is_upper.int().argmax(1)
    if reverse_pair_count(data):
        raise AssertionError(f"toy L={length}: a reverse-ordered pair (uppercase first) leaked in")
    pair_ok = data.tokens.gather(1, first_upper[:, None]) - data.tokens.gather(1, first_lower[:, None])
    if not pair_ok.eq(N_LETTERS).all():
        raise AssertionError(f"toy L={length}: a lowercase is paired with another letter's uppercase")


def decode(tokens: torch.Tensor) -> str:
    return "".join(VOCAB[t] for t in tokens.tolist())


def encode(text: str) -> torch.Tensor:
    """Inverse of ``decode`` for sequences without the mask token."""
    return torch.tensor([TOKEN_ID[ch] for ch in text], dtype=torch.long)


def write_dataset(data: ToyDataset, path: Path, manifest_path: Path) -> dict:
    """Write the sequences as readable strings to Parquet, and a manifest with counts and hash."""
    frame = pd.DataFrame({
        "letter": [LOWER[k] for k in data.letter.tolist()],
        "lower_pos": data.lower_pos.numpy(),
        "upper_pos": data.upper_pos.numpy(),
        "sequence": [decode(row) for row in data.tokens],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    manifest = {
        "dataset": "toy",
        "length": data.length,
        "sequences": len(frame),
        "expected_sequences": expected_count(data.length),
        "reverse_pairs": reverse_pair_count(data),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "generator_version": GENERATOR_VERSION,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


COLUMNS = ("letter", "lower_pos", "upper_pos", "sequence")


class ToyDataError(BadInput):
    """A toy data file that is not what ``write_dataset`` writes: names the file, what was found and expected."""


def read_dataset(path: Path, length: int | None = None) -> ToyDataset:
    """Read a dataset written by ``write_dataset`` and re-run every check on it; ``length``: the L the
    sequences must have (the run's).

    Anything malformed stops here, before training, with one ToyDataError naming the file.
    """
    try:
        frame = pd.read_parquet(path)
    except Exception as error:          # pyarrow raises several types for a file that is not Parquet
        raise ToyDataError(f"{path}: not a readable Parquet file ({error}); expected the output of "
                           f"'python -m revcurse.toy data'") from error
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ToyDataError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}, expected {list(COLUMNS)}")
    if frame.empty:
        raise ToyDataError(f"{path}: no rows; expected {expected_count(2)} or more sequences")
    widths = frame["sequence"].str.len()
    if widths.nunique() != 1:
        row = int((widths != widths.iloc[0]).to_numpy().argmax())
        raise ToyDataError(f"{path}: row {row} has a sequence of length {widths.iloc[row]}, row 0 of "
                           f"{widths.iloc[0]}; expected every sequence to have the same length L")
    if length is not None and widths.iloc[0] != length:
        raise ToyDataError(f"{path}: sequences of length {widths.iloc[0]}; expected L = {length}, the run's length")
    unknown = sorted(set("".join(frame["sequence"])) - set(TOKEN_ID))
    if unknown:
        raise ToyDataError(f"{path}: column 'sequence' holds tokens {unknown}; expected only {''.join(VOCAB[:-1])}")
    bad_letters = sorted(set(frame["letter"]) - set(LOWER))
    if bad_letters:
        raise ToyDataError(f"{path}: column 'letter' holds {bad_letters}; expected lowercase letters a-z")
    data = ToyDataset(
        tokens=torch.stack([encode(s) for s in frame["sequence"]]),
        letter=torch.tensor([LOWER.index(c) for c in frame["letter"]]),
        lower_pos=torch.as_tensor(frame["lower_pos"].to_numpy(copy=True), dtype=torch.long),
        upper_pos=torch.as_tensor(frame["upper_pos"].to_numpy(copy=True), dtype=torch.long),
    )
    try:
        check_forward_dataset(data)
    except AssertionError as error:
        raise ToyDataError(f"{path}: {error}") from error
    return data
