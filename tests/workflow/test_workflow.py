"""The workflow as users call it: dry runs, the cluster profile, and the quick toy stage end to end."""
import json
import re

import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from helpers.workflow import job_counts, snakemake


def test_dry_run_all_paper_grid(workdir):
    counts = job_counts(snakemake("-n", "all", cwd=workdir))
    assert counts["train_toy"] == counts["evaluate_toy"] == counts["evaluate_toy_over_training"] == 2 * 4 * 3
    assert counts["toy_dataset"] == 4 and counts["table2"] == counts["toy_training_curves"] == 1
    assert counts["toy_data_check"] == counts["toy_dataset"] + counts["toy_dataset_attention_only"]   # every toy data file


def test_dry_run_table2_builds_only_the_toy_stage(workdir):
    counts = job_counts(snakemake("-n", "results/table2.csv", cwd=workdir))
    assert set(counts) == {"toy_dataset", "toy_data_check", "train_toy", "evaluate_toy", "evaluate_toy_over_training",
                           "table2"}


def test_slurm_profile_requests_gpus_for_training_only(workdir):
    output = snakemake("--profile", "slurm", "-n", "all", cwd=workdir)
    jobs = output.split("\nrule ")
    train = [j for j in jobs if j.startswith("train_toy:")]
    data = [j for j in jobs if j.startswith("toy_dataset:")]
    assert train and all(re.search(r"resources:.*\bgpu=1\b", j) for j in train)
    assert data and not any("gpu=" in j for j in data)


def test_lint_is_clean(workdir):
    assert "Congratulations, your workflow is in a good condition!" in snakemake("--lint", cwd=workdir)


def test_a_quick_run_never_writes_the_paper_presets_paths(workdir):
    paper = snakemake("-n", "results/table2.csv", cwd=workdir)
    assert "output: results/table2.csv, results/table2.md" in paper
    quick = snakemake("-n", "results/quick/table2.csv", "--config", "preset=quick", cwd=workdir)
    assert "output: results/quick/table2.csv, results/quick/table2.md" in quick
    assert "results/table2" not in quick.replace("results/quick/", "")
    # The paper's path asked for under the quick preset: a stop that names the quick one, not "no rule".
    refused = snakemake("-n", "results/table2.csv", "--config", "preset=quick", cwd=workdir, check=False)
    assert ("results/table2.csv is the paper preset's output; preset quick is a smoke test and writes "
            "results/quick/table2.csv instead") in refused


def test_quick_toy_stage_end_to_end(quick_all):
    assert not (quick_all / "results/table2.csv").exists()        # the paper preset's path: untouched
    table = pd.read_csv(quick_all / "results/quick/table2.csv")
    assert len(table) == 2 * 2 * 2 * 2              # L in {6, 8} x {mdm, arm} x {forward, reverse} x {final, best}
    assert set(table["preset"]) == {"quick"}
    final, best = (table[table["selection"] == s] for s in ("final", "best"))
    assert table["seeds"].eq("0 / 1").all() and final["samples"].eq(2 * 26 * 20).all()
    assert best["samples"].eq(2 * 26 * 10).all() and best["best_steps"].str.match(r"\d+ / \d+").all()
    assert ((table["ci95_low_pct"] <= table["mean_pct"]) & (table["mean_pct"] <= table["ci95_high_pct"])).all()
    arm = table[table.model == "arm"].set_index(["L", "direction"])["mean_pct"]
    assert (arm.xs("forward", level="direction") > arm.xs("reverse", level="direction")).all()
    # The paper's contrast survives the small settings: the MDM answers reverse queries, the ARM does not.
    reverse = final[final.direction == "reverse"].pivot(index="L", columns="model", values="mean_pct")
    assert (reverse["mdm"] >= reverse["arm"] + 20).all(), reverse
    markdown = (quick_all / "results/quick/table2.md").read_text()
    assert markdown.startswith("**quick preset — a smoke test of the pipeline") and "preset: **quick**" in markdown
    log = (quick_all / "logs/quick/toy/train/mdm_L6_seed0.log").read_text()
    assert re.search(r"step \d+/\d+ +loss .* ETA", log)    # progress is visible in the log
    evaluation = (quick_all / "logs/quick/toy/eval/mdm_L6_seed0.log").read_text()
    assert re.search(r"generations (\d+)/\1 \(100%\), [\d.]+ s, ETA 0\.0 min", evaluation)


def test_the_console_shows_no_specs_and_every_log_starts_with_its_command(quick_all):
    console = min((quick_all / ".snakemake/log").glob("*.snakemake.log")).read_text()     # the run itself
    assert "--spec" not in console and '"model_fields"' not in console and "Finished job" in console
    log = (quick_all / "logs/quick/toy/train/mdm_L6_seed0.log").read_text()
    assert log.startswith("command: python -m revcurse.toy train --spec {") and '"model_fields": {' in log


def test_rerun_one_seed_touches_only_its_jobs(quick_all):
    target = "results/quick/toy/mdm/L6/seed1/model.pt"
    # Both --forcerun and --config take several values: the target goes first.
    output = snakemake("results/quick/table2.csv", "-n", "--forcerun", target, "--config", "preset=quick",
                       cwd=quick_all)
    assert job_counts(output) == {"train_toy": 1, "evaluate_toy": 1, "evaluate_toy_over_training": 1, "table2": 1}
    assert f"output: {target}" in output


def test_every_output_of_a_quick_run_names_its_code_version(quick_all):
    """Tables as columns, Parquet files and figures (PNG, PDF) in their metadata. The datasets are left
    out: their manifest identifies them (sha256, generator version), the same bytes under every commit."""
    results = quick_all / "results/quick"
    for csv in results.rglob("*.csv"):
        columns = pd.read_csv(csv, nrows=1).columns
        assert {"config_hash", "code_version"} <= set(columns), csv
    for parquet in results.rglob("*.parquet"):
        assert "code_version" in (pq.read_schema(parquet).metadata or {}).get(b"revcurse", b"").decode(), parquet
    for png in results.rglob("*.png"):
        assert "code_version" in json.loads(Image.open(png).info["revcurse"]), png
    for pdf in results.rglob("*.pdf"):
        assert b"code_version" in pdf.read_bytes(), pdf
