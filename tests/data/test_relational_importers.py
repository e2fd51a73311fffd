"""Importers of the original formats, on small fixtures written here (the real files: see
tests/data/test_relational_berglund.py)."""
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from revcurse.data.relational import build_dataset
from revcurse.data.relational.audit import audit_dataset
from revcurse.data.relational.build import source_files
from revcurse.data.relational.cards import render_card
from revcurse.data.relational.importers import InputError, description_answer
from revcurse.data.relational.naming import load_resources
from revcurse.data.relational.records import normalize_answer, write_dataset

RESOURCES = load_resources()

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


def direction(dataset, name):
    return next(d for d in dataset.directions if d.name == name)


def error_of(name, config) -> str:
    with pytest.raises(InputError) as error:
        build_dataset(name, config, RESOURCES)
    return str(error.value)


# --- Parent-Child ----------------------------------------------------------------------


def pc_settings(path, pairs=5):
    return settings(source=str(path), pairs=pairs, children_with_both_parents=0)


def test_parent_child_import_filters_and_counts_every_filter(tmp_path):
    csv_path = write(tmp_path / "parent_child_pairs.csv", PARENT_CHILD_CSV)
    ds = build_dataset("parent_child", pc_settings(csv_path), RESOURCES)
    names = {e.id: e.name for e in ds.entities}
    pairs = {(names[f.a], names[f.b], f.relation) for f in ds.facts}
    # Cleo: same person as mother and father; Dev: parent's name extends the child's;
    # Eve and Finn: their father has two children, so "Ivo Farrow's child is" has no single answer.
    assert {child for _, child, _ in pairs} == {"Ada Brightwater", "Ben Corvale", "Gus Halloway"}
    assert ("Mona Brightwater", "Ada Brightwater", "mother") in pairs  # verbatim repeat kept once
    filtering = ds.source["filtering"]
    assert filtering == {
        "rows_in_file": 11, "verbatim_repeats_kept_once": 1, "children_in_file": 7,
        "children_skipped.same_person_as_mother_and_father": 1, "children_skipped.parent_is_the_child": 0,
        "children_skipped.parent_has_other_children": 2,
        "children_skipped.name_equals_or_extends_a_sampled_name": 1,
        "children_skipped.would_exceed_pairs": 0, "children_skipped.not_needed_once_pairs_reached": 0,
        "children_sampled": 3, "pairs_sampled": 5,
    }
    assert ds.source["files"] == [{"name": "parent_child_pairs.csv", "sha256": ds.source["files"][0]["sha256"]}]
    p2c = direction(ds, "p2c")
    ada = next(q for q in p2c.eval_reverse if q.prompt == "Ada Brightwater's parent is")
    assert set(ada.accepted_answers) == {"Mona Brightwater", "Otto Brightwater"}
    assert audit_dataset(ds) == []


def test_parent_child_size_skips_are_counted(tmp_path):
    """Stopping at exactly `pairs` skips children with too many parents and the rest: both counted."""
    csv_path = write(tmp_path / "parent_child_pairs.csv", PARENT_CHILD_CSV)
    ds = build_dataset("parent_child", pc_settings(csv_path, pairs=1), RESOURCES)
    filtering = ds.source["filtering"]
    assert len(ds.facts) == filtering["pairs_sampled"] == 1
    skipped = sum(v for k, v in filtering.items() if k.startswith("children_skipped."))
    assert skipped + filtering["children_sampled"] == filtering["children_in_file"]
    assert filtering["children_skipped.not_needed_once_pairs_reached"] >= 1


def test_parent_child_import_too_small(tmp_path):
    csv_path = write(tmp_path / "pairs.csv", PARENT_CHILD_CSV)
    with pytest.raises(ValueError, match=r"only 5 usable child-parent pairs after filtering \(rows_in_file=11, .*"
                                         r"parent_has_other_children=2.*\); expected datasets.parent_child.pairs=250"):
        build_dataset("parent_child", pc_settings(csv_path, pairs=250), RESOURCES)


EXPECTED_CSV = "Berglund et al.'s parent_child_pairs.csv"


@pytest.mark.parametrize("data, line, message", [
    (b"child,parent,kind\nA B,C B,mother\n", 1, "missing column parent_type; expected a header with child, parent, "
     f"parent_type ({EXPECTED_CSV})"),
    (b"child,parent,parent_type\nA B,,mother\n", 2, "empty parent; expected a non-empty name"),
    (b"child,parent,parent_type\nA B,C B,aunt\n", 2, "parent_type 'aunt'; expected 'mother' or 'father'"),
    (b"child,parent,parent_type\nA B,C B\n", 2, "a row of 2 fields; expected 3 fields, as in the header"),
    (b"child,parent,parent_type\nA B,C B,mother\nA B,D B,father\nA B,E B,mother\n", 4,
     "duplicate key (child 'A B', parent_type 'mother'), first on line 2 with parent 'C B'; expected one mother per child"),
    (b"child,parent,parent_type\nA B,C B,mother\nRen\xe9 B,D B,father\n", 3,
     f"byte 0xe9 at column 4 is not UTF-8; expected UTF-8 text ({EXPECTED_CSV})"),
    (b"", 1, f"the file is empty; expected {EXPECTED_CSV}"),
    (b"\n  \n", 1, f"the file is empty; expected {EXPECTED_CSV}"),
    (b"child,parent,parent_type\n", 2, f"no data row after the header; expected {EXPECTED_CSV}"),
    (b"child,parent,parent_type\nA B,C B,mother\nD E,\"F", 3,       # truncated inside a quoted field
     "malformed CSV (unexpected end of data); expected a complete row of 3 fields"),
])
def test_parent_child_malformed(tmp_path, data, line, message):
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_bytes(data)
    assert error_of("parent_child", pc_settings(csv_path, pairs=1)) == f"{csv_path}:{line}: {message}"


def test_same_data_at_another_path_has_the_same_hashes(tmp_path):
    manifests = []
    for where in ("a", "b/deeper"):
        csv_path = write(tmp_path / where / "parent_child_pairs.csv", PARENT_CHILD_CSV)
        ds = build_dataset("parent_child", pc_settings(csv_path), RESOURCES)
        manifests.append(json.loads(write_dataset(ds, tmp_path / "out" / where, {"code_version": "x"}).read_text()))
    provenance = [m.pop("provenance") for m in manifests]
    assert provenance[0]["source_path"] != provenance[1]["source_path"]
    assert manifests[0] == manifests[1]                                    # every hash and count
    assert str(tmp_path) not in json.dumps(manifests[0])
    changed = write(tmp_path / "c" / "parent_child_pairs.csv", PARENT_CHILD_CSV.replace("Rita", "Rota"))
    other = write_dataset(build_dataset("parent_child", pc_settings(changed), RESOURCES), tmp_path / "out/c", {})
    assert json.loads(other.read_text())["data_hash"] != manifests[0]["data_hash"]


def test_card_lists_every_filter_count(tmp_path):
    csv_path = write(tmp_path / "parent_child_pairs.csv", PARENT_CHILD_CSV)
    ds = build_dataset("parent_child", pc_settings(csv_path), RESOURCES)
    manifest = write_dataset(ds, tmp_path / "out", {"code_version": "x"})
    card = render_card(manifest)
    for name, value in ds.source["filtering"].items():
        assert f"| `{name}` | {value} |" in card
    assert json.loads(manifest.read_text())["data_hash"] in card
    assert str(tmp_path) not in card


# --- Person-Description ----------------------------------------------------------------

PEOPLE = {
    "p2d": {"Nora Quell": 'the inventor of the tidal clock, "Tide."', "Omar Pike": "the founder of the sky garden",
            "Pia Rendt": "the keeper of the glass archive"},
    "d2p": {"Quin Salk": "the painter of the red harbour", "Rosa Tamm": "the builder of the rope bridge",
            "Sven Ulla": "the author of the winter almanac"},
}
# Berglund's D2P training completions continue after the name; some P2D ones end in '??'
# and some test ones in "'.'." (see the real files).
D2P_ENDINGS = [".", " now enjoys a quite life.", "", "."]


def write_person_description(root: Path) -> Path:
    """Berglund-style files: 4 training statements and 2 test queries per person."""
    files = {key: [] for key in ("p2d_prompts_train", "p2d_prompts_test", "p2d_reverse_prompts_test",
                                 "d2p_prompts_train", "d2p_prompts_test", "d2p_reverse_prompts_test")}
    for name, description in PEOPLE["p2d"].items():
        files["p2d_prompts_train"] += [{"prompt": f"{name}, variant {k}, is", "completion": f" {description}."} for k in range(3)]
        files["p2d_prompts_train"].append({"prompt": f"Did you know {name} was", "completion": f" {description}??"})
        files["p2d_prompts_test"] += [{"prompt": f"Test 0: {name} was", "completion": f" {description}'.'."},
                                      {"prompt": f"Test 1: {name} was", "completion": f" was {description}."}]
        files["p2d_reverse_prompts_test"] += [{"prompt": f"Test {k}: {description} is", "completion": f" {name}"} for k in range(2)]
    for name, description in PEOPLE["d2p"].items():
        files["d2p_prompts_train"] += [{"prompt": f"Variant {k}: {description} is", "completion": f" {name}{end}"}
                                       for k, end in enumerate(D2P_ENDINGS)]
        files["d2p_prompts_test"] += [{"prompt": f"Test {k}: {description} is called", "completion": f" {name}"} for k in range(2)]
        files["d2p_reverse_prompts_test"] += [{"prompt": f"Test 0: {name} was", "completion": f" {description}."},
                                              {"prompt": f"Test 1: {name} was", "completion": f" {description}'.'."}]
    for key, rows in files.items():
        write(root / f"{key}.jsonl", jsonl(rows))
    return root


def pd_settings(root, people=2, per_person=4):
    return settings(source=str(root), people=people, statements_per_person=per_person)


def test_person_description_import(tmp_path):
    root = write_person_description(tmp_path / "june_version_7921032488")
    ds = build_dataset("person_description", pd_settings(root, per_person=3), RESOURCES)
    p2d, d2p = ds.directions
    assert (len(p2d.train), len(p2d.eval_forward), len(p2d.eval_reverse)) == (6, 4, 4)
    assert Counter(s.fact_id for s in d2p.train).most_common()[0][1] == 3
    people = {e.name for e in ds.entities if e.kind == "person"}
    assert len(people & set(PEOPLE["p2d"])) == 2 and len(people & set(PEOPLE["d2p"])) == 2
    assert all(not q.completion.startswith(" ") for q in p2d.eval_reverse)
    assert {q.completion for q in p2d.eval_reverse} <= set(PEOPLE["p2d"])
    assert audit_dataset(ds) == []


def test_person_description_answers_are_normalised(tmp_path):
    root = write_person_description(tmp_path / "june")
    ds = build_dataset("person_description", pd_settings(root), RESOURCES)
    p2d, d2p = ds.directions
    names = {e.id: e.name for e in ds.entities}
    # D2P: the name alone, whatever followed it in the source
    assert all(s.completion == names[s.target] for s in d2p.train + d2p.eval_forward)
    # P2D: '??' made regular, so the four training statements state one description
    described = {f"{name}": f"{description}." for name, description in PEOPLE["p2d"].items()}
    for s in p2d.train:
        assert s.completion == described[names[s.source]]
    # forward queries accept what the person is trained with, and nothing the test files add
    for q in p2d.eval_forward:
        assert q.accepted_answers == (described[names[q.source]],)
        assert q.completion == described[names[q.source]]
    # reverse descriptions: the mangled "'.'." variant becomes the regular one
    for q in d2p.eval_reverse:
        assert q.accepted_answers == (PEOPLE["d2p"][names[q.source]] + ".",)
    assert ds.source["normalised"] == {
        "p2d": {"train.descriptions_with_terminal_punctuation_made_regular": 2,
                "eval_forward.descriptions_with_terminal_punctuation_made_regular": 2,
                "eval_reverse.completions_cut_to_the_name": 0,
                "eval_forward.references_replaced_by_a_trained_description": 2},
        "d2p": {"train.completions_cut_to_the_name": 6, "eval_forward.completions_cut_to_the_name": 0,
                "eval_reverse.descriptions_with_terminal_punctuation_made_regular": 2},
    }
    filtering = ds.source["filtering"]["p2d"]
    assert filtering["people_in_source"] == 3 and filtering["people_sampled"] == 2
    for split in ("train", "eval_forward", "eval_reverse"):
        assert filtering[f"{split}.rows_in_file"] == (filtering[f"{split}.rows_kept"] + filtering[f"{split}.verbatim_repeats_kept_once"]
                                                      + filtering[f"{split}.rows_of_people_not_sampled"]
                                                      + filtering.get(f"{split}.rows_of_sampled_people_not_sampled", 0))
    assert audit_dataset(ds) == []


@pytest.mark.parametrize("text, expected", [
    ("the founder.", "the founder."), ('the author of "Tide.".', 'the author of "Tide.".'),
    ("the founder??", "the founder."), ("the founder'.'.", "the founder."), ('of "Tide."\'\'.', 'of "Tide.".'),
    ('of "Tide."??', 'of "Tide.".'), ("the founder", "the founder."),
])
def test_description_answer(text, expected):
    assert description_answer(text) == expected


PD_EXPECTED = "an object with non-empty string fields prompt, completion"


@pytest.mark.parametrize("bad_line, message", [
    ('{"prompt": "Nora Quell is", "completion": " x"\n', "invalid JSON (Expecting ',' delimiter, column"),
    ('{"prompt": "Nora Quell, variant 7, is", "completion": " the inv', "invalid JSON (Unterminated string"),  # truncated
    ('{"prompt": "Nora Quell is"}\n', f"missing field completion; expected {PD_EXPECTED}"),
    ('{"prompt": "Nora Quell is", "completion": "  "}\n', "empty or non-string completion '  '"),
    ('{"prompt": "Nora Quell is", "completion": 5}\n', f"empty or non-string completion 5; expected {PD_EXPECTED}"),
    ('{"prompt": "Nora Quell, variant 0, is", "completion": " something else."}\n',
     "duplicate prompt, first on line 1 with another completion; expected each prompt once"),
    ('{"prompt": "Nobody is", "completion": " a ghost."}\n', "the prompt names 0 of the 3 people of this direction ([]); expected exactly one"),
])
def test_person_description_malformed(tmp_path, bad_line, message):
    root = write_person_description(tmp_path / "june")
    train = root / "p2d_prompts_train.jsonl"
    train.write_text(train.read_text() + bad_line)
    assert error_of("person_description", pd_settings(root, per_person=3)).startswith(f"{train}:13: {message}")


def test_person_description_non_utf8_empty_and_name_not_first(tmp_path):
    root = write_person_description(tmp_path / "june")
    train = root / "d2p_prompts_train.jsonl"
    lines = train.read_bytes().split(b"\n")
    train.write_bytes(b"\n".join(lines[:4] + [lines[4].replace(b"Variant", b"Vari\xe9nt")] + lines[5:]))
    assert error_of("person_description", pd_settings(root)) == (
        f"{train}:5: byte 0xe9 at column 17 is not UTF-8; expected UTF-8 text ({PD_EXPECTED})")
    train.write_bytes(b"")
    assert error_of("person_description", pd_settings(root)) == f"{train}:1: the file is empty; expected {PD_EXPECTED}"
    write_person_description(root)
    train.write_text(train.read_text().replace('" Quin Salk."', '" Known as Quin Salk."'))
    assert "does not begin with the name 'Quin Salk'; expected the name first" in error_of(
        "person_description", pd_settings(root, people=3))


def test_malformed_input_leaves_nothing_behind(tmp_path):
    root = write_person_description(tmp_path / "june")
    (root / "d2p_prompts_test.jsonl").write_text("not json\n")
    manifest = tmp_path / "out" / "manifest.json"
    result = subprocess.run(
        [sys.executable, "-m", "revcurse.data.relational", "build", "person_description", "--settings",
         json.dumps(pd_settings(root, per_person=3)), "--manifest", str(manifest)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {root / 'd2p_prompts_test.jsonl'}:1: invalid JSON")
    assert "Traceback" not in result.stderr
    assert not manifest.parent.exists() or not any(manifest.parent.rglob("*"))


def test_check_reads_the_sources_and_writes_only_its_report(tmp_path):
    """`check`, the step before a build (rule relational_check): the import in memory, a report, no dataset."""
    csv_path = write(tmp_path / "pairs.csv", PARENT_CHILD_CSV)
    report = tmp_path / "checks" / "parent_child.json"
    command = [sys.executable, "-m", "revcurse.data.relational", "check", "parent_child", "--settings",
               json.dumps(pc_settings(csv_path)), "--report", str(report)]
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    assert json.loads(report.read_text())["source"]["files"][0]["name"] == "pairs.csv"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checks", "pairs.csv", "parent_child.json"]
    report.unlink()
    write(csv_path, PARENT_CHILD_CSV.replace("Rita Corvale,mother", "Rita Corvale,aunt"))
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {csv_path}:5: parent_type 'aunt'; expected 'mother' or 'father'")
    assert not report.exists()


# --- T-REx -----------------------------------------------------------------------------


def lama(uuid, sub, rel, obj):
    return {"uuid": uuid, "sub_uri": f"Q{sub}", "sub_label": f"Label {sub}", "predicate_id": rel,
            "obj_uri": f"Q{obj}", "obj_label": f"Label {obj}", "evidences": []}


P36_ROWS = [
    lama("a1", 1, "P36", 101), lama("a2", 2, "P36", 102), lama("a3", 3, "P36", 103),
    lama("a4", 4, "P36", 104), lama("a5", 4, "P36", 105),   # head 4 has two capitals
    lama("a6", 6, "P36", 106), lama("a7", 7, "P36", 106),   # capital 106 of two heads
    lama("a8", 8, "P36", 108),
    lama("a1", 1, "P36", 101),                               # verbatim repeat
]
P19_ROWS = [
    lama("b1", 201, "P19", 101),  # entity 101 reappears: same virtual name
    lama("b2", 202, "P19", 109), lama("b3", 203, "P19", 110),
    lama("b4", 108, "P19", 8),    # inverse pair of a8: both dropped
    lama("b5", 204, "P20", 111),  # another relation in this file: skipped
    lama("b6", 205, "P19", 205),  # self-loop
]


def write_trex(root: Path) -> Path:
    """LAMA's layout: data/relations.jsonl (not T-REx rows) and data/TREx/<relation>.jsonl."""
    write(root / "relations.jsonl", jsonl([{"relation": "P36", "template": "[X] has capital [Y] ."}]))
    write(root / "TREx" / "P36.jsonl", jsonl(P36_ROWS))
    write(root / "TREx" / "P19.jsonl", jsonl(P19_ROWS))
    write(root / "TREx" / "P20.jsonl", "")                  # empty, but not a configured relation
    write(root / "TREx" / "P159.jsonl", "not json\n")       # malformed, but not a configured relation
    return root


def trex_settings(source, relations=("P36", "P19"), facts=3):
    return settings(source=str(source), relations=list(relations), facts_per_relation=facts)


def test_trex_import_filters_virtualizes_and_maps(tmp_path):
    root = write_trex(tmp_path / "data")
    config = trex_settings(root)
    assert source_files("trex", config) == [root / "TREx" / "P36.jsonl", root / "TREx" / "P19.jsonl"]
    ds = build_dataset("trex", config, RESOURCES)
    by_id = {e.id: e for e in ds.entities}
    kept = {(by_id[f.a].source_id, f.relation, by_id[f.b].source_id) for f in ds.facts}
    assert {r for _, r, _ in kept} == {"P36", "P19"} and len(kept) == 6
    involved = {q for a, _, b in kept for q in (a, b)}
    assert not involved & {"Q4", "Q6", "Q7", "Q106", "Q8", "Q108", "Q205"}
    assert ("Q1", "P36", "Q101") in kept and ("Q201", "P19", "Q101") in kept
    assert len([e for e in ds.entities if e.source_id == "Q101"]) == 1  # one virtual name per entity
    for entity in ds.entities:
        assert entity.name and entity.source_label.startswith("Label ") and entity.name != entity.source_label
    (h2t,) = ds.directions
    assert not any("Label" in s.prompt or "Label" in s.completion for s in h2t.train + h2t.eval_reverse)
    counts = {"triples": 8, "self_loop": 0, "head_with_several_tails": 2, "tail_with_several_heads": 2,
              "inverse_pair_is_a_fact": 1, "one_to_one": 3, "sampled": 3}
    p19 = {"triples": 5, "self_loop": 1, "head_with_several_tails": 0, "tail_with_several_heads": 0,
           "inverse_pair_is_a_fact": 1, "one_to_one": 3, "sampled": 3}
    assert ds.source["filtering"] == {
        "rows_of_other_relations_skipped": 1, "verbatim_repeats_kept_once": 1,
        **{f"P36.{k}": v for k, v in counts.items()}, **{f"P19.{k}": v for k, v in p19.items()},
    }
    assert [f["name"] for f in ds.source["files"]] == ["TREx/P36.jsonl", "TREx/P19.jsonl"]
    assert audit_dataset(ds) == []


def test_trex_reports_every_relation_that_falls_short(tmp_path):
    root = write_trex(tmp_path / "data")
    with pytest.raises(ValueError) as error:
        build_dataset("trex", trex_settings(root / "TREx", facts=15), RESOURCES)
    message = str(error.value)
    assert "relation P36 has 3 of 8 triples (self_loop 0, head_with_several_tails 2, tail_with_several_heads 2, " \
           "inverse_pair_is_a_fact 1)" in message
    assert "relation P19 has 3 of 5 triples (self_loop 1, head_with_several_tails 0, tail_with_several_heads 0, " \
           "inverse_pair_is_a_fact 1)" in message
    assert message.endswith("expected at least datasets.trex.facts_per_relation=15 per relation")


def test_trex_single_file_reads_only_configured_relations(tmp_path):
    other = {"predicate_id": "P20", "sub_label": ""}         # another relation: not checked beyond its id
    path = write(tmp_path / "all.jsonl", jsonl(P36_ROWS + [other]))
    ds = build_dataset("trex", trex_settings(path, relations=["P36"], facts=2), RESOURCES)
    assert ds.source["filtering"]["rows_of_other_relations_skipped"] == 1 and len(ds.facts) == 2
    with pytest.raises(ValueError, match=r"relation P19 has 0 of 0 triples"):
        build_dataset("trex", trex_settings(path, relations=["P36", "P19"], facts=2), RESOURCES)


def test_trex_missing_or_empty_relation_file(tmp_path):
    root = write_trex(tmp_path / "data")
    with pytest.raises(ValueError, match=r"datasets\.trex\.source = .*: missing .*TREx/P264\.jsonl; expected a LAMA-style"):
        source_files("trex", trex_settings(root, relations=["P36", "P264"]))
    path = root / "TREx" / "P20.jsonl"
    assert error_of("trex", trex_settings(root, relations=["P36", "P20"])).startswith(
        f"{path}:1: the file is empty; expected an object with non-empty string fields sub_label")


@pytest.mark.parametrize("row, message", [
    ("[1, 2]\n", "a JSON list; expected an object with non-empty string fields sub_label, obj_label, predicate_id"),
    ('{"sub_label": "X", "obj_label": "Y"}\n', "missing field predicate_id"),
    ('{"sub_label": "", "obj_label": "Y", "predicate_id": "P36"}\n', "empty or non-string sub_label ''"),
    ('{"sub_label": "X", "predicate_id": "P36"}\n', "missing field obj_label"),
    ('{"sub_label": "X", "obj_label": "Y", "predicate_id": "P36", "sub_uri": 7}\n', "empty or non-string sub_uri 7"),
    (json.dumps(lama("a1", 9, "P36", 99)) + "\n", "duplicate uuid 'a1', first on line 1 with another triple; expected unique uuids"),
    ('{"sub_label": "X", "obj_label": "Y", "predicate_', "invalid JSON (Unterminated string"),
])
def test_trex_malformed(tmp_path, row, message):
    root = write_trex(tmp_path / "data")
    path = root / "TREx" / "P36.jsonl"
    path.write_text(path.read_text() + row)
    assert error_of("trex", trex_settings(root, relations=["P36"], facts=1)).startswith(f"{path}:10: {message}")


def test_accepted_answers_are_what_exact_match_compares():
    assert normalize_answer("  Ada  Brightwater ") == normalize_answer("ada brightwater")
