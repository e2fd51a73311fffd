"""Bad input: one clear error before any job that costs compute, and never a good output lost. An input a job
would reject stops the run in a cheap check before Snakemake reruns (and so first deletes the outputs of) the job
that owns a dataset or a trained model; a bad config value stops the run when the config is read."""
import subprocess
import sys

import pandas as pd
import pytest

from helpers.workflow import ROOT, copy_workflow, snakemake

QUICK = ("--config", "preset=quick")
PAIRS = "child,parent,parent_type\n" + "".join(
    f"Kid{i} Stone,Parent{i} Stone,{'mother' if i % 2 else 'father'}\n" for i in range(12))


def files(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_malformed_source_keeps_the_dataset_built_before(tmp_path):
    root = copy_workflow(tmp_path)
    (root / "pairs.csv").write_text(PAIRS)
    (root / "mine.yaml").write_text("datasets: {parent_child: {source: pairs.csv, pairs: 8}}\n")
    target = ("results/data/parent_child/manifest.json", "--configfile", "mine.yaml")
    snakemake(*target, cwd=root)
    built = files(root / "results/data/parent_child")
    with open(root / "pairs.csv", "a") as source:
        source.write("Kid99 Stone,Parent99 Stone,aunt\n")
    output = snakemake(*target, cwd=root, check=False)
    assert "error: pairs.csv:14: parent_type 'aunt'; expected 'mother' or 'father'" in output
    assert "Error in rule relational_check" in output and "Error in rule parent_child_dataset" not in output
    assert files(root / "results/data/parent_child") == built


def test_toy_data_training_would_reject_keeps_the_trained_model(tmp_path):
    root = copy_workflow(tmp_path)
    snakemake("results/data/toy/L6.check.json", cwd=root)
    run = root / "results/quick/toy/arm/L6/seed0"           # a finished run, as far as Snakemake can tell
    run.mkdir(parents=True)
    for name in ("model.pt", "snapshots.pt"):
        (run / name).write_bytes(b"trained")
    target = ("results/quick/toy/arm/L6/seed0/model.pt", *QUICK)
    snakemake(*target, "--touch", cwd=root)
    data = root / "results/data/toy/L6.parquet"
    frame = pd.read_parquet(data)
    frame.assign(sequence=frame["sequence"].str.replace("a", "#")).to_parquet(data)
    output = snakemake(*target, cwd=root, check=False)
    assert f"error: {data.relative_to(root)}: column 'sequence' holds tokens ['#']; expected only 0ab" in output
    assert "Error in rule toy_data_check" in output and "Error in rule train_toy" not in output
    assert files(run) == {run / "model.pt": b"trained", run / "snapshots.pt": b"trained"}


@pytest.mark.parametrize("arguments, overlay, expected", [
    # the real reason, not ablation.reference_models (the grid has no valid cell left)
    ((), "toy: {model_defaults: {n_heads: 3}}",
     "config: toy.models.mdm (over toy.model_defaults and toy.train): ModelConfig: d_model=64 is not divisible by n_heads=3"),
    ((), "toy: {eval: {top_k: 100}}", "config: toy.eval.top_k = 100; expected at most 54, the size of the toy vocabulary"),
    (("toy={train: {steps: 50}}",), "{}",                  # more --config values
     "config: toy.train.steps = '50': it is not of type 'integer'. --config reads nested values as strings"),
    ((), "toyy: 1", "config: unknown key(s) 'toyy' under the top level ('toyy': did you mean 'toy'?)"),
])
def test_a_bad_config_stops_the_dry_run_in_one_line(workdir, arguments, overlay, expected):
    (workdir / "mine.yaml").write_text(overlay + "\n")
    output = snakemake("-n", "results/quick/table2.csv", "--configfile", "mine.yaml", *QUICK, *arguments,
                       cwd=workdir, check=False)
    assert expected in output and "Failed validating" not in output and "Traceback" not in output


@pytest.mark.parametrize("overlay, expected", [
    ("toy: {train: {precision: fp64}}", "config: toy.train.precision = 'fp64': it is not one of ['auto', 'fp32', 'bf16']"),
    ("toy: {eval: {top_k: 100}}", "config: toy.eval.top_k = 100; expected at most 54, the size of the toy vocabulary"),
])
def test_a_bad_value_gets_the_same_line_from_every_entry_point(workdir, overlay, expected):
    """The workflow, the command line and a benchmark all load the config with revcurse.pipeline.config.load_config."""
    bad = workdir / "bad.yaml"
    bad.write_text(overlay + "\n")

    def run(*arguments):
        result = subprocess.run([sys.executable, *arguments], cwd=ROOT, capture_output=True, text=True)
        return result.returncode, result.stdout + result.stderr

    outputs = {
        "snakemake": (1, snakemake("-n", "--configfile", bad.name, *QUICK, cwd=workdir, check=False)),
        "command line": run("-m", "revcurse.pipeline", "config", "--configfile", str(bad), "--set", "preset=quick"),
        "benchmark": run("benchmarks/toy_speed.py", "--tiny", "--device", "cpu", "--configfile", str(bad)),
    }
    for entry, (status, output) in outputs.items():
        assert status != 0 and expected in output and "Traceback" not in output, f"{entry}:\n{output}"


@pytest.mark.parametrize("target, expected", [
    ("results/quick/toy/gpt/L6/seed0/model.pt", "toy model 'gpt' (in a target path or a config key) is not in "
                                                "toy.models; expected one of mdm, arm"),
    ("results/quick/llm/gpt/parent_child/p2c/seed1/checkpoints.json",
     "large model 'gpt' (in a target path or a config key) is not in llm.models; expected one of llada, "),
])
def test_an_unknown_model_in_a_target_names_the_known_ones(workdir, target, expected):
    output = snakemake("-n", target, *QUICK, cwd=workdir, check=False)
    assert expected in output and "KeyError" not in output
