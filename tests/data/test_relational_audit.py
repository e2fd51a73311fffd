"""The leakage and ambiguity audit passes on clean data and catches planted problems."""
import dataclasses
import json
import subprocess
import sys

import pytest
import yaml

from revcurse.core.config import REPO_ROOT
from revcurse.data.relational import build_dataset
from revcurse.data.relational.audit import AuditFailure, audit_dataset, audit_manifests
from revcurse.data.relational.naming import load_resources
from revcurse.data.relational.records import Entity, Statement, write_dataset

SETTINGS = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["datasets"]
RESOURCES = load_resources()


@pytest.fixture(scope="module")
def built():
    return {name: build_dataset(name, settings, RESOURCES) for name, settings in SETTINGS.items()}


def replace_direction(dataset, name, **splits):
    directions = tuple(
        dataclasses.replace(d, **splits) if d.name == name else d for d in dataset.directions
    )
    return dataclasses.replace(dataset, directions=directions)


def direction(dataset, name):
    return next(d for d in dataset.directions if d.name == name)


def test_clean_datasets_pass(built):
    for dataset in built.values():
        assert audit_dataset(dataset) == []


def test_planted_reverse_statement_with_its_own_ids(built):
    ds = built["parent_child"]
    p2c = direction(ds, "p2c")
    reverse = p2c.eval_reverse[0]
    planted = Statement(reverse.fact_id, reverse.relation, reverse.source, reverse.target,
                        reverse.prompt, reverse.completion)
    problems = audit_dataset(replace_direction(ds, "p2c", train=p2c.train + (planted,)))
    assert any("p2c/train.jsonl line 251: reverse statement by entity pair" in p for p in problems)
    assert any("reverse statement by text" in p for p in problems)


def test_planted_reverse_statement_disguised_as_forward(built):
    """Copying a forward row's ids does not hide reversed text."""
    ds = built["parent_child"]
    p2c = direction(ds, "p2c")
    forward, reverse = p2c.train[0], p2c.eval_reverse[0]
    planted = dataclasses.replace(forward, prompt=reverse.prompt, completion=reverse.completion)
    problems = audit_dataset(replace_direction(ds, "p2c", train=p2c.train + (planted,)))
    assert any("line 251: the prompt does not name the source" in p for p in problems)
    assert any("line 251: reverse statement by entity pair: the prompt names" in p for p in problems)


def test_planted_reverse_statement_with_unnamed_description(built):
    """D2P training data must not hold a name -> description statement."""
    ds = built["person_description"]
    d2p = direction(ds, "d2p")
    reverse = d2p.eval_reverse[0]
    planted = dataclasses.replace(d2p.train[0], prompt=reverse.prompt, completion=reverse.completion)
    problems = audit_dataset(replace_direction(ds, "d2p", train=d2p.train + (planted,)))
    assert any("d2p/train.jsonl line 301" in p for p in problems)
    assert any("reverse statement by text" in p for p in problems)


def test_planted_inverse_fact_in_trex(built):
    """A forward statement of an inverse relation (capital / capital of) is a reverse statement."""
    ds = built["trex"]
    (h2t,) = ds.directions
    fact = ds.facts[0]
    inverse = dataclasses.replace(fact, id="trex-999", relation="P1376", a=fact.b, b=fact.a)
    names = {e.id: e.name for e in ds.entities}
    planted = Statement("trex-999", "P1376", fact.b, fact.a, f"{names[fact.b]} is the capital of", names[fact.a])
    planted_ds = dataclasses.replace(ds, facts=ds.facts + (inverse,))
    planted_ds = replace_direction(planted_ds, "h2t", train=h2t.train + (planted,))
    problems = audit_dataset(planted_ds)
    assert any("line 451: reverse statement by entity pair" in p and fact.id in p for p in problems)


def test_planted_ambiguous_answer_same_prompt(built):
    ds = built["parent_child"]
    c2p = direction(ds, "c2p")
    query = c2p.eval_forward[0]
    other = dataclasses.replace(query, completion="Someone Else", accepted_answers=("Someone Else",))
    problems = audit_dataset(replace_direction(ds, "c2p", eval_forward=c2p.eval_forward + (other,)))
    assert any("c2p/eval_forward.jsonl line 251: ambiguous answer: same prompt as line 1" in p for p in problems)


def test_planted_ambiguous_answer_trained_but_not_accepted(built):
    """A prompt trained with two completions must accept both."""
    ds = built["parent_child"]
    c2p = direction(ds, "c2p")
    row = c2p.train[0]
    extra = dataclasses.replace(row, completion="Another Parent")
    problems = audit_dataset(replace_direction(ds, "c2p", train=c2p.train + (extra,)))
    assert any("line 251: ambiguous answer: trained completion 'Another Parent' is not accepted" in p
               for p in problems)


def test_forward_query_must_accept_what_its_fact_is_trained_with(built):
    """A P2D forward query (a held-out phrasing) that drops one of its person's trained
    descriptions could never credit a model that learnt that one."""
    ds = built["person_description"]
    p2d = direction(ds, "p2d")
    query = p2d.eval_forward[0]
    dropped = next(a for a in query.accepted_answers if a != query.completion)
    narrowed = tuple(
        dataclasses.replace(q, accepted_answers=tuple(a for a in q.accepted_answers if a != dropped))
        if q.fact_id == query.fact_id else q
        for q in p2d.eval_forward
    )
    problems = audit_dataset(replace_direction(ds, "p2d", eval_forward=narrowed))
    unfair = [p for p in problems if "unfair answer set" in p]
    assert len(unfair) == sum(q.fact_id == query.fact_id for q in p2d.eval_forward) == 10
    assert f"answers fact {query.fact_id} with {dropped.casefold()!r}" in unfair[0]


def test_planted_prefix_name(built):
    ds = built["trex"]
    existing = ds.entities[0]
    planted = Entity("e9999", "city", f"{existing.name} Sr.")
    problems = audit_dataset(dataclasses.replace(ds, entities=ds.entities + (planted,)))
    assert any("is a word-prefix of" in p and existing.name in p for p in problems)


def test_blank_and_missing_answers(built):
    ds = built["trex"]
    (h2t,) = ds.directions
    query = h2t.eval_reverse[0]
    broken = (dataclasses.replace(query, accepted_answers=()),
              dataclasses.replace(query, prompt=query.prompt + " ", accepted_answers=(" ",)))
    problems = audit_dataset(replace_direction(ds, "h2t", eval_reverse=broken + h2t.eval_reverse[1:]))
    assert sum("empty accepted-answer set or a blank accepted answer" in p for p in problems) == 2
    assert any("is not among its accepted answers" in p for p in problems)


def test_cli_audit_fails_the_run_on_edited_files(tmp_path, built):
    manifests = [write_dataset(ds, tmp_path / name, {}) for name, ds in built.items()]
    report = audit_manifests(manifests)
    assert set(report["datasets"]) == set(built)
    train = tmp_path / "parent_child" / "p2c" / "train.jsonl"
    reverse_row = json.loads((tmp_path / "parent_child" / "p2c" / "eval_reverse.jsonl").read_text().splitlines()[0])
    del reverse_row["accepted_answers"]
    train.write_text(train.read_text() + json.dumps(reverse_row) + "\n")
    with pytest.raises(AuditFailure, match="SHA-256 differs"):
        audit_manifests(manifests)
    out = tmp_path / "audit.json"
    result = subprocess.run(
        [sys.executable, "-m", "revcurse.data.relational", "audit", *map(str, manifests), "--report", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "relational dataset audit failed with 1 problem" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
