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


@pytest.fixture(scope="session")
def quick_all(tmp_path_factory):
    """`snakemake --config preset=quick all`, run once per session in a copy of the workflow.
    Tests that need finished outputs of any stage read it; none may change it."""
    from test_workflow import copy_workflow, snakemake

    root = copy_workflow(tmp_path_factory.mktemp("quick_all"))
    snakemake("--config", "preset=quick", "--cores", "2", "all", cwd=root)
    return root


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
