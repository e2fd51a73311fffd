"""Tripwire on the toy training arithmetic: the first steps of the shipped reference's cell (and of the workflow's
default config) repeat the stored losses, gradient norms and weights bit for bit (tests/helpers/tripwire.py)."""
import math

import pytest
import torch

from helpers.tripwire import CASES, mismatch, other_machine, short_run, stored
from revcurse.toy import train as toy_train

pytestmark = pytest.mark.slow


def stored_here(case: str) -> dict:
    values = stored(case)
    reason = other_machine(values)
    if reason:
        pytest.skip(reason)
    return values


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_arithmetic_is_unchanged(case):
    values = stored_here(case)
    problem = mismatch(values, short_run(case))
    assert problem is None, problem


def test_a_one_ulp_change_to_the_loss_trips_it(monkeypatch):
    """The loss one ulp up at every step (its gradient untouched): caught at step 1."""
    values = stored_here("paper_bf16")
    loss_of = toy_train.training_loss

    def one_ulp_up(*args, **kwargs):
        loss = loss_of(*args, **kwargs)
        return loss + (torch.nextafter(loss.detach(), torch.full_like(loss, math.inf)) - loss.detach())

    monkeypatch.setattr(toy_train, "training_loss", one_ulp_up)
    problem = mismatch(values, short_run("paper_bf16"))
    assert problem is not None and "training arithmetic changed" in problem and "at step 1:" in problem, problem


def test_the_old_gradient_norm_order_trips_it(monkeypatch):
    """98dd79f's change, undone: the per-member squared norms reduced as torch.stack(...).sum(0) again
    (train.clip_member_grad_norms adds them with `sum`), as the shipped reference's code did."""
    values = stored_here("paper_bf16")
    monkeypatch.setattr(toy_train, "sum", lambda terms: torch.stack(list(terms)).sum(0), raising=False)
    problem = mismatch(values, short_run("paper_bf16"))
    assert problem is not None and "gradient norm" in problem, problem
