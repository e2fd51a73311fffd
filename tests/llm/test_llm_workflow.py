"""The large-scale stage as users call it: paper dry runs, the missing-weights stop, and the quick
preset end to end on the stand-ins (in a copy of the workflow, like tests/workflow/test_workflow.py)."""
import json
import re

import pandas as pd
import pytest

from helpers.llm import COMMIT, record_revision, registry_entry
from helpers.workflow import job_counts, snakemake
from revcurse.llm.tables import STANDIN_NOTE

REAL_MODELS = ["llada", "llama", "qwen", "dream"]
DATA_JOBS = {"relational_check": 3, "parent_child_dataset": 1, "person_description_dataset": 1, "trex_dataset": 1,
             "relational_audit": 1}


@pytest.fixture
def no_hf_cache(monkeypatch, tmp_path):
    """An empty Hugging Face cache, so the tests behave the same on a machine that has the weights."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf/hub"))


def test_paper_dry_run_of_table1_lists_the_full_grid_and_only_it(workdir, no_hf_cache):
    output = snakemake("-n", "results/table1.csv", cwd=workdir)
    # llm.train.stack_seeds: one training job per (model, task) trains its 3 seeds; each seed is evaluated.
    assert job_counts(output) == {**DATA_JOBS, "llm_finetune": 4 * 5, "llm_evaluate": 4 * 5 * 3, "llm_tables": 1}
    job = next(j for j in output.split("\nrule ") if j.startswith("llm_finetune:"))
    outputs = re.search(r"output: (.*)", job).group(1).split(", ")
    assert [re.search(r"/seed(\d+)/checkpoints\.json$", o).group(1) for o in outputs] == ["1", "42", "1234"]
    for model in REAL_MODELS:   # no weights on this machine: the dry run warns, once per model
        assert output.count(f"WARNING (dry run; a real run stops here): config.yaml: llm.models.{model}.weights") == 1


def test_stacking_seeds_makes_a_third_as_many_training_jobs(workdir, no_hf_cache, tmp_path):
    (tmp_path / "unstacked.yaml").write_text(json.dumps({"llm": {"train": {"stack_seeds": False}}}))
    unstacked = snakemake("-n", "results/table1.csv", "--configfile", str(tmp_path / "unstacked.yaml"), cwd=workdir)
    assert job_counts(unstacked)["llm_finetune"] == 3 * 4 * 5 and job_counts(unstacked)["llm_evaluate"] == 60
    job = next(j for j in unstacked.split("\nrule ") if j.startswith("llm_finetune:"))
    assert re.search(r"output: \S+/seed\d+/checkpoints\.json\n", job)            # one run per job


def test_stacking_the_seeds_of_stand_ins_is_an_error(workdir, tmp_path):
    (tmp_path / "standins.yaml").write_text(json.dumps({"llm": {"grid": {"models": ["standin_llama"]}}}))
    output = snakemake("-n", "results/table1.csv", "--configfile", str(tmp_path / "standins.yaml"), cwd=workdir,
                       check=False)
    assert "llm.train.stack_seeds is true, but llm.grid.models has ['standin_llama']" in output
    assert "set llm.train.stack_seeds: false" in output


def test_a_real_runs_plan_resolves_with_the_pinned_revisions(workdir, tmp_path, monkeypatch):
    """config.yaml pins every real model's commit: with a Hugging Face cache holding those snapshots
    (as `hf download REPO --revision COMMIT` leaves it: no branch ref), the paper's Table 1 plan
    resolves without a warning."""
    cache = tmp_path / "hf" / "hub"
    for model in REAL_MODELS:
        entry = registry_entry(model)
        snapshot = cache / f"models--{entry['weights'].replace('/', '--')}" / "snapshots" / entry["revision"]
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text("{}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    output = snakemake("-n", "results/table1.csv", cwd=workdir)
    assert "WARNING" not in output and job_counts(output)["llm_finetune"] == 20
    assert job_counts(output)["llm_evaluate"] == 60


def test_a_weights_overlay_points_the_registry_at_local_checkpoints(workdir, tmp_path):
    overlay = {"llm": {"models": {}}}
    for model in REAL_MODELS:
        (tmp_path / model).mkdir()
        (tmp_path / model / "config.json").write_text("{}")
        overlay["llm"]["models"][model] = {"weights": str(tmp_path / model)}
    (tmp_path / "weights.yaml").write_text(json.dumps(overlay))
    # Plain directories that record no commit: the dry run names the pinned one, once per model.
    output = snakemake("-n", "results/table1.csv", "--configfile", str(tmp_path / "weights.yaml"), cwd=workdir)
    for model in REAL_MODELS:
        revision, repository = registry_entry(model)["revision"], registry_entry(model)["repository"]
        assert output.count(f"WARNING (dry run; a real run stops here): config.yaml: llm.models.{model}.revision "
                            f"= {revision} but the weights at {tmp_path / model} do not record their revision") == 1
        assert f"`hf download {repository} --revision {revision} --local-dir DIR`" in output
    for model in REAL_MODELS:   # the user states the commit the weights hold
        overlay["llm"]["models"][model]["revision_stated"] = True
    (tmp_path / "weights.yaml").write_text(json.dumps(overlay))
    output = snakemake("-n", "results/table1.csv", "--configfile", str(tmp_path / "weights.yaml"), cwd=workdir)
    assert "WARNING" not in output and job_counts(output)["llm_finetune"] == 20
    for model in REAL_MODELS:   # pinned, and the directories record that commit (hf download --local-dir)
        record_revision(tmp_path / model, COMMIT)
        overlay["llm"]["models"][model] = {"weights": str(tmp_path / model), "revision": COMMIT}
    (tmp_path / "weights.yaml").write_text(json.dumps(overlay))
    output = snakemake("-n", "results/table1.csv", "--configfile", str(tmp_path / "weights.yaml"), cwd=workdir)
    assert "WARNING" not in output and job_counts(output)["llm_finetune"] == 20


def test_slurm_profile_requests_a_gpu_per_training_and_evaluation_job(workdir):
    jobs = snakemake("--profile", "slurm", "-n", "results/table1.csv", cwd=workdir).split("\nrule ")
    gpu_jobs = [j for j in jobs if j.startswith(("llm_finetune:", "llm_evaluate:"))]
    assert len(gpu_jobs) == 20 + 60 and all(re.search(r"resources:.*\bgpu=1\b", j) for j in gpu_jobs)
    assert not any("gpu=" in j for j in jobs if j.startswith("llm_tables:"))


@pytest.fixture
def quick_tables(quick_all):
    """The session's finished quick run (conftest.quick_all), which includes Table 1."""
    return quick_all


def test_quick_preset_runs_the_stand_ins_end_to_end(quick_tables):
    table = pd.read_csv(quick_tables / "results/quick/table1.csv")
    assert len(table) == 2 * 2 * 2                    # {best, final} x {LLaDA, LLaMA stand-in} x {fwd, rev}
    assert set(table["preset"]) == {"quick"} and table["config_hash"].notna().all()
    assert set(table["model_revision"]) == {"stand-in"}
    accuracy = table.set_index(["selection", "model", "direction"])["mean_pct"]
    assert accuracy["best", "standin_llama", "forward"] >= 50      # the ARM learns the trained direction
    assert accuracy["best", "standin_llama", "reverse"] <= 5       # and not the reverse
    assert accuracy["best", "standin_llada", "forward"] >= 20       # trained from scratch, it learns P2C (~50%)
    assert (accuracy.xs("best") >= accuracy.xs("final")).all()
    markdown = (quick_tables / "results/quick/table1.md").read_text()
    assert "**quick preset — a smoke test of the pipeline: stand-in models" in markdown.split("## ")[0]
    assert "Best checkpoint per direction" in markdown and "Final checkpoint" in markdown
    assert STANDIN_NOTE in markdown and "model revisions: LLaDA stand-in stand-in, LLaMA stand-in stand-in" in markdown
    assert "No run of this preset's grid" in (quick_tables / "results/quick/table5.md").read_text()
    assert len(pd.read_csv(quick_tables / "results/quick/table4.csv")) == 2 * 2 * 2
    for table in ("table4", "table5", "table6"):
        assert "**quick preset — a smoke test" in (quick_tables / f"results/quick/{table}.md").read_text()
    assert not (quick_tables / "results/table1.csv").exists()     # the paper preset's path: untouched


def test_quick_predictions_have_one_row_per_query_and_checkpoint(quick_tables):
    run = quick_tables / "results/quick/llm/standin_llada/parent_child/p2c/seed1"
    predictions = pd.read_parquet(run / "predictions.parquet")
    for column in ("model", "dataset", "direction", "seed", "epoch", "prompt", "prediction", "target", "correct"):
        assert column in predictions
    assert sorted(predictions["epoch"].unique()) == [20, 40]
    assert predictions.groupby(["epoch", "direction"]).size().eq(250).all()
    checkpoints = json.loads((run / "checkpoints.json").read_text())
    assert sorted(checkpoints["checkpoints"]) == ["20", "40"] and len(checkpoints["epoch_loss"]) == 40
    assert checkpoints["model_revision"] == checkpoints["provenance"]["model_revision"] == "stand-in"
    assert set(predictions["model_revision"]) == {"stand-in"}
    logs = quick_tables / "logs/quick/llm"
    assert re.search(r"epoch 40/40 loss", (logs / "finetune/standin_llada_parent_child_p2c_seed1.log").read_text())
    evaluation = (logs / "evaluate/standin_llada_parent_child_p2c_seed1.log").read_text()
    assert re.search(r"epoch 20 forward: .*; queries 250/1000 \(25%\), [\d.]+ s, ETA [\d.]+ min", evaluation)
    assert re.search(r"epoch 40 reverse: .*; queries 1000/1000 \(100%\), [\d.]+ s, ETA 0\.0 min", evaluation)
