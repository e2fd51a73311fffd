"""The importers on the real Berglund et al. files (../shared/data/berglund-reversal-curse/, read
in place, never copied): paper sizes, answers exact match can credit, answer sets true to the source."""
import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from revcurse.data.relational import build_dataset
from revcurse.data.relational.audit import audit_dataset
from revcurse.data.relational.naming import load_resources
from revcurse.data.relational.records import normalize_answer

BERGLUND = Path(__file__).resolve().parents[3] / "shared" / "data" / "berglund-reversal-curse"
CSV = BERGLUND / "celebrity_relations" / "parent_child_pairs.csv"
JUNE = BERGLUND / "reverse_experiments" / "june_version_7921032488"

pytestmark = pytest.mark.skipif(not BERGLUND.is_dir(), reason="original Berglund et al. files not present")


@pytest.fixture(scope="module")
def imported():
    resources = load_resources()
    return {
        "parent_child": build_dataset("parent_child", {"source": str(CSV), "seed": 0, "pairs": 250,
                                                       "children_with_both_parents": 100}, resources),
        "person_description": build_dataset("person_description", {"source": str(JUNE), "seed": 0, "people": 10,
                                                                   "statements_per_person": 30}, resources),
    }


def direction(dataset, name):
    return next(d for d in dataset.directions if d.name == name)


def raw_jsonl(name):
    return [json.loads(line) for line in (JUNE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_import_at_paper_size_passes_the_audit(imported):
    pc, pd_ = imported["parent_child"], imported["person_description"]
    assert len(pc.facts) == 250 and {f.relation for f in pc.facts} == {"mother", "father"}
    assert any(f.b == g.b and f.id != g.id for f in pc.facts for g in pc.facts)  # some children have both parents
    for d in pd_.directions:
        assert len(d.train) == 300 and set(Counter(s.fact_id for s in d.train).values()) == {30}
        assert len(d.eval_forward) == len(d.eval_reverse) == 100
    assert audit_dataset(pc) == [] and audit_dataset(pd_) == []


def test_every_training_answer_is_accepted_by_its_forward_queries(imported):
    """Exact match is fair: whatever a training statement answers, every forward query about
    the same fact accepts it (whole string, after the evaluator's normalisation)."""
    checked = 0
    for dataset in imported.values():
        for d in dataset.directions:
            accepted = defaultdict(set)
            for query in d.eval_forward:
                accepted[query.fact_id].add(frozenset(normalize_answer(a) for a in query.accepted_answers))
            for row in d.train:
                assert accepted[row.fact_id], f"{dataset.name}/{d.name}: no forward query about {row.fact_id}"
                for answers in accepted[row.fact_id]:
                    assert normalize_answer(row.completion) in answers, (dataset.name, d.name, row)
                checked += 1
    assert checked == 2 * 250 + 2 * 300


def test_d2p_answers_are_the_name_alone(imported):
    d2p = direction(imported["person_description"], "d2p")
    names = {e.id: e.name for e in imported["person_description"].entities}
    assert all(row.completion == names[row.target] for row in d2p.train + d2p.eval_forward)
    # every forward query accepts exactly its person's name
    assert all(q.accepted_answers == (names[q.target],) for q in d2p.eval_forward)
    # the manifest counts what was cut: the source's completions that were more than the name
    sampled = {names[row.target] for row in d2p.train}
    raw = [r["completion"].strip() for r in raw_jsonl("d2p_prompts_train.jsonl")
           if any(r["completion"].strip().startswith(n) for n in sampled)]
    assert len(raw) == 300
    normalised = imported["person_description"].source["normalised"]["d2p"]
    assert normalised["train.completions_cut_to_the_name"] == sum(c not in sampled for c in raw) > 0


def test_p2d_forward_queries_accept_the_trained_descriptions_only(imported):
    p2d = direction(imported["person_description"], "p2d")
    for query in p2d.eval_forward:
        trained = [row.completion for row in p2d.train if row.fact_id == query.fact_id]
        assert set(query.accepted_answers) == set(trained)
        assert query.accepted_answers[0] == Counter(trained).most_common(1)[0][0]  # most frequent first
        assert query.completion in query.accepted_answers
    # no mangled ending survives ("Lunar Wine'.'.", "...space??")
    texts = [a for q in p2d.eval_forward + direction(imported["person_description"], "d2p").eval_reverse
             for a in q.accepted_answers] + [row.completion for row in p2d.train]
    assert not [t for t in texts if t.endswith(("??", "'.'.", "''."))]
    assert all(t.endswith((".", '".')) for t in texts)


def test_parent_child_answer_sets_match_every_child_and_parent_in_the_csv():
    """"<parent>'s child is" accepts every child the CSV lists for that parent (a parent listed
    with several children is not sampled), "<child>'s parent is" every parent it lists."""
    children_of, parents_of, typed = defaultdict(set), defaultdict(set), defaultdict(dict)
    with open(CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            child, parent = row["child"].strip(), row["parent"].strip()
            children_of[parent].add(child)
            parents_of[child].add(parent)
            typed[child][row["parent_type"]] = parent
    assert children_of["Stellan Skarsgård"] and len(children_of["Stellan Skarsgård"]) > 1  # the audit's example
    ds = build_dataset("parent_child", {"source": str(CSV), "seed": 0, "pairs": 250,
                                        "children_with_both_parents": 100}, load_resources())
    names = {e.id: e.name for e in ds.entities}
    p2c, c2p = direction(ds, "p2c"), direction(ds, "c2p")
    for query in p2c.eval_forward + c2p.eval_reverse:   # "<parent>'s child is"
        assert set(query.accepted_answers) == children_of[names[query.source]], query.prompt
    for query in c2p.eval_forward + p2c.eval_reverse:   # "<child>'s parent is"
        assert set(query.accepted_answers) == parents_of[names[query.source]], query.prompt
    assert "Stellan Skarsgård" not in names.values()
    filtering = ds.source["filtering"]
    assert filtering["children_skipped.parent_has_other_children"] == sum(
        len(set(listed.values())) == len(listed) and child not in listed.values()
        and any(len(children_of[p]) > 1 for p in listed.values())
        for child, listed in typed.items()
    ) > 0
    skipped = sum(v for k, v in filtering.items() if k.startswith("children_skipped."))
    assert skipped + filtering["children_sampled"] == filtering["children_in_file"] == len(parents_of)
