"""Embedded default datasets: fictitious, deterministic, in the paper's shapes (App. C.1).

Everything derives from the seed in the config and resources/relational/*.yaml, so the
same settings give the same bytes on every machine and the study runs offline.
"""
from __future__ import annotations

from itertools import combinations

from revcurse.data.relational.naming import NameFactory, seeded_choice, seeded_order
from revcurse.data.relational.phrasing import describe, parent_child_directions, trex_direction
from revcurse.data.relational.records import DatasetParts, Direction, Entity, Fact, Statement, make_direction

EMBEDDED = {"kind": "embedded", "files": []}


def generate_parent_child(settings: dict, resources: dict) -> DatasetParts:
    """``pairs`` parent -> child facts; ``children_with_both_parents`` children have two.

    Each family shares a surname (mothers keep their own about half the time); every
    person appears once, so each parent has exactly one child in the dataset.
    """
    seed, pairs, both = settings["seed"], settings["pairs"], settings["children_with_both_parents"]
    if 2 * both > pairs:
        raise ValueError(
            f"datasets.parent_child: children_with_both_parents={both} needs {2 * both} pairs, "
            f"more than pairs={pairs}; expected at most pairs/2"
        )
    n_children = pairs - both
    with_both = set(seeded_order(range(n_children), seed, "parent_child.both_parents")[:both])
    factory = NameFactory(resources["names"], seed, "parent_child")
    entities: list[Entity] = []
    facts: list[Fact] = []

    def person(kind: str, surname: str) -> str:
        entity = Entity(f"p{len(entities) + 1:04d}", "person", factory.new(kind, surname=surname))
        entities.append(entity)
        return entity.id

    for i in range(n_children):
        family = factory.part("surname", "family", i)
        child_kind = seeded_choice(["feminine_person", "masculine_person"], seed, "child_kind", i)
        child = person(child_kind, family)
        parent_types = ("mother", "father") if i in with_both else (
            seeded_choice(["mother", "father"], seed, "single_parent", i),
        )
        for parent_type in parent_types:
            if parent_type == "father":
                parent = person("masculine_person", family)
            else:
                keeps_own_surname = seeded_choice([True, False], seed, "mother_surname", i)
                surname = factory.part("surname", "maiden", i) if keeps_own_surname else family
                parent = person("feminine_person", surname)
            facts.append(Fact(f"pc-{len(facts) + 1:04d}", parent_type, parent, child))
    entities_t, facts_t = tuple(entities), tuple(facts)
    return entities_t, facts_t, parent_child_directions(entities_t, facts_t, resources["phrasings"]), EMBEDDED


# name, task, summary, forward statements go person -> description, and the phrasing
# lists of its training, forward-evaluation and reverse-evaluation prompts.
PERSON_DESCRIPTION_DIRECTIONS = (
    ("p2d", "P2D", "trained on person -> description statements", True,
     ("name_first_train", "name_first_eval", "description_first_eval")),
    ("d2p", "D2P", "trained on description -> person statements", False,
     ("description_first_train", "description_first_eval", "name_first_eval")),
)


def generate_person_description(settings: dict, resources: dict) -> DatasetParts:
    """``people`` people per direction, each with one signature achievement.

    Each person gets ``statements_per_person`` unique descriptions (paper App. C.1: 30
    unique name-free descriptions per person): the achievement with one adjective or
    two joined by "and" (``description_variants``). Each training statement carries one
    of them, in one of the direction's training phrasings (each phrasing used equally
    often); evaluation uses held-out phrasings, as in Berglund et al. P2D and D2P get
    different people, as in the original data.
    """
    seed, people, per_person = settings["seed"], settings["people"], settings["statements_per_person"]
    phrasings = resources["phrasings"]["person_description"]
    achievements = seeded_order(
        resources["achievements"]["achievements"], seed, "person_description.achievements"
    )
    if 2 * people > len(achievements):
        raise ValueError(
            f"datasets.person_description: people={people} needs {2 * people} achievements; "
            f"resources/relational/achievements.yaml has {len(achievements)}"
        )
    variants = description_variants(phrasings["adjectives"])
    if per_person > len(variants):
        raise ValueError(
            f"datasets.person_description: statements_per_person={per_person}; the adjectives in "
            f"resources/relational/phrasings.yaml give {len(variants)} unique descriptions per person; "
            f"expected at most {len(variants)}"
        )
    factory = NameFactory(resources["names"], seed, "person_description")
    entities: list[Entity] = []
    facts: list[Fact] = []
    directions: list[Direction] = []
    for name, task, summary, a_to_b, (train_key, forward_key, reverse_key) in PERSON_DESCRIPTION_DIRECTIONS:
        train: list[Statement] = []
        forward: list[Statement] = []
        reverse: list[Statement] = []
        # a reverse query asking for the description accepts all of the person's descriptions
        reverse_answers: dict[tuple[str, str], tuple[str, ...]] = {}
        for _ in range(people):
            number = len(facts) + 1
            person = Entity(f"n{number:02d}", "person", factory.new("person"))
            description = Entity(f"d{number:02d}", "description", None)
            fact = Fact(f"pd-{number:02d}", "description", person.id, description.id)
            entities += [person, description]
            facts.append(fact)
            texts = [
                achievements[number - 1].format(adjective=variant)
                for variant in seeded_order(variants, seed, f"descriptions/{person.id}")[:per_person]
            ]
            ask_forward = _asking(fact, person.name, "description" if a_to_b else "name")
            ask_reverse = _asking(fact, person.name, "name" if a_to_b else "description")
            train_phrasings = seeded_order(phrasings[train_key], seed, f"train_phrasings/{person.id}")
            train += [ask_forward(train_phrasings[i % len(train_phrasings)], text) for i, text in enumerate(texts)]
            forward += [ask_forward(t, texts[j % len(texts)]) for j, t in enumerate(phrasings[forward_key])]
            reverse += [ask_reverse(t, texts[j % len(texts)]) for j, t in enumerate(phrasings[reverse_key])]
            if not a_to_b:
                reverse_answers[(person.id, "description")] = tuple(texts)
        directions.append(make_direction(name, task, summary, a_to_b, train, forward, reverse, reverse_answers))
    return tuple(entities), tuple(facts), tuple(directions), EMBEDDED


def description_variants(adjectives: list[str]) -> list[str]:
    """Each adjective, then each pair of them joined by "and": 8 adjectives give 36."""
    return list(adjectives) + [f"{a} and {b}" for a, b in combinations(adjectives, 2)]


def _asking(fact: Fact, person_name: str, wanted: str):
    """Statement maker for prompts asking for the person's description or their name."""
    def make(template: str, description: str) -> Statement:
        prompt = describe(template, person_name, description)
        if wanted == "description":
            return Statement(fact.id, "description", fact.a, fact.b, prompt, description)
        return Statement(fact.id, "name", fact.b, fact.a, prompt, person_name)
    return make


def generate_trex(settings: dict, resources: dict) -> DatasetParts:
    """``facts_per_relation`` facts per relation between fresh virtual entities.

    Every entity appears in one fact, so head -> tail and tail -> head are both unique.
    """
    relations = resources["phrasings"]["trex_relations"]
    factory = NameFactory(resources["names"], settings["seed"], "trex")
    entities: list[Entity] = []
    facts: list[Fact] = []

    def entity(kind: str) -> str:
        made = Entity(f"e{len(entities) + 1:04d}", kind, factory.new(kind))
        entities.append(made)
        return made.id

    for relation in settings["relations"]:
        spec = relations[relation]
        for _ in range(settings["facts_per_relation"]):
            head, tail = entity(spec["head"]), entity(spec["tail"])
            facts.append(Fact(f"trex-{len(facts) + 1:03d}", relation, head, tail))
    entities_t, facts_t = tuple(entities), tuple(facts)
    return entities_t, facts_t, (trex_direction(entities_t, facts_t, relations),), EMBEDDED
