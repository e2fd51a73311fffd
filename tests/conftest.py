import pytest
import torch

from helpers.workflow import copy_workflow, snakemake
from revcurse.data.toy import MASK_ID, VOCAB_SIZE
from revcurse.toy.model import ModelConfig

WORKFLOW_FIXTURES = {"quick_all", "workdir"}


def pytest_collection_modifyitems(items):
    """Markers by what a test needs: a test of tests/workflow/test_slurm*.py needs SLURM; one that uses a
    workflow fixture, or whose module runs Snakemake itself (``helpers.workflow.snakemake``), runs Snakemake."""
    for item in items:
        if item.path.name.startswith("test_slurm"):
            item.add_marker(pytest.mark.slurm)
        if WORKFLOW_FIXTURES & set(item.fixturenames) or getattr(item.module, "snakemake", None) is snakemake:
            item.add_marker(pytest.mark.workflow)


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
    root = copy_workflow(tmp_path_factory.mktemp("quick_all"))
    snakemake("--config", "preset=quick", "--cores", "2", "all", cwd=root)
    return root


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A copy of the workflow per test module, for dry runs that must not touch the repository."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(1)
