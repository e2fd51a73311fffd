"""The shipped reference run (reference/paper/): its tables follow from its per-run files."""
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import workflow
from revcurse.core.io import listed_values, read_parquets
from revcurse.pipeline.config import load_config
from revcurse.toy.experiment import DEFAULT_PRESET
from revcurse.toy.specs import toy_model_fields
from revcurse.toy.tables import decoding_choices, table2

REFERENCE = Path(__file__).resolve().parents[2] / "reference/paper"


def shipped(name: str) -> list[Path]:
    return sorted((REFERENCE / "runs/paper_bf16").rglob(name))


def test_table2_rebuilds_from_the_shipped_evaluations():
    evals, curves = shipped("eval.parquet"), shipped("accuracy_over_training.parquet")
    assert evals and len(curves) == len(evals)
    rebuilt = table2(read_parquets(evals), read_parquets(curves))
    table = pd.read_csv(REFERENCE / "table2.csv", keep_default_na=False, na_values=[""])
    assert len(rebuilt) == len(table)
    for column in ("L", "model", "direction", "selection", "per_seed_pct", "seeds", "samples"):
        assert rebuilt[column].astype(str).tolist() == table[column].astype(str).tolist(), column
    for column in ("mean_pct", "seed_ci95_low_pct", "seed_ci95_high_pct", "ci95_low_pct", "ci95_high_pct"):
        pd.testing.assert_series_equal(rebuilt[column], table[column], check_names=False, atol=1e-4, rtol=0)


def test_decoding_choices_rebuild_from_the_shipped_curves():
    rebuilt = decoding_choices(read_parquets(shipped("accuracy_over_training.parquet")))
    table = pd.read_csv(REFERENCE / "toy_decoding_choices.csv")
    pd.testing.assert_series_equal(rebuilt["mean_pct"], table["mean_pct"], check_names=False, atol=1e-4, rtol=0)


def test_every_shipped_run_names_its_code_and_the_provenance_its_machine():
    evals = read_parquets(shipped("eval.parquet"))
    assert evals["code_version"].str.fullmatch(r"[0-9a-f]{12}").all()      # a clean commit, not '-dirty'
    assert set(evals["precision"]) == {"bf16"} and set(evals["preset"]) == {"paper_bf16"}
    record = json.loads((REFERENCE / "provenance.json").read_text())
    assert record["machine"]["cpus"] >= 1 and record["jobs"] > 0
    assert record["job_seconds_total"]["paper_bf16"]["train"] > 0


def test_every_shipped_table_was_built_by_a_clean_tree():
    """The reference is built outside the tree and copied in at the end (workflow/rules/reference.smk): nothing
    it ships names a '-dirty' version."""
    tables = [path for pattern in ("*.csv", "default/*.csv") for path in REFERENCE.glob(pattern)
              if "code_version" in pd.read_csv(path, nrows=0)]
    built = {str(path.relative_to(REFERENCE)) for path in tables}
    assert {f"{folder}{name}" for folder in ("", "default/")
            for name in ("table2.csv", "fidelity.csv", "toy_decoding_choices.csv")} <= built
    for path in tables:
        versions = pd.Series(listed_values(pd.read_csv(path)["code_version"]))
        assert versions.str.fullmatch(r"[0-9a-f]{12}").all(), (path.name, list(versions))
    assert "-dirty" not in json.dumps(json.loads((REFERENCE / "provenance.json").read_text()))


@pytest.mark.parametrize("name", [f"{folder}{name}" for folder in ("", "default/") for name in (
    "table2.md", "fidelity.md", "toy_decoding_choices.md", "figures/toy_accuracy_over_training.png")])
def test_the_reference_outputs_are_shipped(name):
    assert (REFERENCE / name).stat().st_size > 0


def readme_block(readme: Path, name: str) -> str:
    from revcurse.report.reference import readme_markers

    start, end = readme_markers(name)
    text = readme.read_text()
    return text[text.index(start) + len(start):text.index(end)].strip()


def test_the_readme_shows_the_shipped_table2_beside_the_papers():
    from revcurse.report.reference import readme_table2

    block = readme_block(REFERENCE.parents[1] / "README.md", "reference-table2")
    assert block == readme_table2(pd.read_csv(REFERENCE / "fidelity.csv")).strip()


def test_the_reference_readme_shows_the_table2_experiments_summary():
    summary = (REFERENCE / "table2_experiment_summary.md").read_text().strip()
    assert "| candidate " in summary and readme_block(REFERENCE / "README.md", "table2-experiment") == summary


def test_the_default_preset_is_config_yamls_model():
    """Table 2 re-run at the default (reference/paper/default/) trains config.yaml's toy models: its preset changes
    only what is saved and how fast (bf16, snapshots every 250 steps), no model field and no other training field."""
    base = load_config()
    default = load_config([REFERENCE / "config.yaml"], {"preset": DEFAULT_PRESET})
    for model in base["toy"]["models"]:
        assert toy_model_fields(default, model) == toy_model_fields(base, model), model
    changed = {key for key in base["toy"]["train"] if default["toy"]["train"][key] != base["toy"]["train"][key]}
    assert changed == {"precision", "snapshot_every"}


@pytest.mark.workflow
@pytest.mark.parametrize("preset", sorted(yaml.safe_load((REFERENCE / "config.yaml").read_text())["presets"]))
def test_every_reference_preset_plans_its_runs(preset, workdir):
    """The reference presets pass the workflow's checks (schema, the ablation grid's reference cells) in a dry run."""
    target = f"results/{preset}/toy/mdm/L10/seed0/eval.parquet"
    output = workflow.snakemake("-n", "--configfile", "config.yaml", str(REFERENCE / "config.yaml"), "--config",
                       f"preset={preset}", "--", target, cwd=workdir)
    assert f"output: {target}" in output


@pytest.fixture(scope="module")
def reference_workdir(workdir):
    """The workflow copy with the shipped reference beside it."""
    import shutil

    shutil.copytree(REFERENCE, workdir / "reference/paper")
    shutil.copy(REFERENCE.parents[1] / "README.md", workdir / "README.md")
    return workdir


REFERENCE_CALL = ("--configfile", "config.yaml", "reference/paper/config.yaml", "--config", "preset=paper_bf16")


@pytest.mark.workflow
def test_one_command_plans_every_shipped_table_from_the_shipped_runs(reference_workdir):
    """`snakemake reference` rebuilds every shipped table from reference/paper/runs/ alone: no training, no probe."""
    counts = workflow.job_counts(workflow.snakemake("-n", "reference", *REFERENCE_CALL, cwd=reference_workdir))
    # Table 2, its figure and fidelity report twice: the reference's own and default/'s.
    assert counts == {"reference_table2": 2, "reference_training_curves": 2, "reference_comparison": 5,
                      "reference_fidelity": 2, "reference_table2_experiment": 1, "reference_stuck_seed": 1,
                      "reference_provenance": 1,
                      "theory_table3": 1, "reference": 1}


def test_every_shipped_probe_table_probes_a_shipped_run_as_it_was_trained():
    """The shipped probe tables were made by one code version, and each toy run's by the code and training config of
    the shipped run it probes (its final evaluation names the same): the figures drawn from them show the runs of
    default/table2.md. The attention-only runs have no evaluation."""
    tables = sorted((REFERENCE / "runs").glob("*/*/*/L*/seed*/probes/*.parquet"))
    assert tables
    stamps = pd.concat([pd.read_parquet(path, columns=["code_version", "train_config_hash"]).assign(path=path)
                        for path in tables]).drop_duplicates()
    assert stamps["code_version"].nunique() == 1
    for path, stamp in stamps.groupby("path"):
        run = path.parents[1]
        if run.parents[2].name == "toy":
            evaluation = pd.read_parquet(run / "eval.parquet", columns=["code_version", "train_config_hash"])
            assert stamp[["code_version", "train_config_hash"]].values.tolist() == \
                evaluation.drop_duplicates().values.tolist(), path


def default_probe_tables(root: Path) -> list[Path]:
    """The probe tables of default/'s figures, one per probe and run of the probe grid (probes.yaml), written from the
    probes' definitions rather than from the workflow's: every model's training dynamics, each toy run's reverse
    positions and each MDM toy run's attention."""
    grid = yaml.safe_load((REFERENCE / "probes.yaml").read_text())["toy"]
    runs = root / "reference/paper/runs" / DEFAULT_PRESET
    tables = []
    for study, lengths in (("toy", grid["lengths"]), ("toy_attention_only", [2])):
        for model in ("mdm", "arm"):
            probes = ["gradient_alignment", "query_probability"] + (["reverse_positions"] if study == "toy" else []) \
                + (["attention"] if (study, model) == ("toy", "mdm") else [])
            tables += [runs / study / model / f"L{L}" / f"seed{seed}" / "probes" / f"{probe}.parquet"
                       for L in lengths for seed in grid["seeds"] for probe in probes]
    return tables


@pytest.mark.workflow
def test_a_builds_probe_figures_are_drawn_from_its_shipped_probe_tables_once_all_are_shipped(reference_workdir):
    """With every probe table of default/'s grid shipped, `snakemake reference` draws its six probe figures from them
    and its fidelity report reads those; with one table missing it draws none and reads what default/ ships."""
    tables = default_probe_tables(reference_workdir)
    added = [table for table in tables if not table.exists()]
    for table in added:   # a dry run reads no table: empty files stand in for those not shipped yet
        table.parent.mkdir(parents=True, exist_ok=True)
        table.touch()
    call = ("-n", "-p", "reference", *REFERENCE_CALL)
    try:
        output = workflow.snakemake(*call, cwd=reference_workdir)
        assert workflow.job_counts(output)["reference_figure"] == 6
        assert "--source fig3=results/reference/default/figures/fig3_attention_correlation.csv" in output
        assert all(str(table.relative_to(reference_workdir)) in output for table in tables)
        held = tables[-1].rename(tables[-1].with_suffix(".held"))
        try:
            output = workflow.snakemake(*call, cwd=reference_workdir)
        finally:
            held.rename(tables[-1])
        assert "reference_figure" not in workflow.job_counts(output)
        assert "results/reference/default/figures/fig3" not in output
    finally:
        for table in added:
            table.unlink()


@pytest.mark.workflow
def test_the_reference_runs_target_names_the_shipped_runs_of_its_preset(reference_workdir):
    """`reference_runs` under paper_fp32 makes exactly the cells paper_fp32 shipped (the precision check's)."""
    output = workflow.snakemake("-n", "reference_runs", "--configfile", "config.yaml", "reference/paper/config.yaml",
                                "--config", "preset=paper_fp32", cwd=reference_workdir)
    shipped = sorted((REFERENCE / "runs/paper_fp32").rglob("eval.parquet"))
    assert shipped and workflow.job_counts(output)["evaluate_toy"] == len(shipped)
