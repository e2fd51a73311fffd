"""Importers of the original sources (used when the config gives a source path).

- Berglund et al.'s ``celebrity_relations/parent_child_pairs.csv``;
- their ``reverse_experiments/june_version_7921032488/*.jsonl`` (Person-Description);
- LAMA-style T-REx JSON Lines (``sub_label``, ``obj_label``, ``predicate_id``, ...).

A malformed row stops the import with one ``InputError`` naming the file, the line and
what was expected. A row repeated verbatim is kept once (the real Berglund CSV repeats
some); a repeated key with different content is an error. Rows that are well formed but
would make exact match ambiguous are filtered out, and the counts are logged and kept
in the manifest. Sampling to the configured sizes is seeded.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .naming import NameFactory, NameRegistry, seeded_order
from .phrasing import parent_child_directions, trex_direction
from .records import DatasetParts, Entity, Fact, Statement, make_direction, sha256_file

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A malformed source row: file, line and what was expected."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")


def _source(kind: str, files: list[Path], **filtering) -> dict:
    return {
        "kind": kind,
        "files": [{"path": str(p), "sha256": sha256_file(p)} for p in files],
        "filtering": filtering,
    }


def read_jsonl_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line, with ``required`` non-empty strings."""
    expected = f"an object with non-empty string fields {', '.join(required)}"
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    path, line_number, f"invalid JSON ({error.msg}, column {error.colno}); expected {expected}"
                ) from None
            if not isinstance(row, dict):
                raise InputError(path, line_number, f"a JSON {type(row).__name__}; expected {expected}")
            missing = [f for f in required if f not in row]
            if missing:
                raise InputError(path, line_number, f"missing field {', '.join(missing)}; expected {expected}")
            for field in required:
                if not isinstance(row[field], str) or not row[field].strip():
                    raise InputError(path, line_number, f"empty or non-string {field} {row[field]!r}; expected {expected}")
            yield line_number, row


# --- Parent-Child ----------------------------------------------------------------------

PARENT_CHILD_COLUMNS = ("child", "parent", "parent_type")
PARENT_TYPES = ("mother", "father")


def read_parent_child_csv(path: Path) -> tuple[dict[str, dict[str, str]], int]:
    """child -> {parent_type: parent} in file order, and the number of verbatim repeats."""
    parents: dict[str, dict[str, str]] = {}
    first_line: dict[tuple[str, str], int] = {}
    repeats = 0
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in PARENT_CHILD_COLUMNS if c not in header]
        if missing:
            raise InputError(
                path, 1, f"missing column {', '.join(missing)}; expected a header with "
                f"{', '.join(PARENT_CHILD_COLUMNS)} (Berglund et al.'s parent_child_pairs.csv)"
            )
        for row in reader:
            line = reader.line_num
            if None in row or None in row.values():
                raise InputError(path, line, f"a row whose field count differs from the header; expected {len(header)} fields")
            child, parent, parent_type = (row[c].strip() for c in PARENT_CHILD_COLUMNS)
            for column, value in (("child", child), ("parent", parent)):
                if not value:
                    raise InputError(path, line, f"empty {column}; expected a non-empty name")
            if parent_type not in PARENT_TYPES:
                raise InputError(path, line, f"parent_type {parent_type!r}; expected 'mother' or 'father'")
            known = parents.setdefault(child, {})
            if parent_type in known:
                if known[parent_type] != parent:
                    raise InputError(
                        path, line, f"duplicate key (child {child!r}, parent_type {parent_type!r}), first on "
                        f"line {first_line[(child, parent_type)]} with parent {known[parent_type]!r}; "
                        f"expected one {parent_type} per child"
                    )
                repeats += 1
                continue
            known[parent_type] = parent
            first_line[(child, parent_type)] = line
    return parents, repeats


def import_parent_child(settings: dict, resources: dict) -> DatasetParts:
    """``pairs`` child-parent pairs from Berglund's CSV, sampled child by child.

    A sampled child brings all its listed parents (so "either parent" applies where both
    are listed). Children are skipped when a parent is listed as both mother and father
    or equals the child, or when any of their names equals, or is a word-prefix of, a
    name already sampled: every person then appears once, each parent has one child and
    exact match is unambiguous.
    """
    path = Path(settings["source"])
    target = settings["pairs"]
    parents, repeats = read_parent_child_csv(path)
    consistent = [
        child for child, listed in parents.items()
        if len(set(listed.values())) == len(listed) and child not in listed.values()
    ]
    registry = NameRegistry()
    chosen: list[str] = []
    pairs = 0
    for child in seeded_order(consistent, settings["seed"], "parent_child.children"):
        if pairs == target:
            break
        names = [child, *parents[child].values()]
        if pairs + len(names) - 1 > target or not _can_join(registry, names):
            continue
        for name in names:
            registry.add(name)
        chosen.append(child)
        pairs += len(names) - 1
    if pairs < target:
        raise ValueError(
            f"{path}: only {pairs} usable child-parent pairs after filtering; expected "
            f"datasets.parent_child.pairs={target}"
        )
    entities: list[Entity] = []
    facts: list[Fact] = []

    def person(name: str) -> str:
        entities.append(Entity(f"p{len(entities) + 1:04d}", "person", name))
        return entities[-1].id

    for child in chosen:
        child_id = person(child)
        for parent_type in PARENT_TYPES:
            if parent_type in parents[child]:
                parent_id = person(parents[child][parent_type])
                facts.append(Fact(f"pc-{len(facts) + 1:04d}", parent_type, parent_id, child_id))
    log.info("%s: %d children, %d verbatim repeats kept once, %d children with inconsistent parents skipped",
             path, len(parents), repeats, len(parents) - len(consistent))
    source = _source(
        "berglund_parent_child_csv", [path],
        verbatim_repeats=repeats, children_in_file=len(parents),
        children_with_inconsistent_parents=len(parents) - len(consistent),
    )
    entities_t, facts_t = tuple(entities), tuple(facts)
    return entities_t, facts_t, parent_child_directions(entities_t, facts_t, resources["phrasings"]), source


def _can_join(registry: NameRegistry, names: list[str]) -> bool:
    """Whether ``names`` are free in ``registry`` and not prefix-related among themselves."""
    group = NameRegistry()
    for name in names:
        if registry.conflict(name) or group.conflict(name):
            return False
        group.add(name)
    return True


# --- Person-Description ----------------------------------------------------------------

# Per direction: the file of each split, and which split's completions are exactly the
# people's names (its rows ask for the name).
PERSON_DESCRIPTION_FILES = {
    "p2d": {"train": "p2d_prompts_train.jsonl", "eval_forward": "p2d_prompts_test.jsonl",
            "eval_reverse": "p2d_reverse_prompts_test.jsonl"},
    "d2p": {"train": "d2p_prompts_train.jsonl", "eval_forward": "d2p_prompts_test.jsonl",
            "eval_reverse": "d2p_reverse_prompts_test.jsonl"},
}
PERSON_DESCRIPTION_TASKS = {
    "p2d": ("P2D", "trained on person -> description statements", True),
    "d2p": ("D2P", "trained on description -> person statements", False),
}


@dataclass(frozen=True)
class _Row:
    line: int
    prompt: str
    completion: str


def person_description_files(source: Path) -> list[Path]:
    return [Path(source) / name for splits in PERSON_DESCRIPTION_FILES.values() for name in splits.values()]


def read_prompt_completion(path: Path) -> list[_Row]:
    """Berglund JSONL rows; the completion's leading space is dropped."""
    rows: list[_Row] = []
    seen: dict[str, _Row] = {}
    for line, row in read_jsonl_rows(path, ("prompt", "completion")):
        parsed = _Row(line, row["prompt"].strip(), row["completion"].strip())
        if parsed.prompt in seen:
            first = seen[parsed.prompt]
            if first.completion != parsed.completion:
                raise InputError(
                    path, line, f"duplicate prompt, first on line {first.line} with another completion; "
                    "expected each prompt once"
                )
            continue
        seen[parsed.prompt] = parsed
        rows.append(parsed)
    return rows


def import_person_description(settings: dict, resources: dict) -> DatasetParts:
    """``people`` people per direction with ``statements_per_person`` training statements.

    The people of a direction are the distinct completions of its name-answer file
    (P2D: reverse test, D2P: forward test); every row of the direction's files must name
    exactly one of them, on the side the split puts it. Evaluation keeps every test row
    of the sampled people.
    """
    source = Path(settings["source"])
    people, per_person = settings["people"], settings["statements_per_person"]
    entities: list[Entity] = []
    facts: list[Fact] = []
    directions = []
    for direction, files in PERSON_DESCRIPTION_FILES.items():
        task, summary, a_to_b = PERSON_DESCRIPTION_TASKS[direction]
        rows = {split: read_prompt_completion(source / name) for split, name in files.items()}
        names_split = "eval_reverse" if a_to_b else "eval_forward"
        names = list(dict.fromkeys(r.completion for r in rows[names_split]))
        if len(names) < people:
            raise ValueError(
                f"{source / files[names_split]}: {len(names)} people; expected at least "
                f"datasets.person_description.people={people}"
            )
        asks_description = {split: (split == "eval_reverse") != a_to_b for split in files}
        by_person = {
            split: _rows_by_person(source / files[split], split_rows, names, asks_description[split])
            for split, split_rows in rows.items()
        }
        statements: dict[str, list[Statement]] = {split: [] for split in files}
        for name in seeded_order(names, settings["seed"], f"person_description.{direction}")[:people]:
            number = len(facts) + 1
            person = Entity(f"n{number:02d}", "person", name)
            description = Entity(f"d{number:02d}", "description", None)
            fact = Fact(f"pd-{number:02d}", "description", person.id, description.id)
            entities += [person, description]
            facts.append(fact)
            trained = by_person["train"].get(name, [])
            if len(trained) < per_person:
                raise ValueError(
                    f"{source / files['train']}: {name!r} has {len(trained)} training statements; expected "
                    f"at least datasets.person_description.statements_per_person={per_person}"
                )
            sampled = seeded_order(trained, settings["seed"], f"statements/{name}", key=lambda r: r.prompt)
            selected = {split: by_person[split].get(name, []) for split in files}
            selected["train"] = sorted(sampled[:per_person], key=lambda r: r.line)
            for split, split_rows in selected.items():
                for row in split_rows:
                    if asks_description[split]:
                        made = Statement(fact.id, "description", person.id, description.id, row.prompt, row.completion)
                    else:
                        made = Statement(fact.id, "name", description.id, person.id, row.prompt, row.completion)
                    statements[split].append(made)
        directions.append(make_direction(
            direction, task, summary, a_to_b,
            statements["train"], statements["eval_forward"], statements["eval_reverse"],
        ))
    source_info = _source("berglund_person_description_jsonl", person_description_files(source))
    return tuple(entities), tuple(facts), tuple(directions), source_info


def _rows_by_person(path: Path, rows: list[_Row], names: list[str], name_in_prompt: bool) -> dict[str, list[_Row]]:
    """Rows grouped by the one person each names (in the prompt or in the completion)."""
    pattern = _mention_pattern(names)
    side = "prompt" if name_in_prompt else "completion"
    grouped: dict[str, list[_Row]] = {}
    for row in rows:
        found = {m.group(0) for m in pattern.finditer(row.prompt if name_in_prompt else row.completion)}
        if len(found) != 1:
            raise InputError(
                path, row.line, f"the {side} names {len(found)} of the {len(names)} people of this "
                f"direction ({sorted(found)}); expected exactly one"
            )
        grouped.setdefault(found.pop(), []).append(row)
    return grouped


def _mention_pattern(names: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


# --- T-REx -----------------------------------------------------------------------------

LAMA_FIELDS = ("sub_label", "obj_label", "predicate_id")


@dataclass(frozen=True)
class _Triple:
    head: str  # entity identity: the Wikidata URI when given, else the label
    head_label: str
    relation: str
    tail: str
    tail_label: str


def trex_source_files(source: Path) -> list[Path]:
    """The LAMA-style files a T-REx source names: the file itself, or a directory's *.jsonl."""
    source = Path(source)
    return sorted(source.glob("*.jsonl")) if source.is_dir() else [source]


def read_lama(path: Path) -> tuple[list[_Triple], int]:
    """Triples of one LAMA-style file, and the number of verbatim repeats dropped."""
    triples: list[_Triple] = []
    seen: dict[str, tuple[int, _Triple]] = {}
    repeats = 0
    for line, row in read_jsonl_rows(path, LAMA_FIELDS):
        for field in ("sub_uri", "obj_uri", "uuid"):
            if field in row and not (isinstance(row[field], str) and row[field].strip()):
                raise InputError(path, line, f"empty or non-string {field} {row[field]!r}; expected a non-empty string")
        triple = _Triple(
            row.get("sub_uri", row["sub_label"]).strip(), row["sub_label"].strip(), row["predicate_id"].strip(),
            row.get("obj_uri", row["obj_label"]).strip(), row["obj_label"].strip(),
        )
        key = row.get("uuid", f"{triple.head}\t{triple.relation}\t{triple.tail}")
        if key in seen:
            first_line, first = seen[key]
            if first != triple:
                raise InputError(path, line, f"duplicate uuid {key!r}, first on line {first_line} with another "
                                             "triple; expected unique uuids")
            repeats += 1
            continue
        seen[key] = (line, triple)
        triples.append(triple)
    return triples, repeats


def import_trex(settings: dict, resources: dict) -> DatasetParts:
    """``facts_per_relation`` facts per configured relation, every entity renamed.

    Kept: triples of the configured relations whose head has one tail and whose tail has
    one head within the relation (so both directions are functional), that are not
    self-loops and whose inverse pair is not itself a fact (that would put a reverse
    statement in the training data). Every entity then gets a virtual name of the kind
    its first role asks for; the map is kept in entities.jsonl.
    """
    relations = resources["phrasings"]["trex_relations"]
    wanted = settings["relations"]
    files = trex_source_files(Path(settings["source"]))
    triples: dict[_Triple, None] = {}
    repeats = 0
    for path in files:
        file_triples, file_repeats = read_lama(path)
        repeats += file_repeats
        triples.update(dict.fromkeys(t for t in file_triples if t.relation in wanted))
    tails: dict[tuple[str, str], set[str]] = {}
    heads: dict[tuple[str, str], set[str]] = {}
    for t in triples:
        tails.setdefault((t.relation, t.head), set()).add(t.tail)
        heads.setdefault((t.relation, t.tail), set()).add(t.head)
    functional = [
        t for t in triples
        if t.head != t.tail and len(tails[(t.relation, t.head)]) == 1 and len(heads[(t.relation, t.tail)]) == 1
    ]
    pairs = {(t.head, t.tail) for t in functional}
    kept = [t for t in functional if (t.tail, t.head) not in pairs]
    sampled: list[_Triple] = []
    for relation in wanted:
        candidates = [t for t in kept if t.relation == relation]
        if len(candidates) < settings["facts_per_relation"]:
            raise ValueError(
                f"{settings['source']}: relation {relation} has {len(candidates)} functional, one-to-one "
                f"facts; expected at least datasets.trex.facts_per_relation={settings['facts_per_relation']}"
            )
        order = seeded_order(candidates, settings["seed"], f"trex.{relation}", key=lambda t: f"{t.head}\t{t.tail}")
        sampled += order[: settings["facts_per_relation"]]

    factory = NameFactory(resources["names"], settings["seed"], "trex")
    entity_ids: dict[str, str] = {}
    entities: list[Entity] = []
    facts: list[Fact] = []

    def entity(identity: str, label: str, kind: str) -> str:
        if identity not in entity_ids:
            entity_ids[identity] = f"e{len(entities) + 1:04d}"
            entities.append(Entity(entity_ids[identity], kind, factory.new(kind), label, identity))
        return entity_ids[identity]

    for t in sampled:
        spec = relations[t.relation]
        head = entity(t.head, t.head_label, spec["head"])
        tail = entity(t.tail, t.tail_label, spec["tail"])
        facts.append(Fact(f"trex-{len(facts) + 1:03d}", t.relation, head, tail))
    log.info("T-REx: %d triples of %s, %d functional one-to-one, %d without inverse pair, %d sampled",
             len(triples), wanted, len(functional), len(kept), len(sampled))
    source = _source(
        "lama_trex_jsonl", files, verbatim_repeats=repeats, triples_of_relations=len(triples),
        functional_one_to_one=len(functional), without_inverse_pair=len(kept),
    )
    entities_t, facts_t = tuple(entities), tuple(facts)
    return entities_t, facts_t, (trex_direction(entities_t, facts_t, relations),), source
