"""Fine-tuning checkpoints every N epochs, and a killed run resumes to the uninterrupted result."""
import pytest
import torch
from accelerate import Accelerator
from safetensors import safe_open
from safetensors.torch import load_file

from helpers.llm import interrupt_at_batch, load_adapted_backbone, tiny_standin, write_tiny_tokenizer
from revcurse.core.cli import BadInput
from revcurse.llm.batches import encode_example
from revcurse.llm.finetune import RESUME_FILE, FinetuneSettings, checkpoint_epochs, finetune

LORA = {"r": 4, "alpha": 8, "dropout": 0.0}
PAIRS = [("Anna Bell's child is", "Carl Dorn"), ("Erik Falk's child is", "Gina Holm"),
         ("Carl Dorn's parent is", "Anna Bell"), ("Gina Holm's parent is", "Erik Falk"), ("Anna Bell's child is", "Carl")]
SETTINGS = FinetuneSettings(epochs=4, batch_size=2, learning_rate=1e-3, weight_decay=0.1, checkpoint_every=2,
                            min_mask_rate=1e-3, arm_prompt_in_loss=False, seed=3)


def run(tmp_path, name, run_dir, fingerprint="f"):
    spec = tiny_standin(name)
    tokenizer = tmp_path / "tokenizer.json"
    if not tokenizer.exists():
        write_tiny_tokenizer(tokenizer)
    backbone = load_adapted_backbone(spec, LORA, torch.device("cpu"), SETTINGS.seed, tokenizer)
    length = 8 if spec.kind == "mdm" else None
    examples = [encode_example(backbone.prompt_format, p, c, backbone.eos_token_id, length) for p, c in PAIRS]
    return finetune(backbone, examples, SETTINGS, run_dir, fingerprint, Accelerator(cpu=True))


def test_checkpoint_epochs_include_the_last():
    assert checkpoint_epochs(150, 10) == list(range(10, 151, 10))
    assert checkpoint_epochs(15, 4) == [4, 8, 12, 15]


@pytest.mark.parametrize("name", ["standin_llada", "standin_llama"])
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch, name):
    summary = run(tmp_path, name, tmp_path / "whole")
    assert summary["checkpoints"] == {2: "checkpoints/epoch0002.safetensors", 4: "checkpoints/epoch0004.safetensors"}
    assert not (tmp_path / "whole" / RESUME_FILE).exists()        # removed once the run is complete
    with safe_open(tmp_path / "whole/checkpoints/epoch0002.safetensors", "pt") as checkpoint:
        assert checkpoint.metadata() == {"model_revision": "stand-in"}    # the model revision it adapts

    interrupt_at_batch(monkeypatch, 2 * 3 + 1, lambda: run(tmp_path, name, tmp_path / "killed"))  # epoch 3's first
    assert (tmp_path / "killed" / RESUME_FILE).exists()
    assert not (tmp_path / "killed/checkpoints/epoch0004.safetensors").exists()

    resumed = run(tmp_path, name, tmp_path / "killed")
    assert resumed["epoch_loss"] == pytest.approx(summary["epoch_loss"], rel=1e-5)
    for epoch in (2, 4):
        whole = load_file(tmp_path / f"whole/checkpoints/epoch{epoch:04d}.safetensors")
        again = load_file(tmp_path / f"killed/checkpoints/epoch{epoch:04d}.safetensors")
        assert whole.keys() == again.keys()
        assert all(torch.allclose(whole[k], again[k], atol=1e-6) for k in whole)


def test_resume_state_of_other_settings_is_ignored(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"fingerprint": "other", "epoch": 2}, run_dir / RESUME_FILE)
    summary = run(tmp_path, "standin_llama", run_dir, fingerprint="mine")
    assert len(summary["epoch_loss"]) == SETTINGS.epochs               # trained from epoch 1


class Planted:
    """A class a planted resume file would make torch.load instantiate (and run code of) without weights_only."""


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated", "planted"])
def test_a_damaged_or_planted_resume_file_stops_naming_it(tmp_path, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    resume = run_dir / RESUME_FILE
    if content == "planted":
        torch.save({"fingerprint": "mine", "epoch": 1, "payload": Planted()}, resume)
    else:
        resume.write_bytes(content)
    with pytest.raises(BadInput) as error:
        run(tmp_path, "standin_llama", run_dir, fingerprint="mine")
    assert str(resume) in str(error.value) and "delete it to restart the run" in str(error.value)
