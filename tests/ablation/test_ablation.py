"""The ablation grid (revcurse.ablation): its cells, their models, the table and the conclusion."""
import copy
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from revcurse.ablation import grid as ablation
from revcurse.core.config import resolve_config
from revcurse.core.paths import run_dir
from revcurse.data.toy import MASK_ID
from revcurse.toy.evaluate import generate
from revcurse.toy.model import ToyTransformer
from revcurse.toy.specs import toy_train_spec
from revcurse.toy.tables import table2
from revcurse.toy.train import toy_configs, training_loss

ROOT = Path(__file__).resolve().parents[2]


def load_config(preset="paper"):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    return resolve_config({**raw, "preset": preset})


@pytest.fixture(scope="module")
def paper():
    return load_config()


# ---------------------------------------------------------------- the grid
def test_paper_grid_has_every_valid_combination_and_excludes_next_token_bidirectional(paper):
    cells, excluded = ablation.expand_grid(paper)
    axes = paper["ablation"]["axes"]
    assert axes == {"pos_encoding": ["rope", "learned", "none"], "attention": ["bidirectional", "causal"],
                    "objective": ["masked_diffusion", "fixed_rate_masking", "next_token"], "n_layers": [1, 2, 4]}
    combos = set(itertools.product(*(axes[a] for a in ablation.AXES)))
    invalid = {c for c in combos if c[2] == "next_token" and c[1] == "bidirectional"}
    assert {tuple(c.axes().values()) for c in cells} == combos - invalid
    assert len(cells) == 45 and len(excluded) == 9
    assert all("requires attention 'causal'" in e["reason"] for e in excluded)
    assert len({c.name for c in cells}) == len(cells)
    assert paper["ablation"]["length"] in paper["toy"]["lengths"] and paper["ablation"]["fixed_mask_rate"] == 0.15


def test_reference_cells_are_the_table2_runs(paper):
    cells = {c.name: c for c in ablation.expand_grid(paper)[0]}
    assert {n: c.paper_model for n, c in cells.items() if c.paper_model} == {
        "rope_bi_diff_depth1": "mdm", "abs_causal_ntp_depth1": "arm"}
    for name, model in (("rope_bi_diff_depth1", "mdm"), ("abs_causal_ntp_depth1", "arm")):
        cell = cells[name]
        # The same run directories as toy.smk's train_toy / evaluate_toy, and the same model as Table 2's spec.
        assert ablation.cell_run_dirs(paper, cell) == [f"results/paper/toy/{model}/L10/seed{s}" for s in (0, 1, 2)]
        assert cell.model_fields == toy_train_spec(paper, model, 10, 0)["model_fields"]
    own = cells["rope_causal_diff_depth1"]
    assert ablation.cell_run_dirs(paper, own)[0] == "results/paper/ablation/rope_causal_diff_depth1/L10/seed0"


def test_quick_grid_is_reduced_and_keeps_both_reference_cells():
    quick = load_config("quick")
    cells, excluded = ablation.expand_grid(quick)
    assert sorted(c.name for c in cells) == sorted([
        "rope_bi_diff_depth1", "abs_bi_diff_depth1", "rope_causal_diff_depth1", "abs_causal_diff_depth1",
        "rope_causal_ntp_depth1", "abs_causal_ntp_depth1"])
    assert len(excluded) == 2 and sum(c.paper_model is not None for c in cells) == 2


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(length=7), "ablation.length = 7 is not in toy.lengths"),
    (lambda a: a["axes"].update(pos_encoding=["rope"]), "ablation.reference_models names 'arm'"),
    (lambda a: a["fields_from"].update(next_token="mdm"), "ablation.reference_models names 'arm'"),
    (lambda a: a["fields_from"].update(next_token="gpt"), r"ablation.fields_from names \['gpt'\]"),
    (lambda a: a.update(reference_models=["mdm", "bert"]), r"ablation.reference_models names \['bert'\]"),
])
def test_config_errors_name_the_key(paper, change, message):
    config = copy.deepcopy(paper)
    change(config["ablation"])
    with pytest.raises(ValueError, match=message):
        ablation.expand_grid(config)


def test_a_cell_trains_its_seeds_as_one_stack_with_the_toy_settings(paper):
    cell = next(c for c in ablation.expand_grid(paper)[0] if c.name == "nope_bi_fixed_depth4")
    spec = ablation.train_spec(paper, cell, 1)
    assert spec["train"] == {**paper["toy"]["train"], "snapshot_every": paper["toy"]["train"]["steps"]}
    assert spec["model_fields"]["fixed_mask_rate"] == 0.15 and spec["model_fields"]["n_layers"] == 4
    arguments = ablation.train_arguments(paper, cell)
    assert arguments.count("--spec") == arguments.count("--out") == arguments.count("--snapshots") == 3
    assert cell.probe_tables() == ("gradient_alignment", "attention")
    causal_masking = next(c for c in ablation.expand_grid(paper)[0] if c.name == "rope_causal_fixed_depth1")
    assert causal_masking.probe_tables() == ()


# ---------------------------------------------------------------- each cell's model has its named properties
def tiny_model(config, cell, length=6):
    # gpt2's draw: radd (config.yaml's default) starts the output layer at zero, so every output is
    # the same before training and the properties under test (the architecture's) cannot show.
    spec = {"length": length, "train": config["toy"]["train"],
            "model_fields": {**cell.model_fields, "d_model": 16, "n_heads": 2, "dropout": 0.0, "init": "gpt2"}}
    model_cfg, _ = toy_configs(spec)
    return ToyTransformer(model_cfg, init_rng=[torch.Generator().manual_seed(3)]).eval()


def outputs_changed_by(model, position):
    """For each output position: does it change when only input ``position`` changes?"""
    tokens = torch.randint(0, 53, (1, 4, model.cfg.seq_len), generator=torch.Generator().manual_seed(1))
    altered = tokens.clone()
    altered[..., position] = (altered[..., position] + 7) % 53
    with torch.no_grad():
        return (model(tokens).softmax(-1) - model(altered).softmax(-1)).abs().amax(dim=(0, 1, 3)) > 1e-6


def is_permutation_equivariant(model):
    tokens = torch.randint(0, 53, (1, 4, model.cfg.seq_len), generator=torch.Generator().manual_seed(2))
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        return torch.allclose(model(tokens[..., order]), model(tokens)[:, :, order], atol=1e-5)


def test_every_cell_model_has_its_named_properties(paper):
    for cell in ablation.expand_grid(paper)[0]:
        model = tiny_model(paper, cell)
        cfg = model.cfg
        assert (cfg.pos_encoding, cfg.attention, cfg.objective, len(model.blocks)) == tuple(cell.axes().values())
        changed = outputs_changed_by(model, position=3)
        if cell.attention == "causal":
            assert not changed[:3].any() and changed[3:].all(), cell.name       # later tokens are ignored
        else:
            assert changed.all(), cell.name
        # Only order-blind models are permutation-equivariant: no position encoding and no causal mask.
        expected = cell.pos_encoding == "none" and cell.attention == "bidirectional"
        assert is_permutation_equivariant(model) == expected, cell.name


# ---------------------------------------------------------------- the fixed-rate objective
class FixedLogits(torch.nn.Module):
    def __init__(self, logits, cfg):
        super().__init__()
        self.logits, self.cfg, self.inputs = logits, cfg, []

    def forward(self, tokens, rng=None):
        self.inputs.append(tokens)
        return self.logits.expand(*tokens.shape, -1)


def test_fixed_rate_masking_masks_at_its_rate_and_its_loss_is_unbiased(tiny_cfg):
    torch.manual_seed(0)
    logits = torch.randn(54)
    clean = torch.randint(0, 53, (1, 4000, 8))
    ce = torch.nn.functional.cross_entropy(logits.expand(4000 * 8, -1), clean.flatten()).item()
    model = FixedLogits(logits, tiny_cfg(objective="fixed_rate_masking", fixed_mask_rate=0.15))
    rng = [torch.Generator().manual_seed(1)]
    estimates = torch.stack([training_loss(model, clean, MASK_ID, rng) for _ in range(10)])
    masked = torch.cat(model.inputs) == MASK_ID
    assert masked.float().mean().item() == pytest.approx(0.15, abs=0.005)
    # No sequence is redrawn: about 0.85^8 of them have no masked position and add 0 to the mean.
    assert (~masked.any(-1)).float().mean().item() == pytest.approx(0.85**8, abs=0.01)
    assert estimates.mean().item() == pytest.approx(ce, rel=0.02)


def test_fixed_rate_and_causal_masking_models_decode_by_unmasking(tiny_cfg):
    for attention in ("bidirectional", "causal"):
        model = ToyTransformer(tiny_cfg(objective="fixed_rate_masking", attention=attention)).eval()
        out = generate(model, torch.full((8,), 30), 6, 3, torch.Generator().manual_seed(0))
        assert out.shape == (8, 6) and not (out == MASK_ID).any()


def test_fixed_mask_rate_outside_unit_interval_is_rejected(tiny_cfg):
    with pytest.raises(ValueError, match="fixed_mask_rate"):
        tiny_cfg(objective="fixed_rate_masking", fixed_mask_rate=0.0)


# ---------------------------------------------------------------- table, effects, conclusion
def synthetic_grid(reverse_pct, seeds=(0, 1, 2), samples=520):
    """A grid record and evaluations whose reverse accuracy per cell is ``reverse_pct[(attention, objective)]``."""
    cells, evals, probes = [], [], []
    for (attention, objective), reverse in reverse_pct.items():
        name = ablation.cell_name("rope", attention, objective, 1)
        paper_model = {("bidirectional", "masked_diffusion"): "mdm", ("causal", "next_token"): "arm"}.get(
            (attention, objective))
        cells.append({"name": name, "pos_encoding": "rope", "attention": attention, "objective": objective,
                      "n_layers": 1, "paper_model": paper_model,
                      "runs": [f"results/x/{name}/L6/seed{s}" for s in seeds], "probe_tables": ["gradient_alignment"]})
        for seed in seeds:
            for direction, pct in (("forward", 90.0), ("reverse", reverse + seed - 1)):   # seed spread ±1 pp
                evals.append({"model": name, "length": 6, "seed": seed, "direction": direction, "letter": "a",
                              "samples": samples, "successes": round(samples * pct / 100), "top_k": 3,
                              "unmask_order": "random", "weights": "ema", "preset": "x", "code_version": "v"})
            probes.append({"cell": name, "seed": seed, "gradient_cosine": 0.5, "attention_correlation": np.nan})
    grid = {"preset": "x", "length": 6, "seeds": list(seeds), "steps": 10, "baseline": "mdm",
            "bootstrap_replicates": 500, "correlation_pooling": "per_pair", "cells": cells, "excluded": []}
    return grid, pd.DataFrame(probes), pd.DataFrame(evals)


def test_table_rows_equal_table2_and_the_conclusion_is_computed_from_them():
    reverse = {("bidirectional", "masked_diffusion"): 60.0, ("causal", "masked_diffusion"): 20.0,
               ("bidirectional", "fixed_rate_masking"): 50.0, ("causal", "fixed_rate_masking"): 10.0,
               ("causal", "next_token"): 5.0}
    grid, probes, evals = synthetic_grid(reverse)
    per_seed = ablation.per_seed_table(grid, probes, evals)
    table = ablation.cell_table(grid, per_seed, evals)
    expected = table2(evals).set_index(["model", "direction"])
    for row in table.itertuples():
        assert row.reverse_mean_pct == expected.loc[(row.cell, "reverse"), "mean_pct"]
        assert row.forward_ci95_low_pct == expected.loc[(row.cell, "forward"), "ci95_low_pct"]
    assert table.set_index("cell").loc["rope_bi_diff_depth1", "paper_model"] == "mdm"

    effects = ablation.factor_effects(per_seed, "mdm", replicates=500).set_index(["factor", "to_level"])
    causal = effects.loc[("attention", "causal")]
    assert causal["pairs"] == 2 and causal["effect_pp"] == pytest.approx(-40.0, abs=0.1)
    assert causal["ci95_low_pp"] < causal["effect_pp"] < causal["ci95_high_pp"] < 0
    assert effects.loc[("objective", "fixed_rate_masking"), "effect_pp"] == pytest.approx(-10.0, abs=0.1)
    # next-token has no bidirectional partner: its only pair is causal masked diffusion -> causal next-token.
    next_token = effects.loc[("objective", "next_token")]
    assert next_token["pairs"] == 1 and next_token["effect_pp"] == pytest.approx(-15.0, abs=0.1)
    assert np.isnan(next_token["from_baseline_pp"])

    text = ablation.conclusion_markdown(grid, table, effects.reset_index())
    assert "Largest measured change: attention bidirectional → causal changed mean reverse accuracy by -40.0 pp" in text
    assert f"[{causal['ci95_low_pp']:+.1f}, {causal['ci95_high_pp']:+.1f}]" in text
    assert "is the paper's MDM" in text and "is the paper's ARM" in text


@pytest.mark.workflow
def test_quick_grid_dry_run_reuses_the_table2_runs(tmp_path):
    from helpers.workflow import copy_workflow, job_counts, snakemake

    output = snakemake("-n", "-p", "results/quick/ablation.csv", "--config", "preset=quick",
                       cwd=copy_workflow(tmp_path))
    counts = job_counts(output)
    assert counts["train_ablation"] == 4 and counts["evaluate_ablation"] == 8
    assert counts["train_toy"] == 4 and counts["evaluate_toy"] == 4         # the MDM and ARM of Table 2, L = 6
    assert "results/quick/ablation/rope_bi_diff_depth1" not in output      # the reference cells are not retrained
    table_job = output.split("rule ablation_table:")[1].split("\n\n")[0]
    assert "results/quick/toy/mdm/L6/seed0/eval.parquet" in table_job
    assert "results/quick/toy/arm/L6/seed1/probes/gradient_alignment.parquet" in table_job


@pytest.mark.slow
def test_tiny_grid_end_to_end_with_the_cli(tmp_path, monkeypatch):
    """Every command the rules call, in process, on a 5-cell grid of tiny models (a few steps each)."""
    import json

    from revcurse.ablation.__main__ import main as ablation_cli
    from revcurse.toy.__main__ import main as toy_cli
    from revcurse.toy.specs import toy_eval_spec

    monkeypatch.chdir(tmp_path)
    config = load_config("quick")
    config["toy"].update(lengths=[4], seeds=[0, 1])
    config["toy"]["model_defaults"].update(d_model=16)
    config["toy"]["train"].update(steps=4, batch_size=8, warmup_steps=1, log_every=2, snapshot_every=2)
    config["toy"]["eval"].update(samples_per_letter=2)
    config["ablation"].update(length=4, reference_models=["mdm"],
                              axes={"pos_encoding": ["rope"], "attention": ["bidirectional", "causal"],
                                    "objective": ["masked_diffusion", "fixed_rate_masking", "next_token"],
                                    "n_layers": [1]})
    toy_cli(["data", "--length", "4", "--out", "results/data/toy/L4.parquet", "--manifest", "m.json"])
    cells, _ = ablation.expand_grid(config)
    for cell in cells:
        runs = ablation.cell_run_dirs(config, cell)
        if cell.paper_model:
            train = [arg for seed, run in zip(config["toy"]["seeds"], runs) for arg in (
                "--spec", json.dumps(toy_train_spec(config, cell.paper_model, 4, seed)),
                "--out", f"{run}/model.pt", "--snapshots", f"{run}/snapshots.pt")]
        else:
            train = ablation.train_arguments(config, cell)
        toy_cli(["train", *train, "--data", "results/data/toy/L4.parquet"])
        for seed, run in zip(config["toy"]["seeds"], runs):
            model = cell.paper_model or cell.name
            eval_spec = toy_eval_spec(config, model, 4, seed)
            toy_cli(["evaluate", "--spec", json.dumps(eval_spec), "--model", f"{run}/model.pt",
                      "--out", f"{run}/eval.parquet"])
            probe_spec = {**ablation.probe_spec(config, cell, seed), "model": model,
                          "study": "toy" if cell.paper_model else ablation.STUDY}
            for table in cell.probe_tables():
                measurement, outs = (("attention", [f"attention={run}/probes/attention.parquet"]) if table == "attention"
                                     else ("training_dynamics", [f"gradient_alignment={run}/probes/gradient_alignment.parquet",
                                                                 f"query_probability={run}/probes/query_probability.parquet"]))
                toy_cli(["probe", measurement, "--spec", json.dumps(probe_spec), "--checkpoint",
                          f"{run}/snapshots.pt", *[a for o in outs for a in ("--out", o)]])
    ablation_cli(["table", "--grid", json.dumps(ablation.grid_record(config)), "--csv", "ablation.csv",
              "--per-seed-csv", "per_seed.csv", "--md", "conclusion.md", "--png", "a.png", "--pdf", "a.pdf",
              "--config-hash", "h"])

    table = pd.read_csv("ablation.csv").set_index("cell")
    assert list(table.index) == [c.name for c in cells] and len(table) == 5
    assert (table["seeds"] == "0 / 1").all() and table.loc["rope_bi_diff_depth1", "paper_model"] == "mdm"
    mdm_evals = pd.concat(pd.read_parquet(f"{run_dir('quick', 'toy', 'mdm', 4, s)}/eval.parquet") for s in (0, 1))
    expected = table2(mdm_evals).set_index("direction")["mean_pct"]
    assert table.loc["rope_bi_diff_depth1", "reverse_mean_pct"] == pytest.approx(expected["reverse"], abs=1e-4)
    # The fixed-rate cell is probed with the [M] queries; causal masking cells are not probed; next-token has no [M].
    assert np.isfinite(table.loc["rope_bi_fixed_depth1", ["gradient_cosine_mean", "attention_correlation_mean"]]).all()
    assert table.loc[["rope_causal_diff_depth1", "rope_causal_fixed_depth1"], "gradient_cosine_mean"].isna().all()
    assert np.isfinite(table.loc["rope_causal_ntp_depth1", "gradient_cosine_mean"])
    assert np.isnan(table.loc["rope_causal_ntp_depth1", "attention_correlation_mean"])
    assert "attention bidirectional → causal" in Path("conclusion.md").read_text()
    assert Path("a.png").stat().st_size > 0 and len(pd.read_csv("per_seed.csv")) == 10


# ---------------------------------------------------------------- the figure's labels
def test_figure_labels_spell_out_every_cell_and_mark_the_paper_models(paper):
    grid = ablation.grid_record(paper)
    labels = {cell["name"]: ablation.cell_label(cell) for cell in grid["cells"]}
    assert labels["abs_bi_diff_depth1"] == "learned pos · bidirectional · masked diffusion · 1 layer"
    assert labels["rope_bi_diff_depth1"] == "RoPE · bidirectional · masked diffusion · 1 layer  = paper's MDM"
    assert labels["abs_causal_ntp_depth1"] == "learned pos · causal · next token · 1 layer  = paper's ARM"
    assert labels["nope_causal_fixed_depth4"] == "no pos · causal · fixed-rate masking · 4 layers"
    assert len(set(labels.values())) == len(labels)                 # no two cells share a label
    assert not any("_" in label for label in labels.values())      # no cell-name abbreviations left


def test_figure_labels_are_the_drawn_tick_labels_and_a_quick_figure_is_marked():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from revcurse.plotting import QUICK_MARKER

    grid = ablation.grid_record(load_config("quick"))
    per_seed = pd.DataFrame([dict(cell=cell["name"], seed=seed, forward_pct=90.0 + seed, reverse_pct=10.0 * seed,
                                  gradient_cosine=0.5, attention_correlation=0.1)
                             for cell in grid["cells"] for seed in (0, 1)])
    fig = ablation.figure(per_seed, grid, ["test"])
    ticks = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert ticks == [ablation.cell_label(cell) for cell in grid["cells"]]
    assert "RoPE · bidirectional · masked diffusion · 1 layer  = paper's MDM" in ticks
    assert [t.get_text() for t in fig.texts].count(QUICK_MARKER) == 1
    plt.close(fig)
