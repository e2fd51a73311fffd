import pytest
import torch

from revcurse.data.toy import MASK_ID, VOCAB_SIZE
from revcurse.models import ModelConfig


@pytest.fixture
def tiny_cfg():
    """Factory for small toy model configs (defaults: the MDM shape)."""
    def make(**overrides):
        fields = dict(vocab_size=VOCAB_SIZE, seq_len=6, d_model=16, n_heads=2, dropout=0.0, never_predict=MASK_ID)
        fields.update(overrides)
        return ModelConfig(**fields)
    return make


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
