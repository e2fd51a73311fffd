"""Stacked runs over one frozen base end as the runs trained alone, checkpoint for checkpoint; the
speed benchmark that sets them against the baseline runs."""
import copy
import importlib.util
import re
from dataclasses import replace

import pytest
import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import load_file

import revcurse.llm.plan as plan
from helpers.llm import ROOT, interrupt_at_batch, tiny_standin, write_tiny_tokenizer
from revcurse.llm.batches import encode_example
from revcurse.llm.finetune import STACK_RESUME_FILE, FinetuneSettings, finetune, finetune_stack
from revcurse.llm.model.backbone import load_backbone, with_seeded_lora, with_stacked_lora
from revcurse.llm.model.stacked_lora import StackedLoRALinear

LORA = {"r": 4, "alpha": 8, "dropout": 0.0}
SEEDS = [1, 42, 1234]
# Prompts of different lengths, so the runs' batches of a step have different padded widths.
PAIRS = [("Anna Bell's child is", "Carl Dorn"), ("Erik Falk's child is", "Gina Holm"),
         ("Carl Dorn's parent is", "Anna Bell"), ("Gina Holm's parent is", "Erik Falk"), ("Anna's child is", "Carl")]
SETTINGS = FinetuneSettings(epochs=4, batch_size=2, learning_rate=1e-2, weight_decay=0.1, checkpoint_every=2,
                            min_mask_rate=1e-3, arm_prompt_in_loss=False, seed=0)


@pytest.fixture(scope="module")
def frozen_bases(tmp_path_factory):
    """A tiny random stand-in per kind with a frozen base (as the real models), and its examples."""
    tokenizer = write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")
    bases = {}
    for name in ("standin_llada", "standin_llama"):
        backbone = load_backbone(tiny_standin(name, train_base=False), torch.device("cpu"), 0, tokenizer)
        length = 8 if backbone.spec.kind == "mdm" else None
        bases[name] = backbone, [encode_example(backbone.prompt_format, p, c, backbone.eos_token_id, length)
                                 for p, c in PAIRS]
    return bases


def train_stack(base, examples, run_dirs, fingerprint="stack"):
    backbone = with_stacked_lora(replace(base, model=copy.deepcopy(base.model)), LORA, SEEDS)
    settings = [replace(SETTINGS, seed=seed) for seed in SEEDS]
    return finetune_stack(backbone, examples, settings, run_dirs, fingerprint, Accelerator(cpu=True))


def assert_same_checkpoints(run_dir, other_dir):
    for epoch in (2, 4):
        mine = load_file(run_dir / f"checkpoints/epoch{epoch:04d}.safetensors")
        theirs = load_file(other_dir / f"checkpoints/epoch{epoch:04d}.safetensors")
        assert mine.keys() == theirs.keys()
        assert all(torch.allclose(mine[k], theirs[k], atol=1e-5, rtol=0) for k in mine), epoch


@pytest.mark.parametrize("name", ["standin_llada", "standin_llama"])
def test_a_stack_ends_as_its_runs_trained_alone(tmp_path, frozen_bases, name):
    base, examples = frozen_bases[name]
    stacked = train_stack(base, examples, [tmp_path / f"stack/seed{s}" for s in SEEDS])
    for seed, summary in zip(SEEDS, stacked):
        backbone = with_seeded_lora(replace(base, model=copy.deepcopy(base.model)), LORA, seed)
        alone = finetune(backbone, examples, replace(SETTINGS, seed=seed), tmp_path / f"alone/seed{seed}", "alone",
                         Accelerator(cpu=True))
        assert summary["checkpoints"] == alone["checkpoints"]
        assert summary["epoch_loss"] == pytest.approx(alone["epoch_loss"], rel=1e-5)
        assert_same_checkpoints(tmp_path / f"stack/seed{seed}", tmp_path / f"alone/seed{seed}")
    first, last = (load_file(tmp_path / f"stack/seed1/checkpoints/epoch{e:04d}.safetensors") for e in (2, 4))
    assert any(not torch.equal(first[k], last[k]) for k in first)      # the adapters did train
    assert not (tmp_path / "stack/seed1" / STACK_RESUME_FILE).exists()  # removed once the stack is complete


def test_a_killed_stack_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, frozen_bases):
    base, examples = frozen_bases["standin_llada"]
    whole = train_stack(base, examples, [tmp_path / f"whole/seed{s}" for s in SEEDS])
    killed_dirs = [tmp_path / f"killed/seed{s}" for s in SEEDS]
    interrupt_at_batch(monkeypatch, 2 * 3 + 1, lambda: train_stack(base, examples, killed_dirs))  # epoch 3's first
    assert (killed_dirs[0] / STACK_RESUME_FILE).exists()

    resumed = train_stack(base, examples, killed_dirs)
    for seed, summary, again in zip(SEEDS, whole, resumed):
        assert again["epoch_loss"] == pytest.approx(summary["epoch_loss"], rel=1e-5)
        assert_same_checkpoints(tmp_path / f"killed/seed{seed}", tmp_path / f"whole/seed{seed}")


def test_the_stacked_layer_adds_each_runs_update_to_its_rows_only():
    base = torch.nn.Linear(6, 5)
    lora_A, lora_B = torch.randn(3, 2, 6), torch.randn(3, 5, 2)
    layer = StackedLoRALinear(base, lora_A, lora_B, scaling=2.0)
    x = torch.randn(3 * 4, 7, 6)                                    # 3 runs x 4 rows, 7 tokens
    out = layer(x)
    for run in range(3):
        rows = x[4 * run : 4 * (run + 1)]
        expected = base(rows) + 2.0 * rows @ lora_A[run].T @ lora_B[run].T
        assert torch.allclose(out[4 * run : 4 * (run + 1)], expected, atol=1e-5)


def test_runs_that_train_their_base_cannot_be_stacked(frozen_bases):
    base, _ = frozen_bases["standin_llada"]
    trains_base = replace(base, spec=replace(base.spec, train_base=True))
    with pytest.raises(ValueError, match=r"llm\.models\.standin_llada\.train_base is true.*stack_seeds: false"):
        with_stacked_lora(trains_base, LORA, SEEDS)
    with pytest.raises(ValueError, match="differ only in their seed"):
        finetune_stack(base, [], [SETTINGS, replace(SETTINGS, learning_rate=1.0)], ["a", "b"], "f", None)
    with pytest.raises(ValueError, match="carries 0 stacked adapters for 2 runs"):
        finetune_stack(base, [], [SETTINGS, replace(SETTINGS, seed=1)], ["a", "b"], "f", None)


def test_a_run_spec_is_the_same_stacked_or_alone():
    config = {**yaml.safe_load((ROOT / "config.yaml").read_text()), "preset": "paper"}
    stacked = plan.finetune_job_spec(config, "llama", "trex", "h2t", None)
    config["llm"]["train"]["stack_seeds"] = False
    assert [s["seed"] for s in stacked] == config["llm"]["grid"]["seeds"]
    assert stacked == [plan.finetune_job_spec(config, "llama", "trex", "h2t", seed) for seed in (1, 42, 1234)]
    assert plan.finetune_outputs(config, stacked=True) == [
        f"results/paper/llm/{{model}}/{{dataset}}/{{direction}}/seed{seed}/checkpoints.json" for seed in (1, 42, 1234)]


def test_the_speed_benchmark_runs_baseline_and_optimised_side_by_side(capsys):
    path = ROOT / "benchmarks/llm_speed.py"
    module_spec = importlib.util.spec_from_file_location("llm_speed", path)
    benchmark = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(benchmark)
    benchmark.main(["--device", "cpu", "--shapes", "tiny-llama", "tiny-llada", "--train-steps", "1", "--runs", "2",
                    "--queries", "4", "--eval-batch", "2", "--max-new-tokens", "4", "--diffusion-steps", "4",
                    "--prompt-tokens", "4", "--answer-tokens", "4"])
    printed = capsys.readouterr().out
    assert printed.count("fine-tuning, baseline: runs alone") == 2
    assert printed.count("fine-tuning, stacked: 2 runs") == 2
    assert "4-step diffusion, optimised, batch 2: 4 queries in" in printed and "same tokens as the baseline" in printed
    assert re.search(r"ratio \(baseline / optimised\)\s+training\s+[\d.]+x", printed)
