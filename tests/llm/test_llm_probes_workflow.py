"""The probe stage as the workflow calls it: the quick preset's probe and figure jobs in a dry run,
the plan for the paper grid, and the probe CLI end to end on a tiny checkpoint made here."""
import json

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import save_file
from test_llm_probes import LORA, Direction

import revcurse.llm.__main__ as llm_main
import revcurse.llm.probes.plan as probe_plan
from helpers.llm import ROOT, load_adapted_backbone, tiny_standin, write_tiny_tokenizer
from helpers.workflow import job_counts, snakemake
from revcurse.core.config import resolve_config
from revcurse.llm.__main__ import main as llm_cli
from revcurse.llm.__main__ import selected_checkpoints
from revcurse.llm.model.lora import trainable_state
from revcurse.llm.probes.plan import probe_files, probe_runs, probe_spec

FIGURES = ["results/quick/figures/fig6_llm_attention_correlation.png",
           "results/quick/figures/fig7_llm_training_dynamics.png", "results/quick/figures/fig9_llm_reverse_token.png"]


def config_of(preset: str) -> dict:
    return resolve_config({**yaml.safe_load((ROOT / "config.yaml").read_text()), "preset": preset})


def test_quick_dry_run_probes_every_run_of_the_probed_tasks(workdir):
    output = snakemake("-n", *FIGURES, "--config", "preset=quick", cwd=workdir)
    counts = job_counts(output)
    assert counts["llm_probe_attention"] == 1 and counts["llm_probe_dynamics"] == 2     # MDM; MDM + ARM stand-ins
    assert counts["llm_figure6"] == counts["llm_figure7"] == counts["llm_figure9"] == 1
    assert "benchmarks/llm/probes/standin_llada_parent_child_p2c_seed1_attention.tsv" in output


def test_paper_plan_probes_parent_child_of_every_model_and_seed():
    config = config_of("paper")
    assert len(probe_runs(config, "dynamics")) == 4 * 2 * 3                 # models x {P2C, C2P} x seeds
    assert {r["model"] for r in probe_runs(config, "attention")} == {"llada", "dream"}
    config["llm"]["probes"]["tasks"] = ["T-REx"]
    config["llm"]["grid"]["tasks"] = ["P2C"]
    assert probe_runs(config, "dynamics") == []
    with pytest.raises(ValueError, match="llm.probes.tasks"):
        probe_files(config, "dynamics", "llm_query_probability")


def test_person_description_runs_of_mdms_are_left_out_before_any_job_and_counted(capsys, monkeypatch):
    monkeypatch.setattr(probe_plan, "_reported", set())
    config = config_of("paper")
    config["llm"]["probes"]["tasks"] = ["P2C", "P2D", "D2P"]
    dynamics = probe_runs(config, "dynamics")
    # MDMs: P2C only; ARMs: every probed task (their queries have no same-token condition).
    assert {(r["model"], r["direction"]) for r in dynamics} == {
        *((m, "p2c") for m in ("llada", "dream")), *((m, d) for m in ("llama", "qwen") for d in ("p2c", "p2d", "d2p"))}
    left_out = 2 * 2 * 3                                                   # MDMs x {P2D, D2P} x seeds
    assert (f"the dynamics probe leaves out {left_out} MDM runs of P2D/D2P" in capsys.readouterr().err)
    config["llm"]["probes"]["tasks"] = ["P2D"]
    with pytest.raises(ValueError, match=r"MDM runs of P2D/D2P are left out.*nothing to probe"):
        probe_files(config, "attention", "llm_attention")
    assert f"the attention probe leaves out {2 * 3} MDM runs" in capsys.readouterr().err


def test_probe_cli_measures_every_checkpoint_of_a_run(tmp_path, monkeypatch):
    tokenizer = write_tiny_tokenizer(tmp_path / "tokenizer.json")
    model = tiny_standin("standin_llada")
    backbone = load_adapted_backbone(model, LORA, torch.device("cpu"), 1, tokenizer)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    checkpoints = {str(epoch): f"checkpoints/epoch{epoch:04d}.safetensors" for epoch in (1, 2)}
    for path in checkpoints.values():
        save_file(trainable_state(backbone.model), str(run / path))
    trained = {"spec": {}, "config_hash": "train", "checkpoints": checkpoints, "model_revision": "stand-in"}
    (run / "checkpoints.json").write_text(json.dumps(trained))
    config = config_of("quick")
    config["llm"]["models"]["standin_llada"]["standin"] = model.standin
    config["llm"]["lora"] = LORA
    config["llm"]["probes"].update(samples=None, placements=2)
    spec = {**probe_spec(config, "standin_llada", "parent_child", "p2c", 1), "tokenizer": str(tokenizer)}
    monkeypatch.setattr(llm_main, "direction_records", lambda manifest, direction: Direction)
    outs = {name: tmp_path / f"{name}.parquet"
            for name in ("llm_attention", "llm_gradient_alignment", "llm_query_probability")}
    common = ["--spec", json.dumps(spec), "--manifest", "unused", "--checkpoints", str(run / "checkpoints.json")]
    llm_cli(["probe", "attention", *common, "--out", f"llm_attention={outs['llm_attention']}"])
    llm_cli(["probe", "dynamics", *common, "--out", f"llm_gradient_alignment={outs['llm_gradient_alignment']}",
               "--out", f"llm_query_probability={outs['llm_query_probability']}"])
    attention = pd.read_parquet(outs["llm_attention"])
    assert sorted(attention["epoch"].unique()) == [1, 2] and set(attention["train_config_hash"]) == {"train"}
    assert set(attention["model_revision"]) == {"stand-in"} and set(attention["excluded_samples"]) == {0}
    assert (attention.groupby("direction")["delta"].nunique() == 2).all()
    assert len(pd.read_parquet(outs["llm_gradient_alignment"])) == 2 * len(Direction.eval_forward)
    figure = [f"--{ext}={tmp_path / f'fig9.{ext}'}" for ext in ("png", "pdf", "csv")]
    llm_cli(["probe-figure", "fig9", "--inputs", str(outs["llm_query_probability"]),
               "--settings", json.dumps(config["llm"]["probes"]), *figure, "--config-hash", "c"])
    assert (tmp_path / "fig9.png").exists()
    # Adapters trained on another revision of the model are not probed.
    (run / "checkpoints.json").write_text(json.dumps({**trained, "model_revision": "0" * 40}))
    with pytest.raises(SystemExit, match="trained on standin_llada revision 0{40}, but revision stand-in is loaded"):
        llm_cli(["probe", "dynamics", *common, "--out", f"llm_gradient_alignment={outs['llm_gradient_alignment']}",
                   "--out", f"llm_query_probability={outs['llm_query_probability']}"])


def test_checkpoint_selection_is_by_epoch_not_by_name():
    checkpoints = {"checkpoints": {"10": "checkpoints/epoch0010.safetensors", "5": "checkpoints/epoch0005.safetensors"}}
    assert [epoch for epoch, _ in selected_checkpoints(checkpoints, "all")] == [5, 10]
    assert selected_checkpoints(checkpoints, "final") == [(10, "checkpoints/epoch0010.safetensors")]
    with pytest.raises(ValueError, match="llm.probes.checkpoints"):
        selected_checkpoints(checkpoints, "last")
