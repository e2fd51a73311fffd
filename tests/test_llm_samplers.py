"""The LLaDA and Dream samplers on a tiny random stand-in with a fixed seed."""
import pytest
import torch
from llm_helpers import tiny_standin

from revcurse.llm.backbone import Backbone
from revcurse.llm.samplers import dream_generate, llada_generate, transfer_schedule
from revcurse.llm.standins import build_standin

MASK = 1
PROMPTS = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12], [0, 13, 14, 15, 16]])
PROMPT_MASK = (torch.arange(5) >= torch.tensor([[2], [0], [1]])).long()


def recording_logits(name: str):
    """Backbone.logits of a random stand-in, recording the sequence it is called with."""
    spec = tiny_standin(name)
    backbone = Backbone(spec, build_standin(spec, 64, 0, seed=7).eval(), None, 0, 0, frozenset([0]), MASK)
    calls = []

    def logits(ids, padding_mask):
        calls.append(ids.clone())
        return backbone.logits(ids, padding_mask)
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
