import pytest
import torch

from revcurse.data.toy import MASK_ID, lower_id, upper_id
from revcurse.toy.evaluate import generate, success_counts, top_k_sample
from revcurse.toy.model import ToyTransformer


def test_top_k_sample_only_draws_from_the_k_best():
    logits = torch.tensor([[0.0, 5.0, 4.0, 3.0, -1.0]]).expand(2000, -1)
    tokens, _ = top_k_sample(logits, 2, torch.Generator().manual_seed(0))
    assert set(tokens.tolist()) == {1, 2}
    greedy, prob = top_k_sample(logits, 1, torch.Generator().manual_seed(0))
    assert (greedy == 1).all() and torch.allclose(prob, torch.ones(2000))


@pytest.mark.parametrize("kind", ["mdm-random", "mdm-confidence", "mdm-left_to_right", "mdm-parallel", "arm"])
def test_generation_is_complete_and_reproducible(tiny_cfg, kind):
    if kind == "arm":
        cfg, order = tiny_cfg(attention="causal", pos_encoding="learned", objective="next_token"), "random"
    else:
        cfg, order = tiny_cfg(), kind.split("-")[1]
    model = ToyTransformer(cfg).eval()
    prompts = torch.full((64,), upper_id(2))
    run = lambda seed: generate(model, prompts, 6, 3, torch.Generator().manual_seed(seed), order)
    first = run(11)
    assert first.shape == (64, 6) and (first[:, 0] == upper_id(2)).all()
    assert not (first == MASK_ID).any()
    assert torch.equal(first, run(11))
    assert not torch.equal(first, run(12))


def test_success_counts_detects_the_target_anywhere(tiny_cfg):
    """A model whose every prediction is one fixed lowercase succeeds only for that letter in reverse."""
    model = ToyTransformer(tiny_cfg()).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.head.bias[0, lower_id(4)] = 10.0
    counts = success_counts(model, 6, "reverse", 5, 1, "random", torch.Generator().manual_seed(0), 50)
    assert counts.set_index("letter")["successes"].to_dict() == {c: (5 if c == "e" else 0) for c in counts.letter}
    forward = success_counts(model, 6, "forward", 5, 1, "random", torch.Generator().manual_seed(0), 50)
    assert forward["successes"].sum() == 0


@pytest.mark.parametrize("order", ["random", "confidence", "left_to_right"])
def test_stopping_at_the_target_changes_no_outcome(tiny_cfg, order):
    """A row that stops at its target keeps what it generated so far; every other row is generated as without stopping."""
    model = ToyTransformer(tiny_cfg(seq_len=8)).eval()
    prompts = upper_id(0) + torch.arange(26).repeat(8)
    targets = lower_id(0) + torch.arange(26).repeat(8)
    targets[::3] = prompts[::3]          # some targets the untrained model draws often, some it rarely draws
    full = generate(model, prompts, 8, 3, torch.Generator().manual_seed(4), order)
    stopped = generate(model, prompts, 8, 3, torch.Generator().manual_seed(4), order, stop_tokens=targets)
    hit_full, hit_stopped = ((s[:, 1:] == targets[:, None]).any(1) for s in (full, stopped))
    assert torch.equal(hit_full, hit_stopped) and hit_full.any() and not hit_full.all()
    assert torch.equal(stopped[~hit_full], full[~hit_full])
    kept = stopped != MASK_ID
    assert torch.equal(stopped[kept], full[kept]) and (~kept[hit_full]).any()


def test_success_counts_are_the_same_with_and_without_the_stop(tiny_cfg):
    model = ToyTransformer(tiny_cfg(seq_len=8)).eval()
    count = lambda stop: success_counts(model, 8, "forward", 30, 3, "random", torch.Generator().manual_seed(2), 128,
                                        stop_at_target=stop)["successes"].tolist()
    with_stop = count(True)
    assert with_stop == count(False) and 0 < sum(with_stop) < 26 * 30
