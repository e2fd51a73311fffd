"""Embedded relational datasets: shapes of paper App. C.1, determinism, config schema."""
import json
import subprocess
import sys
from collections import Counter

import jsonschema
import pytest
import yaml

from revcurse.core.config import REPO_ROOT
from revcurse.data.relational import TASKS, build_dataset, load_dataset
from revcurse.data.relational.build import output_files, source_files
from revcurse.data.relational.naming import load_resources
from revcurse.data.relational.records import name_tokens, normalize_answer

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
SETTINGS = CONFIG["datasets"]
RESOURCES = load_resources()


@pytest.fixture(scope="module")
def built():
    return {name: build_dataset(name, settings, RESOURCES) for name, settings in SETTINGS.items()}


def direction(dataset, name):
    return next(d for d in dataset.directions if d.name == name)


def test_parent_child_shape(built):
    ds = built["parent_child"]
    assert len(ds.facts) == 250
    assert {f.relation for f in ds.facts} == {"mother", "father"}
    parents_per_child = Counter(f.b for f in ds.facts)
    assert Counter(parents_per_child.values()) == {2: 100, 1: 50}
    assert len({f.a for f in ds.facts}) == 250  # each parent has one child
    assert all(len(e.name.split()) >= 2 for e in ds.entities)
    p2c, c2p = direction(ds, "p2c"), direction(ds, "c2p")
    names = {e.id: e.name for e in ds.entities}
    fact = ds.facts[0]
    assert p2c.train[0].prompt == f"{names[fact.a]}'s child is"
    assert p2c.train[0].completion == names[fact.b]
    assert c2p.train[0].prompt == f"{names[fact.b]}'s parent is"
    # a child listed with both parents: either parent is accepted in both directions
    child = next(c for c, n in parents_per_child.items() if n == 2)
    both = {names[f.a] for f in ds.facts if f.b == child}
    for queries in (p2c.eval_reverse, c2p.eval_forward):
        assert {frozenset(q.accepted_answers) for q in queries if q.source == child} == {frozenset(both)}
    assert [len(getattr(d, s)) for d in (p2c, c2p) for s in ("train", "eval_forward", "eval_reverse")] == [250] * 6


def test_person_description_shape(built):
    """Paper App. C.1: 10 people, each with 30 unique name-free descriptions."""
    ds = built["person_description"]
    names = [e.name for e in ds.entities if e.kind == "person"]
    assert len(names) == len(set(names)) == 20
    for name in ("p2d", "d2p"):
        d = direction(ds, name)
        per_person = Counter(s.fact_id for s in d.train)
        assert len(per_person) == 10 and set(per_person.values()) == {30}
        assert len({(s.prompt, s.completion) for s in d.train}) == 300
        assert len(d.eval_forward) == len(d.eval_reverse) == 100
        assert not {s.prompt for s in d.train} & {q.prompt for q in d.eval_forward}  # held-out phrasings
        # the queries that ask for the description accept the person's 30 descriptions
        asks_description = d.eval_forward if name == "p2d" else d.eval_reverse
        for fact in per_person:
            accepted = {a for q in asks_description if q.fact_id == fact for a in q.accepted_answers}
            assert len(accepted) == 30
            assert not any(n in text for n in names for text in accepted)  # name-free
            rows = [s for s in d.train if s.fact_id == fact]
            if name == "p2d":
                assert {s.completion for s in rows} == accepted
                phrasings = Counter(s.prompt for s in rows)
            else:  # each training prompt carries exactly one of them, each a different one
                carried = [[a for a in accepted if normalize_answer(a) in normalize_answer(s.prompt)] for s in rows]
                assert all(len(c) == 1 for c in carried) and {c[0] for c in carried} == accepted
                phrasings = Counter(s.prompt.replace(c[0], "{d}").replace(c[0][0].upper() + c[0][1:], "{D}")
                                    for s, c in zip(rows, carried))
            assert len(phrasings) == 10 and set(phrasings.values()) == {3}  # each training phrasing 3 times
    assert not {s.fact_id for s in direction(ds, "p2d").train} & {s.fact_id for s in direction(ds, "d2p").train}


def test_trex_shape(built):
    ds = built["trex"]
    assert len(ds.facts) == 90
    assert Counter(f.relation for f in ds.facts) == {r: 15 for r in SETTINGS["trex"]["relations"]}
    assert all(e.name for e in ds.entities)
    heads, tails = Counter(f.a for f in ds.facts), Counter(f.b for f in ds.facts)
    assert set(heads.values()) == set(tails.values()) == {1}  # head -> tail unique both ways
    (h2t,) = ds.directions
    assert len(h2t.train) == len(h2t.eval_forward) == len(h2t.eval_reverse) == 450
    assert Counter(s.fact_id for s in h2t.train) == {f.id: 5 for f in ds.facts}


def test_names_are_unique_and_prefix_free(built):
    for ds in built.values():
        tokens = [name_tokens(e.name) for e in ds.entities if e.name]
        assert len(tokens) == len(set(tokens))
        prefixes = {t[:k] for t in tokens for k in range(1, len(t))}
        assert not prefixes & set(tokens)


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "revcurse.data.relational", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_cli_builds_are_byte_identical(tmp_path):
    for run in ("a", "b"):
        for name, settings in SETTINGS.items():
            result = run_cli("build", name, "--settings", json.dumps(settings),
                             "--manifest", str(tmp_path / run / name / "manifest.json"))
            assert result.returncode == 0, result.stderr
    for name in SETTINGS:
        manifests = [json.loads((tmp_path / run / name / "manifest.json").read_text()) for run in "ab"]
        assert manifests[0]["files"] == manifests[1]["files"]
        for relative in manifests[0]["files"]:
            assert (tmp_path / "a" / name / relative).read_bytes() == (tmp_path / "b" / name / relative).read_bytes()
        assert set(output_files(name, "x").values()) == {f"x/{p}" for p in [*manifests[0]["files"], "manifest.json"]}
        load_dataset(tmp_path / "a" / name / "manifest.json")  # hashes check out


def test_seed_changes_the_data():
    other = {**SETTINGS["trex"], "seed": SETTINGS["trex"]["seed"] + 1}
    names = [{e.name for e in build_dataset("trex", s, RESOURCES).entities} for s in (SETTINGS["trex"], other)]
    assert names[0] != names[1]


def test_tasks_cover_table1_rows(built):
    assert set(TASKS) == {"P2C", "C2P", "P2D", "D2P", "T-REx"}
    for task, (dataset, name) in TASKS.items():
        assert direction(built[dataset], name).task == task


def test_config_datasets_section_matches_schema_and_resources():
    schema = yaml.safe_load((REPO_ROOT / "workflow/schemas/config.schema.yaml").read_text())
    section = schema["properties"]["datasets"]
    jsonschema.validate(SETTINGS, section)
    relation_enum = section["properties"]["trex"]["properties"]["relations"]["items"]["enum"]
    assert sorted(relation_enum) == sorted(RESOURCES["phrasings"]["trex_relations"])
    for bad in (
        {**SETTINGS, "trex": {**SETTINGS["trex"], "relations": ["P999"]}},
        {**SETTINGS, "parent_child": {**SETTINGS["parent_child"], "pairs": 0}},
        {**SETTINGS, "parent_child": {**SETTINGS["parent_child"], "source": "pairs.tsv"}},
        {**SETTINGS, "person_description": {**SETTINGS["person_description"], "peopel": 3}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, section)


def test_missing_source_path_names_the_config_key(tmp_path):
    with pytest.raises(ValueError, match=r"datasets\.trex\.source = .* does not exist; expected a LAMA-style"):
        source_files("trex", {**SETTINGS["trex"], "source": str(tmp_path / "nowhere")})
    with pytest.raises(ValueError, match=r"datasets\.person_description\.source.*missing .*p2d_prompts_train\.jsonl"):
        source_files("person_description", {**SETTINGS["person_description"], "source": str(tmp_path)})
    with pytest.raises(ValueError, match=r"datasets\.trex\.source.*missing .*/P36\.jsonl, .*/P19\.jsonl"):
        source_files("trex", {**SETTINGS["trex"], "source": str(tmp_path)})
    assert source_files("parent_child", SETTINGS["parent_child"]) == []


def test_generator_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="children_with_both_parents=200 needs 400 pairs"):
        build_dataset("parent_child", {**SETTINGS["parent_child"], "children_with_both_parents": 200}, RESOURCES)
    with pytest.raises(ValueError, match="statements_per_person=37; the adjectives .* give 36 unique descriptions"):
        build_dataset("person_description", {**SETTINGS["person_description"], "statements_per_person": 37}, RESOURCES)
