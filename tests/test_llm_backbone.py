"""The calling conventions of each family: bidirectional MDMs, causal ARMs, Dream's shifted logits."""
import pytest
import torch
from llm_helpers import tiny_standin

from revcurse.llm.backbone import Backbone
from revcurse.llm.standins import build_standin

STANDINS = ["standin_llada", "standin_dream", "standin_llama", "standin_qwen"]


def standin_backbone(name: str) -> Backbone:
    spec = tiny_standin(name)
    return Backbone(spec, build_standin(spec, 64, 0, seed=1).eval(), None, 0, 0, frozenset([0]), 1)


@pytest.mark.parametrize("name", STANDINS)
def test_mdm_stand_ins_attend_both_ways_arms_causally(name):
    backbone = standin_backbone(name)
    ids, mask = torch.tensor([[5, 6, 7, 8, 9]]), torch.ones(1, 5, dtype=torch.long)
    changed = ids.clone()
    changed[0, 4] = 10
    with torch.no_grad():
        before, after = backbone.logits(ids, mask), backbone.logits(changed, mask)
    # Row 1 is computed from position 1 (position 0 with Dream's shift): it sees the last token
    # only through bidirectional attention.
    sees_the_future = not torch.allclose(before[0, 1], after[0, 1])
    assert sees_the_future == (backbone.spec.kind == "mdm")


@pytest.mark.parametrize("name", STANDINS)
def test_left_padding_changes_no_logit(name):
    backbone = standin_backbone(name)
    ids, mask = torch.tensor([[5, 6, 7, 8]]), torch.ones(1, 4, dtype=torch.long)
    padded, padded_mask = torch.tensor([[0, 0, 5, 6, 7, 8]]), torch.tensor([[0, 0, 1, 1, 1, 1]])
    with torch.no_grad():
        plain, left_padded = backbone.logits(ids, mask), backbone.logits(padded, padded_mask)
    # Dream's shift gives row 2 of the padded batch the first pad's prediction: compare from row 3.
    assert torch.allclose(plain[0, 1:], left_padded[0, 3:], atol=1e-5)


class RawLogits(torch.nn.Module):
    """A model whose raw logits at position i favour token 100 + i, whatever the input."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        batch, width = input_ids.shape
        logits = torch.zeros(batch, width, 200)
        logits[:, torch.arange(width), 100 + torch.arange(width)] = 10.0
        return type("Output", (), {"logits": logits + self.weight})()


@pytest.mark.parametrize("shift", [True, False])
def test_dream_shift_moves_every_prediction_one_position_right(shift):
    spec = tiny_standin("standin_dream", logits_shift=shift)
    logits = Backbone(spec, RawLogits(), None, 0, 0, frozenset([0]), 1).logits(
        torch.zeros(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.long))
    predicted = logits.argmax(-1)[0].tolist()
    assert predicted == ([100, 100, 101, 102, 103, 104] if shift else [100, 101, 102, 103, 104, 105])
