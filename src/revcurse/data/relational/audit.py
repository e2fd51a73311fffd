"""Leakage and ambiguity audit of the built relational datasets (a pipeline gate).

Checks, per dataset and direction (docs/datasets.md lists them with their reasons):

1. integrity: every file matches the SHA-256 in the manifest;
2. entities: named entities have distinct names, none a word-prefix of another;
3. orientation: each row's (source, target) is its fact in the direction's orientation
   (reversed for reverse queries), the source's name is in the prompt and not in the
   completion, the target's name is in the completion and not in the prompt;
4. leakage, by entity pair: no training row goes from a fact's forward target to its
   forward source, neither by its entity ids nor by the names its text mentions;
5. leakage, by text: no training prompt is a reverse query's prompt, and no training
   text contains a reverse query followed by one of its answers;
6. answers: every query has a non-empty set of non-blank accepted answers that contains
   its completion; equal prompts have equal answer sets; a forward query accepts every
   completion its prompt is trained on, and every completion its fact is trained with
   (whatever the training prompt), so exact match can credit what was learnt.

Text is compared after ``normalize_answer`` (case-folded, whitespace collapsed).
"""
from __future__ import annotations

import re
from pathlib import Path

from revcurse.data.relational.naming import NameRegistry
from revcurse.data.relational.records import (DatasetIntegrityError, Direction, RelationalDataset, Statement,
                                              load_dataset, normalize_answer)


class AuditFailure(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:50]
        more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(
            f"relational dataset audit failed with {len(problems)} problem(s):\n" + "\n".join(shown) + more
        )


def audit_manifests(manifests: list[Path]) -> dict:
    """Audit every dataset; return the report, or raise AuditFailure listing all problems."""
    problems: list[str] = []
    report: dict = {"datasets": {}}
    for manifest in manifests:
        try:
            dataset, _ = load_dataset(manifest)
        except DatasetIntegrityError as error:
            problems.append(str(error))
            continue
        found = audit_dataset(dataset)
        problems += found
        report["datasets"][dataset.name] = {
            "manifest": str(manifest),
            "entities": len(dataset.entities),
            "facts": len(dataset.facts),
            "directions": {
                d.name: {split: len(d.split(split)) for split in ("train", "eval_forward", "eval_reverse")}
                for d in dataset.directions
            },
            "problems": len(found),
        }
    if problems:
        raise AuditFailure(problems)
    report["checks"] = [
        "integrity", "entity names distinct and prefix-free", "orientation",
        "no reverse statement by entity pair", "no reverse statement by text", "well-defined answers",
    ]
    return report


def audit_dataset(dataset: RelationalDataset) -> list[str]:
    """Every problem found in one dataset, as 'dataset/file line N: what is wrong'."""
    problems = _entity_problems(dataset)
    mentions = _Mentions(dataset)
    for direction in dataset.directions:
        problems += _orientation_problems(dataset, direction, mentions)
        problems += _leak_problems(dataset, direction, mentions)
        problems += _answer_problems(dataset, direction)
    return problems


def _where(dataset: RelationalDataset, direction: Direction, split: str, index: int | None = None) -> str:
    line = "" if index is None else f" line {index + 1}"
    return f"{dataset.name}/{direction.name}/{split}.jsonl{line}"


def _entity_problems(dataset: RelationalDataset) -> list[str]:
    problems = []
    registry = NameRegistry()
    for entity in dataset.entities:
        if entity.name is None:
            continue
        if not entity.name.strip():
            problems.append(f"{dataset.name}/entities.jsonl: entity {entity.id} has an empty name")
            continue
        clash = registry.conflict(entity.name)
        if clash is not None:
            problems.append(
                f"{dataset.name}/entities.jsonl: entity name {entity.name!r} ({entity.id}) equals or is a "
                f"word-prefix of {clash!r} (or vice versa); exact match would be ambiguous"
            )
        registry.add(entity.name)
    entity_ids = {e.id for e in dataset.entities}
    for fact in dataset.facts:
        if fact.a not in entity_ids or fact.b not in entity_ids:
            problems.append(f"{dataset.name}/facts.jsonl: fact {fact.id} refers to an unknown entity")
    return problems


class _Mentions:
    """Which named entities of a dataset a text mentions (whole words, case-folded)."""

    def __init__(self, dataset: RelationalDataset) -> None:
        self.by_name = {e.name.casefold(): e.id for e in dataset.entities if e.name}
        self.named = {e.id: e.name for e in dataset.entities if e.name}
        alternatives = "|".join(re.escape(n) for n in sorted(self.by_name, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if alternatives else None

    def __call__(self, text: str) -> set[str]:
        if self._pattern is None:
            return set()
        return {self.by_name[m.group(0)] for m in self._pattern.finditer(text.casefold())}


def _orientation_problems(dataset: RelationalDataset, direction: Direction, mentions: _Mentions) -> list[str]:
    problems = []
    facts = {f.id: f for f in dataset.facts}
    for split in ("train", "eval_forward", "eval_reverse"):
        forward = direction.a_to_b != (split == "eval_reverse")
        for i, row in enumerate(direction.split(split)):
            where = _where(dataset, direction, split, i)
            fact = facts.get(row.fact_id)
            if fact is None:
                problems.append(f"{where}: unknown fact {row.fact_id!r}")
                continue
            expected = (fact.a, fact.b) if forward else (fact.b, fact.a)
            if (row.source, row.target) != expected:
                problems.append(
                    f"{where}: goes {row.source} -> {row.target}, but fact {fact.id} in this file's "
                    f"orientation goes {expected[0]} -> {expected[1]}"
                )
            in_prompt, in_completion = mentions(row.prompt), mentions(row.completion)
            for role, entity, home, other in (
                ("source", expected[0], in_prompt, in_completion),
                ("target", expected[1], in_completion, in_prompt),
            ):
                if entity not in mentions.named:
                    continue
                name = mentions.named[entity]
                if entity not in home:
                    side = "prompt" if role == "source" else "completion"
                    problems.append(f"{where}: the {side} does not name the {role} {name!r} of fact {fact.id}")
                if entity in other:
                    side = "completion" if role == "source" else "prompt"
                    problems.append(f"{where}: the {side} names the {role} {name!r} of fact {fact.id}")
    return problems


def _leak_problems(dataset: RelationalDataset, direction: Direction, mentions: _Mentions) -> list[str]:
    problems = []
    # (forward target, forward source) of every fact: a training row going this way is a
    # reverse statement, whichever fact it claims to be about.
    reversed_pairs = {
        ((f.b, f.a) if direction.a_to_b else (f.a, f.b)): f.id for f in dataset.facts
    }
    for i, row in enumerate(direction.train):
        where = _where(dataset, direction, "train", i)
        if (row.source, row.target) in reversed_pairs:
            problems.append(
                f"{where}: reverse statement by entity pair: {row.source} -> {row.target} reverses "
                f"fact {reversed_pairs[(row.source, row.target)]}"
            )
        for x in mentions(row.prompt):
            for y in mentions(row.completion):
                if (x, y) in reversed_pairs:
                    problems.append(
                        f"{where}: reverse statement by entity pair: the prompt names "
                        f"{mentions.named[x]!r} and the completion {mentions.named[y]!r}, the reverse of "
                        f"fact {reversed_pairs[(x, y)]}"
                    )
    trained_prompts = {normalize_answer(row.prompt) for row in direction.train}
    trained_text = "\n".join(_statement_text(row) for row in direction.train)
    for i, query in enumerate(direction.eval_reverse):
        where = _where(dataset, direction, "eval_reverse", i)
        if normalize_answer(query.prompt) in trained_prompts:
            problems.append(f"{where}: reverse statement by text: its prompt is a training prompt")
        for answer in query.accepted_answers:
            if _statement_text(Statement("", "", "", "", query.prompt, answer)) in trained_text:
                problems.append(
                    f"{where}: reverse statement by text: the training data contains this query "
                    f"answered with {answer!r}"
                )
    return problems


def _statement_text(row: Statement) -> str:
    return normalize_answer(f"{row.prompt} {row.completion}")


def _answer_problems(dataset: RelationalDataset, direction: Direction) -> list[str]:
    problems = []
    for split in ("eval_forward", "eval_reverse"):
        answer_sets: dict[str, tuple[int, frozenset[str]]] = {}
        for i, query in enumerate(direction.split(split)):
            where = _where(dataset, direction, split, i)
            accepted = frozenset(normalize_answer(a) for a in query.accepted_answers)
            if not query.accepted_answers or "" in accepted:
                problems.append(f"{where}: empty accepted-answer set or a blank accepted answer")
            if normalize_answer(query.completion) not in accepted:
                problems.append(f"{where}: completion {query.completion!r} is not among its accepted answers")
            prompt = normalize_answer(query.prompt)
            first = answer_sets.setdefault(prompt, (i, accepted))
            if first[1] != accepted:
                problems.append(
                    f"{where}: ambiguous answer: same prompt as line {first[0] + 1} but other accepted "
                    f"answers ({sorted(accepted)} vs {sorted(first[1])})"
                )
        if split == "eval_forward":
            trained: dict[str, set[str]] = {}
            for row in direction.train:
                trained.setdefault(row.fact_id, set()).add(normalize_answer(row.completion))
            for i, query in enumerate(direction.eval_forward):
                accepted = {normalize_answer(a) for a in query.accepted_answers}
                for missing in sorted(trained.get(query.fact_id, set()) - accepted):
                    problems.append(
                        f"{_where(dataset, direction, split, i)}: unfair answer set: the training data answers "
                        f"fact {query.fact_id} with {missing!r}, which this forward query does not accept"
                    )
            for i, row in enumerate(direction.train):
                prompt = normalize_answer(row.prompt)
                if prompt in answer_sets and normalize_answer(row.completion) not in answer_sets[prompt][1]:
                    problems.append(
                        f"{_where(dataset, direction, 'train', i)}: ambiguous answer: trained completion "
                        f"{row.completion!r} is not accepted by the forward query with the same prompt "
                        f"(eval_forward line {answer_sets[prompt][0] + 1})"
                    )
    return problems
