"""Why no stand-in of the quick preset can answer a reverse query (docs/llm.md, Stand-ins): the facts
its training data and objective leave out, checked on the datasets so the explanation in the docs
and in the quick tables' header (tables.STANDIN_NOTE) stays true if the data change."""
import pytest
import torch
import yaml

from revcurse.core.config import REPO_ROOT, resolve_config
from revcurse.data.relational import TASKS, build_dataset
from revcurse.data.relational.naming import load_resources
from revcurse.llm.batches import Example, training_batch
from revcurse.llm.objectives import mask_answers

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
QUICK_TASKS = resolve_config({**CONFIG, "preset": "quick"})["llm"]["grid"]["tasks"]


@pytest.fixture(scope="module")
def datasets():
    resources = load_resources()
    return {name: build_dataset(name, CONFIG["datasets"][name], resources) for name in {d for d, _ in TASKS.values()}}


def direction(datasets, task):
    dataset, name = TASKS[task]
    return datasets[dataset], next(d for d in datasets[dataset].directions if d.name == name)


@pytest.mark.parametrize("task", list(TASKS))
def test_no_reverse_answer_is_ever_a_training_completion(datasets, task):
    _, split = direction(datasets, task)
    completions = {row.completion.casefold() for row in split.train}
    assert split.eval_reverse and not any(answer.casefold() in completions
                                          for row in split.eval_reverse for answer in row.accepted_answers)


@pytest.mark.parametrize("task", QUICK_TASKS)
def test_the_reverse_wording_never_occurs_in_training_and_its_answers_only_in_prompts(datasets, task):
    dataset, split = direction(datasets, task)
    names = {entity.id: entity.name for entity in dataset.entities}
    wordings = {row.prompt.replace(names[row.source], "") for row in split.eval_reverse}
    assert wordings and not any(w in row.prompt for w in wordings for row in split.train)
    prompts = " ".join(row.prompt for row in split.train)
    assert all(row.completion in prompts for row in split.eval_reverse)     # A: a prompt token only


def test_the_mdm_objective_never_masks_the_prompt():
    batch = training_batch([Example((5, 6, 7), (8, 9)), Example((5, 6), (8, 9, 10))], pad_token_id=0)
    noisy, masked = mask_answers(batch.input_ids, batch.answer_mask, 1, torch.ones(2), torch.zeros(2, 5))
    assert torch.equal(masked, batch.answer_mask) and (noisy[~batch.answer_mask] != 1).all()   # t = 1: answers only
