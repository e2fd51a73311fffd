"""Seeded choices and fictitious names, identical on every machine.

Randomness comes only from SHA-256 of (seed, purpose, key) via ``derive_seed``: no
``random`` module stream, no ``hash()``, no dependence on set order. Reordering or
adding items elsewhere never changes the rank of an item.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import yaml

from revcurse.core.config import REPO_ROOT, derive_seed
from revcurse.data.relational.records import name_tokens

RESOURCE_DIR = REPO_ROOT / "resources" / "relational"
RESOURCE_FILES = ("names.yaml", "phrasings.yaml", "achievements.yaml")

T = TypeVar("T")


def load_resources(resource_dir: Path = RESOURCE_DIR) -> dict:
    """The word lists and phrasings of resources/relational, one dict per file stem."""
    return {
        Path(name).stem: yaml.safe_load((Path(resource_dir) / name).read_text(encoding="utf-8"))
        for name in RESOURCE_FILES
    }


def seeded_order(items: Iterable[T], seed: int, purpose: str, key: Callable[[T], str] = str) -> list[T]:
    """``items`` in a pseudo-random order fixed by (seed, purpose, key(item))."""
    return sorted(items, key=lambda item: (derive_seed(seed, purpose, key(item)), key(item)))


def seeded_choice(options: list[T], seed: int, *purpose: object) -> T:
    return options[derive_seed(seed, *purpose) % len(options)]


class NameRegistry:
    """Names taken so far; refuses duplicates and word-prefix pairs.

    'Ann Lee' and 'Ann Lee Marsh' would make exact match ambiguous when generation
    stops at a word boundary, so neither may join a registry holding the other.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[str, ...], str] = {}
        self._prefixes: dict[tuple[str, ...], str] = {}

    def conflict(self, name: str) -> str | None:
        """A taken name equal to ``name`` or word-prefix related to it, else None."""
        tokens = name_tokens(name)
        if tokens in self._names:
            return self._names[tokens]
        if tokens in self._prefixes:
            return self._prefixes[tokens]
        for end in range(1, len(tokens)):
            if tokens[:end] in self._names:
                return self._names[tokens[:end]]
        return None

    def add(self, name: str) -> None:
        tokens = name_tokens(name)
        self._names[tokens] = name
        for end in range(1, len(tokens)):
            self._prefixes.setdefault(tokens[:end], name)


class NameFactory:
    """Unique, prefix-free fictitious names of the kinds listed in names.yaml."""

    def __init__(self, names: dict, seed: int, purpose: str) -> None:
        self._names = names
        self._seed = seed
        self._purpose = purpose
        self._draws = 0
        self.registry = NameRegistry()

    def new(self, kind: str, **fixed: str) -> str:
        """A free name of ``kind``; ``fixed`` pins slots, e.g. surname for a family."""
        patterns = self._names["patterns"][kind]
        for _ in range(10_000):
            self._draws += 1
            draw = (self._purpose, kind, self._draws)
            pattern = seeded_choice(patterns, self._seed, *draw, "pattern")
            slots = {
                slot: fixed[slot] if slot in fixed else self.part(slot, *draw)
                for slot in re.findall(r"{(\w+)}", pattern)
            }
            name = pattern.format(**slots)
            if self.registry.conflict(name) is None:
                self.registry.add(name)
                return name
        raise RuntimeError(f"names.yaml has too few parts to draw another unique {kind} name")

    def part(self, slot: str, *purpose: object) -> str:
        """One value of a slot, e.g. a surname; compounds join one value from each list."""
        lists = self._names["compounds"].get(slot, [slot])
        return "".join(
            seeded_choice(self._names[name], self._seed, *purpose, slot, name) for name in lists
        )
