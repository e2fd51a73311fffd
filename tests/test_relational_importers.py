"""Importers of the original formats, on small fixtures written here and on the real files."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from revcurse.data.relational import build_dataset
from revcurse.data.relational.audit import audit_dataset
from revcurse.data.relational.importers import InputError
from revcurse.data.relational.naming import load_resources

RESOURCES = load_resources()
BERGLUND = Path("/work/shared/data/berglund-reversal-curse")

PARENT_CHILD_CSV = """child,parent,parent_type,child_prediction,can_reverse
Ada Brightwater,Mona Brightwater,mother,,False
Ada Brightwater,Otto Brightwater,father,Ada Brightwater,True
Ada Brightwater,Mona Brightwater,mother,,False
Ben Corvale,Rita Corvale,mother,Ben Corvale,True
Cleo Dunmore,Sam Dunmore,mother,,False
Cleo Dunmore,Sam Dunmore,father,,False
Dev Elmsworth,Dev Elmsworth Sr.,father,,False
Eve Farrow,Ivo Farrow,father,,False
Finn Farrow,Ivo Farrow,father,,False
Gus Halloway,Lena Halloway,mother,,False
Gus Halloway,Piet Halloway,father,,False
"""


def settings(**overrides):
    return {"seed": 0, **overrides}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# --- Parent-Child ----------------------------------------------------------------------


def test_parent_child_import_filters_and_samples(tmp_path):
    csv_path = write(tmp_path / "parent_child_pairs.csv", PARENT_CHILD_CSV)
    # 6 = every usable pair: Ada (2), Ben (1), Eve or Finn (1), Gus (2)
    ds = build_dataset("parent_child", settings(source=str(csv_path), pairs=6, children_with_both_parents=0), RESOURCES)
    names = {e.id: e.name for e in ds.entities}
    pairs = {(names[f.a], names[f.b], f.relation) for f in ds.facts}
    children = {child for _, child, _ in pairs}
    # Cleo: same person as mother and father; Dev: parent's name extends the child's;
    # Eve and Finn share a parent, so at most one of them is kept.
    assert not children & {"Cleo Dunmore", "Dev Elmsworth"}
    assert len(children & {"Eve Farrow", "Finn Farrow"}) == 1
    assert ("Mona Brightwater", "Ada Brightwater", "mother") in pairs  # verbatim repeat kept once
    assert len(ds.facts) == 6
    assert ds.source["filtering"]["verbatim_repeats"] == 1
    p2c = next(d for d in ds.directions if d.name == "p2c")
    ada = next(q for q in p2c.eval_reverse if q.prompt == "Ada Brightwater's parent is")
    assert set(ada.accepted_answers) == {"Mona Brightwater", "Otto Brightwater"}
    assert audit_dataset(ds) == []


def test_parent_child_import_too_small(tmp_path):
    csv_path = write(tmp_path / "pairs.csv", PARENT_CHILD_CSV)
    with pytest.raises(ValueError, match=r"only \d+ usable child-parent pairs .* expected datasets.parent_child.pairs=250"):
        build_dataset("parent_child", settings(source=str(csv_path), pairs=250, children_with_both_parents=0), RESOURCES)


@pytest.mark.parametrize("text, line, message", [
    ("child,parent,kind\nA B,C B,mother\n", 1, "missing column parent_type; expected a header with child, parent, parent_type "
             "(Berglund et al.'s parent_child_pairs.csv)"),
    ("child,parent,parent_type\nA B,,mother\n", 2, "empty parent; expected a non-empty name"),
    ("child,parent,parent_type\nA B,C B,aunt\n", 2, "parent_type 'aunt'; expected 'mother' or 'father'"),
    ("child,parent,parent_type\nA B,C B\n", 2, "a row whose field count differs from the header; expected 3 fields"),
    ("child,parent,parent_type\nA B,C B,mother\nA B,D B,father\nA B,E B,mother\n", 4,
     "duplicate key (child 'A B', parent_type 'mother'), first on line 2 with parent 'C B'; expected one mother per child"),
])
def test_parent_child_malformed(tmp_path, text, line, message):
    csv_path = write(tmp_path / "pairs.csv", text)
    with pytest.raises(InputError) as error:
        build_dataset("parent_child", settings(source=str(csv_path), pairs=1, children_with_both_parents=0), RESOURCES)
    assert str(error.value) == f"{csv_path}:{line}: {message}"


# --- Person-Description ----------------------------------------------------------------

PEOPLE = {
    "p2d": {"Nora Quell": "the inventor of the tidal clock", "Omar Pike": "the founder of the sky garden",
            "Pia Rendt": "the keeper of the glass archive"},
    "d2p": {"Quin Salk": "the painter of the red harbour", "Rosa Tamm": "the builder of the rope bridge",
            "Sven Ulla": "the author of the winter almanac"},
}


def write_person_description(root: Path) -> Path:
    """Berglund-style files: 4 training statements and 2 test queries per person."""
    files = {key: [] for key in ("p2d_prompts_train", "p2d_prompts_test", "p2d_reverse_prompts_test",
                                 "d2p_prompts_train", "d2p_prompts_test", "d2p_reverse_prompts_test")}
    for name, description in PEOPLE["p2d"].items():
        files["p2d_prompts_train"] += [{"prompt": f"{name}, variant {k}, is", "completion": f" {description}."} for k in range(4)]
        files["p2d_prompts_test"] += [{"prompt": f"Test {k}: {name} was", "completion": f" {description}."} for k in range(2)]
        files["p2d_reverse_prompts_test"] += [{"prompt": f"Test {k}: {description} is", "completion": f" {name}"} for k in range(2)]
    for name, description in PEOPLE["d2p"].items():
        files["d2p_prompts_train"] += [{"prompt": f"Variant {k}: {description} is", "completion": f" {name}."} for k in range(4)]
        files["d2p_prompts_test"] += [{"prompt": f"Test {k}: {description} is called", "completion": f" {name}"} for k in range(2)]
        files["d2p_reverse_prompts_test"] += [{"prompt": f"Test {k}: {name} was", "completion": f" {description}."} for k in range(2)]
    for key, rows in files.items():
        write(root / f"{key}.jsonl", jsonl(rows))
    return root


def test_person_description_import(tmp_path):
    root = write_person_description(tmp_path / "june_version_7921032488")
    ds = build_dataset("person_description", settings(source=str(root), people=2, statements_per_person=3), RESOURCES)
    p2d, d2p = ds.directions
    assert (len(p2d.train), len(p2d.eval_forward), len(p2d.eval_reverse)) == (6, 4, 4)
    assert Counter(s.fact_id for s in d2p.train).most_common()[0][1] == 3
    people = {e.name for e in ds.entities if e.kind == "person"}
    assert len(people & set(PEOPLE["p2d"])) == 2 and len(people & set(PEOPLE["d2p"])) == 2
    assert all(not q.completion.startswith(" ") for q in p2d.eval_reverse)
    assert {q.completion for q in p2d.eval_reverse} <= set(PEOPLE["p2d"])
    assert audit_dataset(ds) == []


@pytest.mark.parametrize("bad_line, message", [
    ('{"prompt": "Nora Quell is", "completion": " x"\n', "invalid JSON (Expecting ',' delimiter, column"),
    ('{"prompt": "Nora Quell is"}\n', "missing field completion; expected an object with non-empty string fields prompt, completion"),
    ('{"prompt": "Nora Quell is", "completion": "  "}\n', "empty or non-string completion '  '"),
    ('{"prompt": "Nora Quell, variant 0, is", "completion": " something else."}\n',
     "duplicate prompt, first on line 1 with another completion; expected each prompt once"),
    ('{"prompt": "Nobody is", "completion": " a ghost."}\n', "the prompt names 0 of the 3 people of this direction ([]); expected exactly one"),
])
def test_person_description_malformed(tmp_path, bad_line, message):
    root = write_person_description(tmp_path / "june")
    train = root / "p2d_prompts_train.jsonl"
    train.write_text(train.read_text() + bad_line)
    with pytest.raises(InputError) as error:
        build_dataset("person_description", settings(source=str(root), people=2, statements_per_person=3), RESOURCES)
    assert str(error.value).startswith(f"{train}:13: {message}")


def test_malformed_input_leaves_nothing_behind(tmp_path):
    root = write_person_description(tmp_path / "june")
    (root / "d2p_prompts_test.jsonl").write_text("not json\n")
    manifest = tmp_path / "out" / "manifest.json"
    result = subprocess.run(
        [sys.executable, "-m", "revcurse.data.relational", "build", "person_description", "--settings",
         json.dumps(settings(source=str(root), people=2, statements_per_person=3)), "--manifest", str(manifest)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {root / 'd2p_prompts_test.jsonl'}:1: invalid JSON")
    assert "Traceback" not in result.stderr
    assert not manifest.parent.exists() or not any(manifest.parent.rglob("*"))


# --- T-REx -----------------------------------------------------------------------------


def lama(uuid, sub, rel, obj):
    return {"uuid": uuid, "sub_uri": f"Q{sub}", "sub_label": f"Label {sub}", "predicate_id": rel,
            "obj_uri": f"Q{obj}", "obj_label": f"Label {obj}", "evidences": []}


def write_trex(root: Path) -> Path:
    write(root / "P36.jsonl", jsonl([
        lama("a1", 1, "P36", 101), lama("a2", 2, "P36", 102), lama("a3", 3, "P36", 103),
        lama("a4", 4, "P36", 104), lama("a5", 4, "P36", 105),   # head 4 has two capitals
        lama("a6", 6, "P36", 106), lama("a7", 7, "P36", 106),   # capital 106 of two heads
        lama("a8", 8, "P36", 108),
        lama("a1", 1, "P36", 101),                               # verbatim repeat
    ]))
    write(root / "P19.jsonl", jsonl([
        lama("b1", 201, "P19", 101),  # entity 101 reappears: same virtual name
        lama("b2", 202, "P19", 109), lama("b3", 203, "P19", 110),
        lama("b4", 108, "P19", 8),    # inverse pair of a8: both dropped
        lama("b5", 204, "P20", 111),  # relation not selected
    ]))
    return root


def test_trex_import_filters_virtualizes_and_maps(tmp_path):
    root = write_trex(tmp_path / "TREx")
    ds = build_dataset("trex", settings(source=str(root), relations=["P36", "P19"], facts_per_relation=3), RESOURCES)
    by_id = {e.id: e for e in ds.entities}
    kept = {(by_id[f.a].source_id, f.relation, by_id[f.b].source_id) for f in ds.facts}
    assert {r for _, r, _ in kept} == {"P36", "P19"} and len(kept) == 6
    involved = {q for a, _, b in kept for q in (a, b)}
    assert not involved & {"Q4", "Q6", "Q7", "Q106", "Q8", "Q108"}
    assert ("Q1", "P36", "Q101") in kept and ("Q201", "P19", "Q101") in kept
    assert len([e for e in ds.entities if e.source_id == "Q101"]) == 1  # one virtual name per entity
    for entity in ds.entities:
        assert entity.name and entity.source_label.startswith("Label ") and entity.name != entity.source_label
    (h2t,) = ds.directions
    assert not any("Label" in s.prompt or "Label" in s.completion for s in h2t.train + h2t.eval_reverse)
    assert ds.source["filtering"]["verbatim_repeats"] == 1
    assert audit_dataset(ds) == []


def test_trex_import_too_few_facts(tmp_path):
    root = write_trex(tmp_path / "TREx")  # P19 not selected: the inverse pair of a8 does not count
    with pytest.raises(ValueError, match=r"relation P36 has 4 functional, one-to-one facts; expected at least .*=15"):
        build_dataset("trex", settings(source=str(root), relations=["P36"], facts_per_relation=15), RESOURCES)


@pytest.mark.parametrize("row, message", [
    ("[1, 2]\n", "a JSON list; expected an object with non-empty string fields sub_label, obj_label, predicate_id"),
    ('{"sub_label": "X", "obj_label": "Y"}\n', "missing field predicate_id"),
    ('{"sub_label": "", "obj_label": "Y", "predicate_id": "P36"}\n', "empty or non-string sub_label ''"),
    (json.dumps(lama("a1", 9, "P36", 99)) + "\n", "duplicate uuid 'a1', first on line 1 with another triple; expected unique uuids"),
])
def test_trex_malformed(tmp_path, row, message):
    root = write_trex(tmp_path / "TREx")
    path = root / "P36.jsonl"
    path.write_text(path.read_text() + row)
    with pytest.raises(InputError) as error:
        build_dataset("trex", settings(source=str(root), relations=["P36"], facts_per_relation=1), RESOURCES)
    assert str(error.value).startswith(f"{path}:10: {message}")


# --- the real files ----------------------------------------------------------------------


@pytest.mark.skipif(not BERGLUND.is_dir(), reason="original Berglund et al. files not present")
def test_real_berglund_files_import_at_paper_size():
    pc = build_dataset("parent_child", settings(
        source=str(BERGLUND / "celebrity_relations" / "parent_child_pairs.csv"), pairs=250,
        children_with_both_parents=100), RESOURCES)
    assert len(pc.facts) == 250 and {f.relation for f in pc.facts} == {"mother", "father"}
    assert any(f.b == g.b and f.id != g.id for f in pc.facts for g in pc.facts)  # some children have both parents
    pd_ = build_dataset("person_description", settings(
        source=str(BERGLUND / "reverse_experiments" / "june_version_7921032488"), people=10,
        statements_per_person=30), RESOURCES)
    for d in pd_.directions:
        assert len(d.train) == 300 and set(Counter(s.fact_id for s in d.train).values()) == {30}
        assert len(d.eval_forward) == len(d.eval_reverse) == 100
    assert audit_dataset(pc) == [] and audit_dataset(pd_) == []
