"""The toy study's run specs: what each training and evaluation job depends on, built from the resolved config
(the workflow passes them to ``python -m revcurse.toy`` as JSON, so a job reruns exactly when they change)."""
from __future__ import annotations


def toy_model_fields(config: dict, model: str) -> dict:
    """One toy model's definition: the shared ``model_defaults`` overlaid with its entry. A model that is
    not in toy.models (e.g. a typo in a target path) is a ValueError naming the ones that are."""
    toy = config["toy"]
    if model not in toy["models"]:
        raise ValueError(f"toy model {model!r} (in a target path or a config key) is not in toy.models; "
                         f"expected one of {', '.join(toy['models'])}")
    return {**toy["model_defaults"], **toy["models"][model]}


def check_toy_config(config: dict) -> None:
    """The toy section's rules that span several keys, checked when the config is loaded (revcurse.pipeline.config),
    before any job: every model of toy.models passes ModelConfig's and TrainConfig's own checks (e.g. d_model
    divisible by n_heads), toy.eval.top_k is at most the vocabulary, the attention-only study names models of
    toy.models, and what reads snapshots reads them at steps that have one. Raises ValueError naming the keys."""
    from revcurse.data.toy import VOCAB_SIZE
    from revcurse.toy.train import toy_configs

    toy = config["toy"]
    if not set(toy["attention_only"]["models"]) <= set(toy["models"]):
        raise ValueError(f"config: toy.attention_only.models = {toy['attention_only']['models']}; "
                         f"expected names of toy.models ({', '.join(toy['models'])})")
    snapshot_every = toy["train"].get("snapshot_every")
    for reader in ("eval_over_training", "probes"):
        if not snapshot_every or toy[reader]["every"] % snapshot_every:
            raise ValueError(f"config: toy.{reader}.every = {toy[reader]['every']}; expected a multiple of "
                             f"toy.train.snapshot_every ({snapshot_every}): only snapshots can be read")
    for model in toy["models"]:
        try:
            toy_configs(toy_train_spec(config, model, toy["lengths"][0], toy["seeds"][0]))
        except ValueError as error:
            raise ValueError(f"config: toy.models.{model} (over toy.model_defaults and toy.train): {error}") from None
    if toy["eval"]["top_k"] > VOCAB_SIZE:
        raise ValueError(f"config: toy.eval.top_k = {toy['eval']['top_k']}; expected at most {VOCAB_SIZE}, the size "
                         f"of the toy vocabulary (src/revcurse/data/toy.py)")


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
    """An evaluation job's spec: the run, toy.eval (its precision included), and the device the run trained on."""
    return {"preset": config["preset"], "model": model, "length": length, "seed": seed,
            "eval": config["toy"]["eval"], "device": config["toy"]["train"]["device"]}


def toy_eval_over_training_spec(config: dict, model: str, length: int, seed: int) -> dict:
    """Accuracy over training: decoding as toy.eval, schedule and sample count of toy.eval_over_training."""
    return {**toy_eval_spec(config, model, length, seed), "over_training": config["toy"]["eval_over_training"]}


def toy_probe_spec(config: dict, study: str, model: str, length: int, seed: int, device: str | None = None) -> dict:
    """A probe job's spec: the run, the weights Table 2 evaluates, toy.probes' snapshot schedule and arithmetic, and
    the device: ``device``, or the one the run trained on (toy.train.device)."""
    probes = config["toy"]["probes"]
    return {"preset": config["preset"], "study": study, "model": model, "length": length, "seed": seed,
            "weights": config["toy"]["eval"]["weights"], "every": probes["every"], "precision": probes["precision"],
            "device": device or config["toy"]["train"]["device"]}
