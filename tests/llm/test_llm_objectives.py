"""The masked-diffusion and next-token objectives, and how examples become batches."""
import math

import pytest
import torch

from helpers.llm import write_tiny_tokenizer
from revcurse.llm.batches import Example, PromptFormat, encode_example, training_batch
from revcurse.llm.model.tokenizer import load_standin_tokenizer
from revcurse.llm.objectives import (arm_loss_mask, draw_masking_noise, mask_answers, masked_diffusion_loss,
                                     next_token_loss)

MASK, PAD = 99, 0
EXAMPLES = [Example((11, 12, 13), (21, 22, 0, 0)), Example((14, 15), (23, 24, 25, 0))]


def test_masking_never_touches_prompt_or_padding():
    batch = training_batch(EXAMPLES, PAD)
    generator = torch.Generator().manual_seed(0)
    ever_masked = torch.zeros_like(batch.answer_mask)
    for _ in range(200):
        rate, draws = draw_masking_noise(len(EXAMPLES), batch.input_ids.shape[1], 1e-3, generator)
        noisy, masked = mask_answers(batch.input_ids, batch.answer_mask, MASK, rate, draws)
        assert torch.equal(noisy[~batch.answer_mask], batch.input_ids[~batch.answer_mask])
        assert torch.equal(noisy == MASK, masked)
        ever_masked |= masked
    assert torch.equal(ever_masked, batch.answer_mask)      # every answer token, EOS padding included


def test_mask_rate_is_the_per_example_masking_probability():
    rate = torch.tensor([0.25, 0.75])
    draws = torch.rand(2, 10_000, generator=torch.Generator().manual_seed(1))
    ids = torch.ones(2, 10_000, dtype=torch.long)
    _, masked = mask_answers(ids, torch.ones_like(ids, dtype=torch.bool), MASK, rate, draws)
    assert masked.float().mean(dim=1).tolist() == pytest.approx([0.25, 0.75], abs=0.02)


def test_mdm_loss_is_masked_cross_entropy_over_t_per_answer_token():
    batch = training_batch(EXAMPLES, PAD)
    vocab = 100
    logits = torch.zeros(*batch.input_ids.shape, vocab)            # uniform: CE = log(vocab) per token
    masked = torch.zeros_like(batch.answer_mask)
    masked[0, 3] = masked[0, 4] = masked[1, 2] = True                # 2 and 1 masked answer tokens
    t = torch.tensor([0.5, 0.25])
    loss = masked_diffusion_loss(logits, batch.input_ids, masked, t, batch.answer_mask)
    answer_length = 4
    assert loss.tolist() == pytest.approx([2 * math.log(vocab) / 0.5 / answer_length,
                                           1 * math.log(vocab) / 0.25 / answer_length])
    halved = masked_diffusion_loss(logits, batch.input_ids, masked, 2 * t, batch.answer_mask)
    assert (loss / halved).tolist() == pytest.approx([2.0, 2.0])     # weight 1/t


def test_mdm_loss_ignores_logits_of_unmasked_positions():
    batch = training_batch(EXAMPLES, PAD)
    masked = torch.zeros_like(batch.answer_mask)
    masked[:, 3] = True
    logits = torch.randn(*batch.input_ids.shape, 100, generator=torch.Generator().manual_seed(2))
    changed = logits.clone()
    changed[:, :3, 7] += 5.0                                         # prompt positions
    t = torch.tensor([0.3, 0.6])
    assert torch.allclose(masked_diffusion_loss(logits, batch.input_ids, masked, t, batch.answer_mask),
                          masked_diffusion_loss(changed, batch.input_ids, masked, t, batch.answer_mask))


@pytest.mark.parametrize("prompt_in_loss", [False, True])
def test_arm_loss_covers_the_completion_and_optionally_the_prompt(prompt_in_loss):
    batch = training_batch(EXAMPLES, PAD)
    loss_mask = arm_loss_mask(batch.padding_mask, batch.answer_mask, prompt_in_loss)
    logits = torch.randn(*batch.input_ids.shape, 100, generator=torch.Generator().manual_seed(3))
    changed = logits.clone()
    changed[0, 0, 7] += 5.0                                          # predicts token 1, a prompt token
    differs = not torch.allclose(next_token_loss(logits, batch.input_ids, loss_mask),
                                 next_token_loss(changed, batch.input_ids, loss_mask))
    assert differs == prompt_in_loss


def test_answers_end_with_eos_and_mdm_answers_fill_the_generation_length(tmp_path):
    tokenizer = load_standin_tokenizer(write_tiny_tokenizer(tmp_path / "tokenizer.json"))
    eos, raw = tokenizer.eos_token_id, PromptFormat.of(tokenizer)
    arm = encode_example(raw, "Anna Bell's child is", "Carl Dorn", eos, None)
    mdm = encode_example(raw, "Anna Bell's child is", "Carl Dorn", eos, 8)
    completion = tokenizer(" Carl Dorn", add_special_tokens=False)["input_ids"]
    assert arm.answer_ids == (*completion, eos)
    assert mdm.answer_ids == (*completion, *[eos] * (8 - len(completion)))
    assert mdm.prompt_ids == arm.prompt_ids == tuple(tokenizer("Anna Bell's child is")["input_ids"])
    with pytest.raises(ValueError, match=r"llm\.eval\.max_new_tokens"):
        encode_example(raw, "Anna Bell's child is", "Carl Dorn", eos, len(completion))
