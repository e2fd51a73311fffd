"""End to end on the real Berglund files: the large-scale stage, with the quick preset's
stand-ins, imports the original data (not the embedded default), trains on it and evaluates
it, as users run it (`snakemake` in a copy of the workflow). Sizes and epochs are cut to the
least that exercises every step; the answers are the long imported ones, so the generation
length is the paper's."""
import json

import pandas as pd
import pytest
from test_relational_berglund import BERGLUND, CSV, JUNE

from helpers.workflow import copy_workflow, snakemake
from revcurse.data.relational import load_dataset

MODELS = ["standin_llada", "standin_llama"]
TASKS = {"P2C": ("parent_child", "p2c"), "C2P": ("parent_child", "c2p"),
         "P2D": ("person_description", "p2d"), "D2P": ("person_description", "d2p")}


@pytest.mark.skipif(not BERGLUND.is_dir(), reason="original Berglund et al. files not present")
def test_quick_standins_train_and_evaluate_on_imported_berglund_data(tmp_path):
    (tmp_path / "workflow").mkdir()
    root = copy_workflow(tmp_path / "workflow")
    overlay = {
        "datasets": {"parent_child": {"source": str(CSV), "pairs": 8},
                     "person_description": {"source": str(JUNE), "people": 1, "statements_per_person": 30}},
        "presets": {"quick": {"llm": {
            "grid": {"models": MODELS, "tasks": list(TASKS), "seeds": [1]},
            "train": {"epochs": 1, "checkpoint_every": 1},
            # imported answers are longer than the quick preset's 8 tokens: the paper's 32
            "eval": {"max_new_tokens": 32, "llada": {"steps": 4, "block_length": 32}, "dream": {"steps": 4}},
        }}},
    }
    (tmp_path / "berglund.json").write_text(json.dumps(overlay))
    snakemake("--config", "preset=quick", "--configfile", str(tmp_path / "berglund.json"), "--cores", "2",
              "results/quick/table1.csv", cwd=root)

    datasets = {}
    for name, kind in (("parent_child", "berglund_parent_child_csv"),
                       ("person_description", "berglund_person_description_jsonl")):
        datasets[name], manifest = load_dataset(root / "results/data" / name / "manifest.json")
        assert manifest["source"]["kind"] == kind                 # imported, not the embedded default
        assert manifest["provenance"]["source_path"] == overlay["datasets"][name]["source"]
    assert (root / "results/data/relational_audit.json").exists()

    table = pd.read_csv(root / "results/quick/table1.csv")
    assert set(table["preset"]) == {"quick"}
    assert {(t, m) for t, m in zip(table["task"], table["model"])} == {(t, m) for t in TASKS for m in MODELS}
    for task, (name, direction) in TASKS.items():
        records = next(d for d in datasets[name].directions if d.name == direction)
        for model in MODELS:
            run = root / f"results/quick/llm/{model}/{name}/{direction}/seed1"
            checkpoints = json.loads((run / "checkpoints.json").read_text())
            assert len(checkpoints["epoch_loss"]) == 1 and checkpoints["epoch_loss"][0] > 0
            predictions = pd.read_parquet(run / "predictions.parquet")
            forward = predictions[predictions.direction == "forward"]
            reverse = predictions[predictions.direction == "reverse"]
            assert list(forward.prompt) == [q.prompt for q in records.eval_forward]     # the imported queries
            assert len(reverse) == len(records.eval_reverse)
            trained = {r.completion for r in records.train}
            assert all(set(a) <= trained for a in forward.accepted_answers)          # answers the training gives
