"""Table 1 and Tables 4-6 from prediction rows: the model revision of every run is carried into the
tables and their header, and tables of stand-ins say why their reverse accuracy means nothing."""
import itertools

import pandas as pd

from revcurse.llm.tables import STANDIN_NOTE, seed_level, seed_table_markdown, table1, table1_markdown

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def predictions(revisions: dict[str, str]) -> pd.DataFrame:
    """Two checkpoints of one seed per model, forward right at the last, reverse never."""
    rows = [{"model": model, "label": model.upper(), "kind": "mdm" if model == "llada" else "arm", "task": "P2C",
             "dataset": "parent_child", "seed": 1, "epoch": epoch, "direction": direction, "fact_id": f"f{i}",
             "correct": direction == "forward" and epoch == 20, "preset": "paper", "code_version": "v",
             "model_revision": revision, "packages": "torch 2"}
            for (model, revision), epoch, direction, i in itertools.product(revisions.items(), (10, 20),
                                                                             ("forward", "reverse"), range(3))]
    return pd.DataFrame(rows)


def test_the_model_revision_of_every_run_reaches_the_tables():
    seeds = seed_level(predictions({"llada": COMMIT, "llama": "f" * 40}))
    summary = table1(seeds)
    assert dict(zip(summary["model"], summary["model_revision"])) == {"llada": COMMIT, "llama": "f" * 40}
    markdown = table1_markdown(summary, "hash")
    assert f"model revisions: LLADA {COMMIT}, LLAMA {'f' * 40}" in markdown and STANDIN_NOTE not in markdown
    assert f"LLADA {COMMIT}" in seed_table_markdown(seeds, "table4", "hash")


def test_tables_of_stand_ins_say_why_their_reverse_accuracy_means_nothing():
    summary = table1(seed_level(predictions({"llada": "stand-in", "llama": "stand-in"})))
    assert STANDIN_NOTE in table1_markdown(summary, "hash")
