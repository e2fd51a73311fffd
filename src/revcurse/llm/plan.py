"""The large-scale grid as the workflow sees it: runs, paths, run specs, resources, envs.

Kept free of Snakemake (workflow/rules/llm.smk calls it) so the tests can check the same plan.
A run is one (model, dataset, direction, seed); ``llm.grid.tasks`` names the rows of Table 1
(P2C, C2P, P2D, D2P, T-REx), mapped to dataset and direction by ``TASKS``.
"""
from __future__ import annotations

import sys

from revcurse.data.relational import TASKS
from revcurse.llm.model.registry import MissingWeightsError, ModelSpec, check_weights, resolve_weights

TASK_OF = {dataset_direction: task for task, dataset_direction in TASKS.items()}

# Per job at the first attempt (retries multiply memory and time). A stand-in is fastest on one
# thread, which lets a 2-core laptop run two jobs side by side; an 8B model is loaded in bf16
# (16 GB) on the host before it moves to the GPU, and 150 epochs of a few hundred examples take
# well under the time below on one H100 (benchmarks/llm_speed.py).
RESOURCES = {
    "standin": {"threads": 1, "mem_mb": 4000, "train_minutes": 30, "eval_minutes": 30},
    "real": {"threads": 4, "mem_mb": 64000, "train_minutes": 240, "eval_minutes": 120},
}

# Envs relative to workflow/rules/: LLaDA's and Dream's remote code needs the older transformers.
ENVS = {True: "../../envs/llm-remote-code.yaml", False: "../../envs/llm.yaml"}

_warned: set[str] = set()


def llm_dir(config: dict) -> str:
    return f"results/{config['preset']}/llm"


def tokenizer_path(config: dict) -> str:
    return f"{llm_dir(config)}/tokenizer/tokenizer.json"


def model_spec(config: dict, model: str) -> ModelSpec:
    """``model``'s entry of llm.models; a name that is not there (e.g. a typo in a target path) is a ValueError
    naming the ones that are."""
    models = config["llm"]["models"]
    if model not in models:
        raise ValueError(f"large model {model!r} (in a target path or a config key) is not in llm.models; "
                         f"expected one of {', '.join(models)}")
    return ModelSpec.from_config(model, models[model])


def check_llm_config(config: dict) -> None:
    """The large-model section's rules that span several keys, checked when the config is loaded
    (revcurse.pipeline.config): every entry of llm.models passes ModelSpec's checks, llm.grid.models names entries
    of llm.models, and llm.train.stack_seeds suits them (``stacks_seeds``). Raises ValueError naming the keys."""
    llm = config["llm"]
    for model in llm["models"]:
        model_spec(config, model)
    for model in llm["grid"]["models"]:
        if model not in llm["models"]:
            raise ValueError(f"config.yaml: llm.grid.models names {model!r}; expected keys of llm.models "
                             f"{sorted(llm['models'])}")
    stacks_seeds(config)


def grid_runs(config: dict) -> list[dict]:
    """Every (model, dataset, direction, seed) of ``llm.grid``."""
    grid = config["llm"]["grid"]
    return [
        {"model": model, "dataset": TASKS[task][0], "direction": TASKS[task][1], "seed": seed}
        for model in grid["models"]
        for task in grid["tasks"]
        for seed in grid["seeds"]
    ]


def run_dir(config: dict, model: str, dataset: str, direction: str, seed: int) -> str:
    return f"{llm_dir(config)}/{model}/{dataset}/{direction}/seed{seed}"


def run_files(config: dict, name: str) -> list[str]:
    return [f"{run_dir(config, **run)}/{name}" for run in grid_runs(config)]


def stacks_seeds(config: dict) -> bool:
    """``llm.train.stack_seeds``: one fine-tuning job trains all the grid's seeds of a (model,
    dataset, direction) together over one frozen base (finetune.py). Only for the real models,
    whose base is their checkpoint: a stand-in draws its random base from each run's seed and
    trains it, so a grid with one is an error, before any job starts."""
    if not config["llm"]["train"]["stack_seeds"]:
        return False
    own_base = [m for m in config["llm"]["grid"]["models"]
                if model_spec(config, m).is_standin or model_spec(config, m).train_base]
    if own_base:
        raise ValueError(
            f"config.yaml: llm.train.stack_seeds is true, but llm.grid.models has {own_base}, whose runs each have "
            f"their own base (a stand-in's is drawn from the run seed and trains: llm.models.<model>.train_base), "
            f"so their seeds cannot share one; set llm.train.stack_seeds: false (the quick preset does)")
    return True


def finetune_outputs(config: dict, stacked: bool) -> list[str]:
    """The ``checkpoints.json`` patterns an ``llm_finetune`` job writes: its run's, or (stacked)
    those of every seed of the grid; ``{model}``, ``{dataset}``, ``{direction}`` (and ``{seed}``)
    are wildcards."""
    seeds = config["llm"]["grid"]["seeds"] if stacked else ["{seed}"]
    return [f"{run_dir(config, '{model}', '{dataset}', '{direction}', seed)}/checkpoints.json" for seed in seeds]


def finetune_job_spec(config: dict, model: str, dataset: str, direction: str, seed: int | None) -> dict | list[dict]:
    """What one ``llm_finetune`` job runs: the run of ``seed``, or (stacked, ``seed`` None) the
    runs of every seed of the grid, in its order."""
    if seed is not None:
        return finetune_spec(config, model, dataset, direction, seed)
    return [finetune_spec(config, model, dataset, direction, s) for s in config["llm"]["grid"]["seeds"]]


def finetune_spec(config: dict, model: str, dataset: str, direction: str, seed: int) -> dict:
    """Everything a fine-tuning run depends on (and nothing it does not, e.g. decoding, or
    whether it trains alone or stacked with its other seeds: the same protocol)."""
    llm, spec = config["llm"], model_spec(config, model)
    return {
        "preset": config["preset"],
        **_run_keys(config, model, dataset, direction, seed),
        "learning_rate": spec.learning_rate(dataset),
        "train": {key: value for key, value in llm["train"].items() if key != "stack_seeds"},
        # An MDM's answer is padded to the generation length it will fill at evaluation.
        "answer_length": llm["eval"]["max_new_tokens"] if spec.kind == "mdm" else None,
    }


def evaluate_spec(config: dict, model: str, dataset: str, direction: str, seed: int) -> dict:
    return {
        "preset": config["preset"],
        **_run_keys(config, model, dataset, direction, seed),
        "eval": config["llm"]["eval"],
        "device": config["llm"]["train"]["device"],
    }


def _run_keys(config: dict, model: str, dataset: str, direction: str, seed: int) -> dict:
    spec = model_spec(config, model)
    return {
        "model": model,
        "model_config": config["llm"]["models"][model],
        "task": TASK_OF[(dataset, direction)],
        "dataset": dataset,
        "direction": direction,
        "seed": seed,
        "tokenizer": tokenizer_path(config) if spec.is_standin else None,
        "lora": config["llm"]["lora"],
    }


def model_inputs(config: dict, model: str, dry_run: bool) -> dict[str, str]:
    """Files a run's jobs need for its model: a stand-in's tokenizer. For a real model, nothing
    the workflow makes, but its weights must be here: a missing checkpoint stops the workflow
    while the DAG is built, before any job (a dry run only warns, once per model, so the paper
    grid can be listed on a machine without the checkpoints)."""
    spec = model_spec(config, model)
    if spec.is_standin:
        return {"tokenizer": tokenizer_path(config)}
    try:
        resolve_weights(spec)
    except MissingWeightsError as error:
        if not dry_run:     # one error naming every model of the grid without weights, not just this one
            check_weights([model_spec(config, m) for m in config["llm"].get("grid", {}).get("models", [model])])
            raise
        if model not in _warned:
            _warned.add(model)
            print(f"WARNING (dry run; a real run stops here): {error}", file=sys.stderr)
    return {}


def resources(config: dict, model: str) -> dict:
    return RESOURCES["standin" if model_spec(config, model).is_standin else "real"]


def gpus(config: dict, job: str) -> int:
    """GPUs a ``train`` or ``eval`` job asks for: none when the config pins the CPU; training
    takes one per process, evaluation one."""
    train = config["llm"]["train"]
    if train["device"] == "cpu":
        return 0
    return train["processes"] if job == "train" else 1


def launcher(config: dict) -> str:
    """``python``, or ``accelerate launch`` with one process per GPU."""
    processes = config["llm"]["train"]["processes"]
    return "python" if processes == 1 else f"accelerate launch --num_processes {processes}"


def conda_env(config: dict, model: str) -> str:
    return ENVS[model_spec(config, model).remote_code]
