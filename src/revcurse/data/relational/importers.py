"""Importers of the original sources (used when the config gives a source path).

- Berglund et al.'s ``celebrity_relations/parent_child_pairs.csv``;
- their ``reverse_experiments/june_version_7921032488/*.jsonl`` (Person-Description);
- LAMA-style T-REx JSON Lines (``sub_label``, ``obj_label``, ``predicate_id``, ...).

A malformed file or row stops the import with one ``InputError`` naming the file, the
line and what was expected (``reading.py``). A row repeated verbatim is kept once (the
real Berglund CSV repeats some); a repeated key with different content is an error.
Rows that are well formed but would make exact match ambiguous are filtered out, and
answers are rewritten into the form exact match compares (docs/datasets.md, "Answers of
imported data"); every filter and rewrite is counted, logged and kept in the manifest
(``source.filtering``, ``source.normalised``). Sampling to the configured sizes is seeded.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from revcurse.data.relational.naming import NameFactory, NameRegistry, seeded_order
from revcurse.data.relational.phrasing import parent_child_directions, trex_direction
from revcurse.data.relational.reading import (InputError, read_csv_rows, read_jsonl_objects, read_jsonl_rows,
                                              require_strings)
from revcurse.data.relational.records import (DatasetParts, Entity, Fact, Statement, flat_counts, make_direction,
                                              name_tokens, sha256_file)

__all__ = ["InputError", "import_parent_child", "import_person_description", "import_trex"]

log = logging.getLogger(__name__)


def _source(kind: str, root: Path, files: list[Path], filtering: dict, normalised: dict | None = None) -> dict:
    """The manifest's ``source`` block: files by name relative to ``root`` (never by
    absolute path, so the data hash depends on content only) and every count."""
    root = Path(root)

    def name(path: Path) -> str:
        return path.relative_to(root).as_posix() if root.is_dir() else path.name

    source = {
        "kind": kind,
        "files": [{"name": name(p), "sha256": sha256_file(p)} for p in files],
        "filtering": filtering,
    }
    if normalised is not None:
        source["normalised"] = normalised
    return source


def _log_counts(what: str, counts: dict) -> None:
    for key, value in flat_counts(counts).items():
        log.info("%s: %s = %s", what, key, value)


# --- Parent-Child ----------------------------------------------------------------------

PARENT_CHILD_COLUMNS = ("child", "parent", "parent_type")
PARENT_CHILD_EXPECTED = "Berglund et al.'s parent_child_pairs.csv"
PARENT_TYPES = ("mother", "father")


def read_parent_child_csv(path: Path) -> tuple[dict[str, dict[str, str]], int, int]:
    """child -> {parent_type: parent} in file order, the number of data rows and of
    verbatim repeats among them."""
    parents: dict[str, dict[str, str]] = {}
    first_line: dict[tuple[str, str], int] = {}
    rows = repeats = 0
    for line, row in read_csv_rows(path, PARENT_CHILD_COLUMNS, PARENT_CHILD_EXPECTED):
        rows += 1
        child, parent, parent_type = (row[c] for c in PARENT_CHILD_COLUMNS)
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
    return parents, rows, repeats


def import_parent_child(settings: dict, resources: dict) -> DatasetParts:
    """``pairs`` child-parent pairs from Berglund's CSV, sampled child by child.

    A sampled child brings all its listed parents, so "either parent" applies where both
    are listed and the C2P answer set is every parent the source lists. Skipped: a child
    listed with one person as both mother and father, or as their own parent; a child
    with a parent the source lists with other children too (the P2C question "<parent>'s
    child is" would have several true answers); a child any of whose names equals, or
    is a word-prefix of, a name already sampled. Every person then appears once and
    each parent has exactly the one child the source gives.
    """
    path = Path(settings["source"])
    target = settings["pairs"]
    parents, rows, repeats = read_parent_child_csv(path)
    children_of: dict[tuple[str, ...], set[str]] = {}
    for child, listed in parents.items():
        for parent in listed.values():
            children_of.setdefault(name_tokens(parent), set()).add(child)
    skipped = dict.fromkeys((
        "same_person_as_mother_and_father", "parent_is_the_child", "parent_has_other_children",
        "name_equals_or_extends_a_sampled_name", "would_exceed_pairs", "not_needed_once_pairs_reached",
    ), 0)
    candidates = []
    for child, listed in parents.items():
        if len(set(listed.values())) < len(listed):
            skipped["same_person_as_mother_and_father"] += 1
        elif child in listed.values():
            skipped["parent_is_the_child"] += 1
        elif any(len(children_of[name_tokens(p)]) > 1 for p in listed.values()):
            skipped["parent_has_other_children"] += 1
        else:
            candidates.append(child)
    registry = NameRegistry()
    chosen: list[str] = []
    pairs = 0
    for child in seeded_order(candidates, settings["seed"], "parent_child.children"):
        names = [child, *parents[child].values()]
        if pairs == target:
            skipped["not_needed_once_pairs_reached"] += 1
        elif pairs + len(names) - 1 > target:
            skipped["would_exceed_pairs"] += 1  # keeps the count at exactly `pairs`
        elif not _can_join(registry, names):
            skipped["name_equals_or_extends_a_sampled_name"] += 1
        else:
            for name in names:
                registry.add(name)
            chosen.append(child)
            pairs += len(names) - 1
    filtering = {
        "rows_in_file": rows, "verbatim_repeats_kept_once": repeats, "children_in_file": len(parents),
        **{f"children_skipped.{reason}": n for reason, n in skipped.items()},
        "children_sampled": len(chosen), "pairs_sampled": pairs,
    }
    _log_counts(str(path), filtering)
    if pairs < target:
        raise ValueError(
            f"{path}: only {pairs} usable child-parent pairs after filtering "
            f"({', '.join(f'{k}={v}' for k, v in filtering.items())}); expected datasets.parent_child.pairs={target}"
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
    source = _source("berglund_parent_child_csv", path, [path], filtering)
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
# The trailing run of sentence punctuation and quote marks of a description.
_DESCRIPTION_END = re.compile(r"[\s.?!'\"]+$")


@dataclass(frozen=True)
class _Row:
    line: int
    prompt: str
    completion: str


def person_description_files(source: Path) -> list[Path]:
    return [Path(source) / name for splits in PERSON_DESCRIPTION_FILES.values() for name in splits.values()]


def read_prompt_completion(path: Path) -> tuple[list[_Row], int]:
    """Berglund JSONL rows (the completion's leading space dropped), and the number of
    rows repeated verbatim (kept once)."""
    rows: list[_Row] = []
    seen: dict[str, _Row] = {}
    repeats = 0
    for line, row in read_jsonl_rows(path, ("prompt", "completion")):
        parsed = _Row(line, row["prompt"].strip(), row["completion"].strip())
        if parsed.prompt in seen:
            first = seen[parsed.prompt]
            if first.completion != parsed.completion:
                raise InputError(
                    path, line, f"duplicate prompt, first on line {first.line} with another completion; "
                    "expected each prompt once"
                )
            repeats += 1
            continue
        seen[parsed.prompt] = parsed
        rows.append(parsed)
    return rows, repeats


def description_answer(text: str) -> str:
    """A description as exact match compares it: its terminal punctuation made regular.

    Berglund's completions end a description with ``.``, with ``.".`` after a quoted
    title, or with artefacts of their generation (``??`` after a question prompt,
    ``'.'.``, ``."''.``). The trailing run of ``.?!'"`` becomes ``.".`` if it holds a
    double quote, else ``.``; nothing else changes. So every phrasing of a description
    that differs only there becomes one answer.
    """
    text = text.strip()
    match = _DESCRIPTION_END.search(text)
    if match is None:
        return text + "."
    return text[: match.start()] + ('.".' if '"' in match.group(0) else ".")


def name_answer(path: Path, row: _Row, name: str) -> str:
    """The name alone: Berglund's D2P training completions continue after it ("Name.",
    "Name now enjoys a quite life."); the paper's answer is the name (App. C.1)."""
    if not row.completion.startswith(name):
        raise InputError(path, row.line, f"the completion {row.completion!r} does not begin with the name "
                                         f"{name!r}; expected the name first")
    return name


def import_person_description(settings: dict, resources: dict) -> DatasetParts:
    """``people`` people per direction with ``statements_per_person`` training statements.

    The people of a direction are the distinct completions of its name-answer file
    (P2D: reverse test, D2P: forward test); every row of the direction's files must name
    exactly one of them, on the side the split puts it. Evaluation keeps every test row
    of the sampled people. Answers are normalised (``name_answer``,
    ``description_answer``); forward queries accept what their person is trained with.
    """
    source = Path(settings["source"])
    people, per_person = settings["people"], settings["statements_per_person"]
    entities: list[Entity] = []
    facts: list[Fact] = []
    directions = []
    filtering: dict[str, dict] = {}
    normalised: dict[str, dict] = {}
    for direction, files in PERSON_DESCRIPTION_FILES.items():
        task, summary, a_to_b = PERSON_DESCRIPTION_TASKS[direction]
        paths = {split: source / name for split, name in files.items()}
        read = {split: read_prompt_completion(path) for split, path in paths.items()}
        rows = {split: split_rows for split, (split_rows, _) in read.items()}
        names_split = "eval_reverse" if a_to_b else "eval_forward"
        names = list(dict.fromkeys(r.completion for r in rows[names_split]))
        if len(names) < people:
            raise ValueError(
                f"{paths[names_split]}: {len(names)} people; expected at least "
                f"datasets.person_description.people={people}"
            )
        asks_description = {split: (split == "eval_reverse") != a_to_b for split in files}
        by_person = {
            split: _rows_by_person(paths[split], split_rows, names, asks_description[split])
            for split, split_rows in rows.items()
        }
        sampled_people = seeded_order(names, settings["seed"], f"person_description.{direction}")[:people]
        rewritten = {split: 0 for split in files}
        statements: dict[str, list[Statement]] = {split: [] for split in files}
        for name in sampled_people:
            number = len(facts) + 1
            person = Entity(f"n{number:02d}", "person", name)
            description = Entity(f"d{number:02d}", "description", None)
            fact = Fact(f"pd-{number:02d}", "description", person.id, description.id)
            entities += [person, description]
            facts.append(fact)
            trained = by_person["train"].get(name, [])
            if len(trained) < per_person:
                raise ValueError(
                    f"{paths['train']}: {name!r} (named in {paths[names_split]}) has {len(trained)} training "
                    f"statements; expected at least datasets.person_description.statements_per_person={per_person}"
                )
            sampled = seeded_order(trained, settings["seed"], f"statements/{name}", key=lambda r: r.prompt)
            selected = {split: by_person[split].get(name, []) for split in files}
            selected["train"] = sorted(sampled[:per_person], key=lambda r: r.line)
            for split, split_rows in selected.items():
                for row in split_rows:
                    if asks_description[split]:
                        answer = description_answer(row.completion)
                        made = Statement(fact.id, "description", person.id, description.id, row.prompt, answer)
                    else:
                        answer = name_answer(paths[split], row, name)
                        made = Statement(fact.id, "name", description.id, person.id, row.prompt, answer)
                    rewritten[split] += answer != row.completion
                    statements[split].append(made)
        made_direction = make_direction(
            direction, task, summary, a_to_b,
            statements["train"], statements["eval_forward"], statements["eval_reverse"],
        )
        directions.append(made_direction)
        filtering[direction] = {
            "people_in_source": len(names),
            "people_sampled": len(sampled_people),
            **{f"{split}.rows_in_file": len(rows[split]) + read[split][1] for split in files},
            **{f"{split}.verbatim_repeats_kept_once": read[split][1] for split in files},
            **{f"{split}.rows_of_people_not_sampled": len(rows[split]) - sum(
                len(by_person[split].get(n, [])) for n in sampled_people) for split in files},
            "train.rows_of_sampled_people_not_sampled": sum(
                len(by_person["train"][n]) for n in sampled_people) - len(statements["train"]),
            **{f"{split}.rows_kept": len(statements[split]) for split in files},
        }
        rewrite = {split: "descriptions_with_terminal_punctuation_made_regular" if asks_description[split]
                   else "completions_cut_to_the_name" for split in files}
        normalised[direction] = {f"{split}.{rewrite[split]}": rewritten[split] for split in files}
        if asks_description["eval_forward"]:
            normalised[direction]["eval_forward.references_replaced_by_a_trained_description"] = sum(
                q.completion != s.completion for q, s in zip(made_direction.eval_forward, statements["eval_forward"])
            )
        _log_counts(f"{source} {direction}", {"filtering": filtering[direction], "normalised": normalised[direction]})
    source_info = _source("berglund_person_description_jsonl", source, person_description_files(source),
                          filtering, normalised)
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
LAMA_EXPECTED = f"an object with non-empty string fields {', '.join(LAMA_FIELDS)} (LAMA's T-REx format)"
TREX_FILTERS = ("self_loop", "head_with_several_tails", "tail_with_several_heads", "inverse_pair_is_a_fact")


@dataclass(frozen=True)
class _Triple:
    head: str  # entity identity: the Wikidata URI when given, else the label
    head_label: str
    relation: str
    tail: str
    tail_label: str


def trex_reads(source: Path, relations: list[str]) -> list[tuple[Path, tuple[str, ...]]]:
    """The files a T-REx import reads, each with the relations taken from it.

    A file: all configured relations from it. A directory: ``<relation>.jsonl`` of each
    configured relation, in its ``TREx/`` subdirectory when it has one (LAMA's
    ``data/`` folder) and otherwise in the directory itself (LAMA's ``data/TREx/``);
    no other file is opened.
    """
    source = Path(source)
    if not source.is_dir():
        return [(source, tuple(relations))]
    folder = source / "TREx" if (source / "TREx").is_dir() else source
    return [(folder / f"{relation}.jsonl", (relation,)) for relation in relations]


def trex_source_files(source: Path, relations: list[str]) -> list[Path]:
    return [path for path, _ in trex_reads(source, relations)]


def read_lama(path: Path, relations: tuple[str, ...]) -> tuple[list[_Triple], int, int]:
    """Triples of ``relations`` in one LAMA-style file, the number of their verbatim
    repeats dropped, and the number of rows of other relations (skipped unchecked
    beyond their ``predicate_id``)."""
    triples: list[_Triple] = []
    seen: dict[str, tuple[int, _Triple]] = {}
    repeats = others = 0
    for line, row in read_jsonl_objects(path, LAMA_EXPECTED):
        require_strings(path, line, row, ("predicate_id",), LAMA_EXPECTED)
        if row["predicate_id"].strip() not in relations:
            others += 1
            continue
        require_strings(path, line, row, LAMA_FIELDS, LAMA_EXPECTED)
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
    return triples, repeats, others


def import_trex(settings: dict, resources: dict) -> DatasetParts:
    """``facts_per_relation`` facts per configured relation, every entity renamed.

    Reads only the rows of the configured relations (``trex_reads``). Kept: triples
    whose head has one tail and whose tail has one head within the relation (so both
    directions are functional), that are not self-loops and whose inverse pair is not
    itself a fact (that would put a reverse statement in the training data). Each
    triple is counted under the first filter that drops it. A relation left with fewer
    than ``facts_per_relation`` facts stops the import, naming every such relation and
    its counts. Every entity then gets a virtual name of the kind its first role asks
    for; the map is kept in entities.jsonl.
    """
    relations = resources["phrasings"]["trex_relations"]
    wanted = settings["relations"]
    source = Path(settings["source"])
    reads = trex_reads(source, wanted)
    triples: dict[_Triple, None] = {}
    repeats = others = 0
    for path, taken in reads:
        file_triples, file_repeats, file_others = read_lama(path, taken)
        repeats += file_repeats + sum(t in triples for t in file_triples)
        others += file_others
        triples.update(dict.fromkeys(file_triples))
    tails: dict[tuple[str, str], set[str]] = {}
    heads: dict[tuple[str, str], set[str]] = {}
    for t in triples:
        tails.setdefault((t.relation, t.head), set()).add(t.tail)
        heads.setdefault((t.relation, t.tail), set()).add(t.head)
    by_relation = {r: {"triples": 0, **dict.fromkeys(TREX_FILTERS, 0), "one_to_one": 0, "sampled": 0}
                   for r in wanted}
    functional = []
    for t in triples:
        counts = by_relation[t.relation]
        counts["triples"] += 1
        if t.head == t.tail:
            counts["self_loop"] += 1
        elif len(tails[(t.relation, t.head)]) > 1:
            counts["head_with_several_tails"] += 1
        elif len(heads[(t.relation, t.tail)]) > 1:
            counts["tail_with_several_heads"] += 1
        else:
            functional.append(t)
    pairs = {(t.head, t.tail) for t in functional}
    kept = []
    for t in functional:
        if (t.tail, t.head) in pairs:
            by_relation[t.relation]["inverse_pair_is_a_fact"] += 1
        else:
            by_relation[t.relation]["one_to_one"] += 1
            kept.append(t)
    wanted_per_relation = settings["facts_per_relation"]
    short = {r: c for r, c in by_relation.items() if c["one_to_one"] < wanted_per_relation}
    if short:
        raise ValueError(
            f"{source}: too few one-to-one facts in " + "; ".join(
                f"relation {r} has {c['one_to_one']} of {c['triples']} triples ("
                + ", ".join(f"{k} {c[k]}" for k in TREX_FILTERS) + ")"
                for r, c in short.items()
            ) + f"; expected at least datasets.trex.facts_per_relation={wanted_per_relation} per relation"
        )
    sampled: list[_Triple] = []
    for relation in wanted:
        candidates = [t for t in kept if t.relation == relation]
        order = seeded_order(candidates, settings["seed"], f"trex.{relation}", key=lambda t: f"{t.head}\t{t.tail}")
        sampled += order[:wanted_per_relation]
        by_relation[relation]["sampled"] = len(order[:wanted_per_relation])

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
    filtering = {
        "rows_of_other_relations_skipped": others, "verbatim_repeats_kept_once": repeats,
        **{f"{r}.{k}": v for r, counts in by_relation.items() for k, v in counts.items()},
    }
    _log_counts(str(source), filtering)
    source_info = _source("lama_trex_jsonl", source, [path for path, _ in reads], filtering)
    entities_t, facts_t = tuple(entities), tuple(facts)
    return entities_t, facts_t, (trex_direction(entities_t, facts_t, relations),), source_info
