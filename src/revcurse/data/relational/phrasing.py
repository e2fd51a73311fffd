"""From facts to the training and evaluation files of each direction.

Shared by the embedded generators and the importers, so a dataset's prompts depend
only on its facts and resources/relational/phrasings.yaml, not on where the facts
came from. Directions (paper §3, App. C.1): the model is trained on the forward
statements; forward queries follow that mapping, reverse queries swap input and target.
"""
from __future__ import annotations

from revcurse.data.relational.records import Direction, Entity, Fact, Statement, make_direction


def _names(entities: tuple[Entity, ...]) -> dict[str, str | None]:
    return {e.id: e.name for e in entities}


def parent_child_directions(
    entities: tuple[Entity, ...], facts: tuple[Fact, ...], phrasings: dict
) -> tuple[Direction, ...]:
    """P2C (trained on "<parent>'s child is" -> child) and C2P (the other way round).

    Facts run parent (a) -> child (b). A child listed with both parents is asked about
    once per fact, and both rows accept either parent.
    """
    name = _names(entities)
    templates = phrasings["parent_child"]

    def ask_child(f: Fact) -> Statement:
        prompt = templates["ask_child"].format(parent=name[f.a])
        return Statement(f.id, "child", f.a, f.b, prompt, name[f.b])

    def ask_parent(f: Fact) -> Statement:
        prompt = templates["ask_parent"].format(child=name[f.b])
        return Statement(f.id, "parent", f.b, f.a, prompt, name[f.a])

    to_child = [ask_child(f) for f in facts]
    to_parent = [ask_parent(f) for f in facts]
    return (
        make_direction("p2c", "P2C", "trained on parent -> child statements", True,
                       to_child, to_child, to_parent),
        make_direction("c2p", "C2P", "trained on child -> parent statements", False,
                       to_parent, to_parent, to_child),
    )


def trex_direction(
    entities: tuple[Entity, ...], facts: tuple[Fact, ...], relations: dict
) -> Direction:
    """One direction, head -> tail, in each relation's five forward phrasings.

    Forward queries are the trained prompts (the paper names no held-out phrasing);
    reverse queries use the relation's five reverse phrasings.
    """
    name = _names(entities)
    forward = [
        Statement(f.id, f.relation, f.a, f.b, template.format(head=name[f.a]), name[f.b])
        for f in facts
        for template in relations[f.relation]["forward"]
    ]
    reverse = [
        Statement(f.id, f"{f.relation}-inverse", f.b, f.a, template.format(tail=name[f.b]), name[f.a])
        for f in facts
        for template in relations[f.relation]["reverse"]
    ]
    return make_direction("h2t", "T-REx", "trained on head -> tail statements", True,
                          forward, forward, reverse)


def describe(template: str, name: str, description: str) -> str:
    """Fill a Person-Description phrasing (name and/or description slots)."""
    capitalized = description[:1].upper() + description[1:]
    return template.format(name=name, description=description, Description=capitalized)
