"""The toy study's run specs: what each training and evaluation job depends on, built from the resolved config
(the workflow passes them to ``python -m revcurse.toy`` as JSON, so a job reruns exactly when they change)."""
from __future__ import annotations


def toy_model_fields(config: dict, model: str) -> dict:
    """One toy model's definition: the shared ``model_defaults`` overlaid with its entry."""
    toy = config["toy"]
    return {**toy["model_defaults"], **toy["models"][model]}


def toy_train_spec(config: dict, model: str, length: int, seed: int) -> dict:
    """Everything a toy training run depends on (and nothing it does not, e.g. eval settings)."""
    return {
        "preset": config["preset"],
        "model": model,
        "length": length,
        "seed": seed,
        "model_fields": toy_model_fields(config, model),
        "train": config["toy"]["train"],
    }


def toy_eval_spec(config: dict, model: str, length: int, seed: int) -> dict:
    return {"preset": config["preset"], "model": model, "length": length, "seed": seed,
            "eval": config["toy"]["eval"]}


def toy_eval_over_training_spec(config: dict, model: str, length: int, seed: int) -> dict:
    """Accuracy over training: decoding as toy.eval, schedule and sample count of toy.eval_over_training."""
    return {**toy_eval_spec(config, model, length, seed), "over_training": config["toy"]["eval_over_training"]}


def toy_probe_spec(config: dict, study: str, model: str, length: int, seed: int) -> dict:
    """A probe job's spec: the run, the weights Table 2 evaluates, and toy.probes' snapshot schedule and arithmetic."""
    probes = config["toy"]["probes"]
    return {"preset": config["preset"], "study": study, "model": model, "length": length, "seed": seed,
            "weights": config["toy"]["eval"]["weights"], "every": probes["every"], "precision": probes["precision"]}
