"""The model registry: where weights come from, and the error when they are not here."""
import pytest
import torch

from helpers.llm import COMMIT, local_checkpoint, real_llama, record_revision, registry_entry, tiny_standin
from revcurse.llm import plan
from revcurse.llm.model.backbone import load_backbone
from revcurse.llm.model.registry import (STANDIN_REVISION, STATED, MissingWeightsError, ModelSpec, resolve_weights,
                                         weights_revision)
from revcurse.llm.model.tokenizer import EOS_TOKEN

OTHER = "fedcba9876543210fedcba9876543210fedcba98"


def real_spec(weights: str, revision: str | None = COMMIT) -> ModelSpec:
    return ModelSpec.from_config("llada", {**registry_entry("llada"), "weights": weights, "revision": revision})


def test_an_uncached_hub_id_names_the_config_key_and_the_fixes():
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec("revcurse-tests/no-such-model"))
    message = str(error.value)
    assert "llm.models.llada.weights = 'revcurse-tests/no-such-model'" in message
    assert "Nothing is downloaded" in message
    assert "--configfile" in message and "llm: {models: {llada: {weights: /path/to/" in message
    assert "preset=quick" in message and "docs/llm.md" in message


def test_a_local_path_is_told_from_a_hub_id(tmp_path):
    missing = tmp_path / "models" / "LLaDA-8B-Instruct"
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec(str(missing)))
    message = str(error.value)
    assert f"= '{missing}', a local directory: there is no directory {missing}" in message
    assert f"--local-dir {missing}`" in message and f"hf download {missing}" not in message
    assert "hub id" not in message and "gated" not in message          # LLaDA is not gated
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec("revcurse-tests/absent"))
    assert (f"'revcurse-tests/absent', a Hugging Face hub id, at revision {COMMIT} is neither a local directory nor in "
            f"the Hugging Face cache") in str(error.value)
    assert "`hf download revcurse-tests/absent --revision 0123" in str(error.value)


def test_every_model_without_weights_is_named_at_once_and_gated_ones_say_how_to_get_access(tmp_path, monkeypatch,
                                                                                          capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_never_printed")
    weights = {"llada": "revcurse-tests/absent", "llama": "meta-llama/Llama-3.1-8B-Instruct",
               "qwen": str(tmp_path / "qwen"), "dream": "revcurse-tests/absent-too"}
    config = {"preset": "paper", "llm": {"grid": {"models": [*weights, "standin_llama"]}, "models": {
        "standin_llama": registry_entry("standin_llama"),
        **{m: {**registry_entry(m), "weights": w, "revision": COMMIT} for m, w in weights.items()}}}}
    with pytest.raises(MissingWeightsError) as error:        # the first model's job stops the run ...
        plan.model_inputs(config, "llada", dry_run=False)
    message = str(error.value)
    assert message.startswith("4 models have no usable weights here")          # ... naming all four
    for n, (model, path) in enumerate(weights.items(), 1):
        assert f"{n}. config.yaml: llm.models.{model}.weights = '{path}'" in message
    gated = message.split("2. ")[1].split("3. ")[0]
    assert "LLaMA-3.1 8B is a gated model" in gated and "accept its licence on " \
        "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct" in gated
    assert "environment variable HF_TOKEN" in gated and "Never write the token" in gated
    assert message.count("gated") == 1                       # only the LLaMA
    assert "hf_secret_never_printed" not in message + capsys.readouterr().err
    local_llama = {**config["llm"]["models"]["llama"], "weights": str(tmp_path / "llama")}
    with pytest.raises(MissingWeightsError, match="LLaMA-3.1 8B is a gated model: .* accept its licence on its page"):
        resolve_weights(ModelSpec.from_config("llama", local_llama))   # a local copy of it: still says how


def test_a_local_directory_needs_a_config_json(tmp_path):
    with pytest.raises(MissingWeightsError, match="has no config.json"):
        resolve_weights(real_spec(str(tmp_path)))
    (tmp_path / "config.json").write_text("{}")
    record_revision(tmp_path, COMMIT)
    assert resolve_weights(real_spec(str(tmp_path))) == tmp_path


def test_a_real_model_runs_only_on_its_pinned_revision(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    repository = registry_entry("llada")["repository"]
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec(str(tmp_path)))
    # A local directory is no hub repository: the command fetches the one config.yaml names for it.
    assert (f"do not record their revision: fetch them with `hf download {repository} --revision {COMMIT} "
            f"--local-dir DIR`") in str(error.value) and f"hf download {tmp_path}" not in str(error.value)
    assert "`revision_stated: true` under llm.models.llada" in str(error.value)
    unnamed = {**registry_entry("llada"), "weights": str(tmp_path), "revision": COMMIT, "repository": None}
    with pytest.raises(MissingWeightsError, match=r"`hf download <the hub repository; set llm\.models\.llada\."
                                                  r"repository> --revision"):
        resolve_weights(ModelSpec.from_config("llada", unnamed))
    record_revision(tmp_path, OTHER)
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec(str(tmp_path)))
    assert f"llm.models.llada.revision = {COMMIT} but the weights at {tmp_path} are revision {OTHER}" in str(error.value)
    assert f"`hf download {repository} --revision {COMMIT} --local-dir DIR`" in str(error.value)
    assert f"hf download {tmp_path}" not in str(error.value)
    with pytest.raises(MissingWeightsError) as error:      # not pinned: the message names the commit found
        resolve_weights(real_spec(str(tmp_path), revision=None))
    assert "llm.models.llada.revision is not set" in str(error.value) and f"`revision: {OTHER}`" in str(error.value)
    assert weights_revision(real_spec(str(tmp_path), revision=OTHER)) == OTHER
    assert weights_revision(tiny_standin("standin_llada")) == STANDIN_REVISION


def test_a_hub_id_resolves_to_the_cache_snapshot_of_the_pinned_commit(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))   # read when called
    snapshot = tmp_path / "models--org--model" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--org--model" / "refs").mkdir()
    (tmp_path / "models--org--model" / "refs" / "main").write_text(COMMIT)
    assert resolve_weights(real_spec("org/model")) == snapshot
    with pytest.raises(MissingWeightsError, match=f"= {OTHER} but the Hugging Face cache holds org/model at revision "
                                                  f"{COMMIT}, not that one"):
        resolve_weights(real_spec("org/model", revision=OTHER))
    with pytest.raises(MissingWeightsError, match=f"`revision: {COMMIT}`"):
        resolve_weights(real_spec("org/model", revision=None))


def test_weights_that_record_no_commit_run_on_a_stated_revision_recorded_as_stated(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    stated = ModelSpec.from_config("llada", {**registry_entry("llada"), "weights": str(tmp_path), "revision": COMMIT,
                                             "revision_stated": True})
    assert resolve_weights(stated) == tmp_path and weights_revision(stated) == f"{COMMIT}{STATED}"
    record_revision(tmp_path, OTHER)          # weights that do record a commit: that one must be the pinned one
    with pytest.raises(MissingWeightsError, match=f"are revision {OTHER}"):
        resolve_weights(stated)
    record_revision(tmp_path, COMMIT)
    assert weights_revision(stated) == COMMIT
    with pytest.raises(ValueError, match=r"llm\.models\.llada\.revision_stated is true but llm\.models\.llada\."
                                         r"revision is null"):
        ModelSpec.from_config("llada", {**registry_entry("llada"), "revision": None, "revision_stated": True})


def test_a_cache_holding_only_a_revision_snapshot_names_it(tmp_path, monkeypatch):
    """`hf download REPO --revision COMMIT` fills a snapshot and no branch ref: the cache holds the
    model, so the message says which commit it holds instead of calling it absent."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    snapshot = tmp_path / "models--org--model" / "snapshots" / OTHER
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec("org/model", revision=None))
    assert (f"llm.models.llada.revision is not set and the Hugging Face cache holds org/model at revision {OTHER}"
            in str(error.value)) and f"`revision: {OTHER}`" in str(error.value)
    with pytest.raises(MissingWeightsError) as error:
        resolve_weights(real_spec("org/model", revision=COMMIT))
    assert f"= {COMMIT} but the Hugging Face cache holds org/model at revision {OTHER}, not that one" in str(error.value)
    assert f"`hf download org/model --revision {COMMIT}`" in str(error.value)
    assert "neither a local directory nor in the Hugging Face cache" not in str(error.value)
    assert resolve_weights(real_spec("org/model", revision=OTHER)) == snapshot


def test_a_revision_is_a_commit_hash_and_stand_ins_have_none():
    with pytest.raises(ValueError, match=r"llm\.models\.llada\.revision = 'main'; expected the 40-hex commit"):
        real_spec("somewhere", revision="main")
    with pytest.raises(ValueError, match="a stand-in has no hub revision"):
        ModelSpec.from_config("x", {**registry_entry("standin_llama"), "revision": COMMIT})


def test_model_inputs_stop_a_real_run_and_only_warn_in_a_dry_run(capsys):
    config = {"preset": "paper", "llm": {"models": {"llada": {**registry_entry("llada"),
                                                              "weights": "revcurse-tests/absent"}}}}
    with pytest.raises(MissingWeightsError):
        plan.model_inputs(config, "llada", dry_run=False)
    assert plan.model_inputs(config, "llada", dry_run=True) == {}
    assert "llm.models.llada.weights" in capsys.readouterr().err


def test_entries_are_checked_for_consistency():
    entry = registry_entry("standin_llama")
    with pytest.raises(ValueError, match="exactly one of 'weights'"):
        ModelSpec.from_config("x", {**entry, "weights": "somewhere"})
    with pytest.raises(ValueError, match=r"llm\.models\.x\.sampler = 'llada'"):
        ModelSpec.from_config("x", {**entry, "sampler": "llada"})


def test_learning_rates_per_dataset_as_in_app_c():
    rates = {name: ModelSpec.from_config(name, registry_entry(name)) for name in ("llada", "llama", "qwen")}
    assert [rates[m].learning_rate("parent_child") for m in rates] == [5e-5, 5e-5, 1e-4]
    assert [rates[m].learning_rate("trex") for m in rates] == [2e-4, 9e-5, 5e-5]


def test_remote_code_models_run_in_the_older_transformers_env():
    config = {"llm": {"models": {m: registry_entry(m) for m in ("llada", "dream", "llama", "standin_llada")}}}
    envs = {m: plan.conda_env(config, m) for m in config["llm"]["models"]}
    assert envs == {"llada": "../../envs/llm-remote-code.yaml", "dream": "../../envs/llm-remote-code.yaml",
                    "llama": "../../envs/llm.yaml", "standin_llada": "../../envs/llm.yaml"}


def test_a_real_arm_loads_from_a_local_checkpoint_with_pad_equal_to_eos(tmp_path):
    backbone = load_backbone(real_llama(local_checkpoint(tmp_path / "ckpt")), torch.device("cpu"), seed=0)
    assert type(backbone.model).__name__ == "LlamaForCausalLM" and backbone.revision == COMMIT
    assert backbone.pad_token_id == backbone.eos_token_id == backbone.tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    logits = backbone.logits(torch.tensor([[3, 4, 5]]), torch.ones(1, 3, dtype=torch.long))
    assert logits.shape == (1, 3, len(backbone.tokenizer))
