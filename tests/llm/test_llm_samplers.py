"""The LLaDA and Dream samplers on a tiny random stand-in with a fixed seed: their schedules, and
the same tokens as the earlier samplers (benchmarks/llm_speed.py's baseline), which computed the logits of every position."""
import importlib.util

import pytest
import torch

from helpers.llm import ROOT, tiny_standin
from revcurse.llm.model.backbone import Backbone
from revcurse.llm.model.standins import build_standin
from revcurse.llm.samplers import dream_generate, llada_generate, transfer_schedule

MASK = 1
PROMPTS = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12], [0, 13, 14, 15, 16]])
PROMPT_MASK = (torch.arange(5) >= torch.tensor([[2], [0], [1]])).long()


def recording_logits(name: str):
    """Backbone.logits of a random stand-in, recording the sequence it is called with."""
    spec = tiny_standin(name)
    backbone = Backbone(spec, build_standin(spec, 64, 0, seed=7).eval(), None, 0, 0, frozenset([0]), MASK)
    calls = []

    def logits(ids, padding_mask, positions):
        calls.append(ids.clone())
        return backbone.logits(ids, padding_mask, positions)
    return logits, calls


def test_transfer_schedule_splits_evenly_remainder_first():
    assert transfer_schedule(8, 4) == [2, 2, 2, 2]
    assert transfer_schedule(7, 3) == [3, 2, 2]
    assert transfer_schedule(2, 4) == [1, 1, 0, 0]


@pytest.mark.parametrize("gen_length,steps,block_length", [(8, 8, 8), (8, 4, 4), (12, 6, 4)])
def test_llada_commits_gen_length_tokens_in_steps_block_by_block(gen_length, steps, block_length):
    logits, calls = recording_logits("standin_llada")
    out = llada_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=gen_length,
                         steps=steps, block_length=block_length)
    assert out.shape == (3, gen_length) and not (out == MASK).any()
    assert len(calls) == steps                                   # one forward pass per step
    assert all(torch.equal(c[:, :5], PROMPTS) for c in calls)    # the prompt is never touched
    steps_per_block = steps // (gen_length // block_length)
    sequence = calls + [torch.cat([PROMPTS, out], dim=1)]
    for step, (before, after) in enumerate(zip(sequence, sequence[1:])):
        block = step // steps_per_block
        committed = (before[:, 5:] == MASK) & (after[:, 5:] != MASK)
        expected = transfer_schedule(block_length, steps_per_block)[step % steps_per_block]
        assert committed.sum(dim=1).tolist() == [expected] * 3
        columns = committed.any(dim=0).nonzero().flatten()
        assert ((columns >= block * block_length) & (columns < (block + 1) * block_length)).all()
        assert (after[:, 5 + (block + 1) * block_length:] == MASK).all()   # later blocks still masked
        assert torch.equal(after[~(before == MASK)], before[~(before == MASK)])  # commits are final


def test_llada_is_deterministic_and_needs_whole_blocks():
    logits, _ = recording_logits("standin_llada")
    first = llada_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=8, steps=8, block_length=4)
    again = llada_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=8, steps=8, block_length=4)
    assert torch.equal(first, again)
    with pytest.raises(ValueError, match="multiple of block_length"):
        llada_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=8, steps=8, block_length=3)
    with pytest.raises(ValueError, match="multiple of the number of blocks"):
        llada_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=8, steps=3, block_length=4)


@pytest.mark.parametrize("alg", ["entropy", "maskgit_plus"])
def test_dream_follows_its_time_schedule_and_commits_everything(alg):
    logits, calls = recording_logits("standin_dream")
    steps, eps = 5, 1e-3
    out = dream_generate(logits, PROMPTS, PROMPT_MASK, mask_token_id=MASK, gen_length=8, steps=steps, alg=alg, eps=eps)
    assert out.shape == (3, 8) and not (out == MASK).any() and len(calls) == steps
    remaining = [int((c[0, 5:] == MASK).sum()) for c in calls] + [0]
    time = torch.linspace(1, eps, steps + 1)
    for step in range(steps - 1):
        assert remaining[step] - remaining[step + 1] == int(remaining[step] * (1 - time[step + 1] / time[step]))


def baseline_llada_generate():
    """The earlier LLaDA sampler, which the benchmark keeps as its baseline."""
    path = ROOT / "benchmarks/llm_speed.py"
    module_spec = importlib.util.spec_from_file_location("llm_speed", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.baseline_llada_generate


def baseline_dream_generate(logits_fn, prompt_ids, padding_mask, *, mask_token_id, gen_length, steps, alg, eps):
    """Dream's earlier sampler: the logits of every position, confidences over the whole
    answer (with its entropy fixed: p · log p was NaN at the excluded mask token, p = 0)."""
    start = prompt_ids.shape[1]
    x = torch.cat([prompt_ids, torch.full((len(prompt_ids), gen_length), mask_token_id)], dim=1)
    padding_mask = torch.cat([padding_mask, torch.ones((len(prompt_ids), gen_length), dtype=torch.long)], dim=1)
    timesteps = torch.linspace(1, eps, steps + 1)
    for step in range(steps):
        answer = x[:, start:]
        still_masked = answer == mask_token_id
        logits = logits_fn(x, padding_mask)[:, start:].float()
        logits[..., mask_token_id] = -torch.inf
        log_probs = torch.log_softmax(logits, dim=-1)
        top_log_prob, candidate = log_probs.max(dim=-1)
        confidence = -torch.special.entr(log_probs.exp()).sum(dim=-1) if alg == "entropy" else top_log_prob.exp()
        remaining = int(still_masked[0].sum())
        t, s = timesteps[step], timesteps[step + 1]
        count = int(remaining * (1 - s / t)) if step < steps - 1 else remaining
        if count:
            chosen = confidence.masked_fill(~still_masked, -torch.inf).topk(count, dim=1).indices
            answer.scatter_(1, chosen, candidate.gather(1, chosen))
    return x[:, start:]


def random_backbone(name: str, vocab: int = 64) -> Backbone:
    """A random stand-in whose LM head is scaled up: a freshly initialised one predicts nearly
    uniform distributions whose confidences tie exactly in float32, and tied candidates are an
    arbitrary choice for ``topk`` (the baseline), so they could not tell the samplers apart."""
    spec = tiny_standin(name)
    model = build_standin(spec, vocab, 0, seed=11).eval()
    model.lm_head.weight.data.mul_(50)
    return Backbone(spec, model, None, 0, 0, frozenset([0]), MASK)


@pytest.mark.parametrize("name", ["standin_llada", "standin_dream"])
def test_logits_at_positions_are_those_of_the_whole_sequence(name):
    backbone = random_backbone(name)
    ids = torch.cat([PROMPTS, torch.full((3, 4), MASK)], dim=1)
    padding_mask = torch.cat([PROMPT_MASK, torch.ones((3, 4), dtype=torch.long)], dim=1)
    positions = torch.tensor([[5, 7], [6, 8], [5, 8]])
    every = backbone.logits(ids, padding_mask)
    at_positions = backbone.logits(ids, padding_mask, positions)
    assert at_positions.shape == (3, 2, 64)
    assert torch.allclose(at_positions, every.gather(1, positions[..., None].expand(-1, -1, 64)), atol=1e-5)


@pytest.mark.parametrize("gen_length,steps,block_length", [(8, 8, 8), (12, 6, 4), (4, 8, 4), (16, 16, 8)])
def test_llada_gives_the_tokens_of_the_baseline_sampler(gen_length, steps, block_length):
    backbone = random_backbone("standin_llada", vocab=256)
    prompts = torch.randint(2, 256, (6, 5), generator=torch.Generator().manual_seed(gen_length + steps))
    prompt_mask = (torch.arange(5) >= torch.tensor([[0], [2], [1], [0], [3], [4]])).long()
    common = dict(mask_token_id=MASK, gen_length=gen_length, steps=steps, block_length=block_length)
    fast = llada_generate(backbone.logits, prompts * prompt_mask, prompt_mask, **common)
    baseline = baseline_llada_generate()(backbone.logits, prompts * prompt_mask, prompt_mask, **common)
    assert torch.equal(fast, baseline)


@pytest.mark.parametrize("alg,steps", [("entropy", 8), ("maskgit_plus", 5), ("entropy", 32)])
def test_dream_gives_the_tokens_of_the_baseline_sampler(alg, steps):
    backbone = random_backbone("standin_dream", vocab=256)
    prompts = torch.randint(2, 256, (6, 5), generator=torch.Generator().manual_seed(steps))
    prompt_mask = (torch.arange(5) >= torch.tensor([[0], [2], [1], [0], [3], [4]])).long()
    common = dict(mask_token_id=MASK, gen_length=8, steps=steps, alg=alg, eps=1e-3)
    fast = dream_generate(backbone.logits, prompts * prompt_mask, prompt_mask, **common)
    assert torch.equal(fast, baseline_dream_generate(backbone.logits, prompts * prompt_mask, prompt_mask, **common))
