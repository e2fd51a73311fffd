"""The config schema rejects bad values with a message naming the key and what was expected."""
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from revcurse.core.cli import BadInput
from revcurse.core.config import config_error, config_hash, deep_merge, dotted_values, resolve_config
from revcurse.pipeline.config import load_config
from revcurse.toy.specs import check_toy_config, toy_model_fields

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.fixture
def config():
    return resolve_config(yaml.safe_load((ROOT / "config.yaml").read_text()))


def test_shipped_config_and_every_preset_validate(config):
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, SCHEMA)
    for preset in raw["presets"]:
        validate(resolve_config({**raw, "preset": preset}), SCHEMA)


def test_paper_settings(config):
    toy = config["toy"]
    assert toy["lengths"] == [10, 20, 30, 40] and len(toy["seeds"]) == 3
    assert (toy["train"]["steps"], toy["train"]["batch_size"], toy["train"]["lr"]) == (3000, 256, 3e-4)
    assert (toy["train"]["warmup_steps"], toy["train"]["grad_clip"]) == (1000, 1.0)
    assert (toy["model_defaults"]["d_model"], toy["model_defaults"]["n_heads"], toy["model_defaults"]["dropout"]) == (256, 1, 0.02)
    assert toy["models"]["mdm"]["ema_decay"] == 0.9999 and toy["models"]["arm"]["ema_decay"] is None


@pytest.mark.parametrize("path, value, expected", [
    (("toy", "train", "steps"), "many", "'many' is not of type 'integer'"),          # wrong type
    (("toy", "train", "lr"), -1.0, "less than or equal to the minimum of 0"),          # out of range
    (("toy", "models", "mdm", "pos_encoding"), "alibi", "'alibi' is not one of"),    # not an allowed value
    (("toy", "eval", "top_k"), 0, "less than the minimum of 1"),                      # out of range
    (("toy", "train", "stepz"), 10, "Additional properties are not allowed ('stepz'"),  # typo'd key
    (("toy", "seeds"), [1, 1], "has non-unique elements"),                            # duplicate seeds
])
def test_schema_rejects_bad_values_naming_the_key(config, path, value, expected):
    bad = copy.deepcopy(config)
    node = bad
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as error:
        validate(bad, SCHEMA)
    message = str(error.value)
    assert expected in message
    where = "".join(f"[{k!r}]" for k in path[:-1] if not (path[-1] == "stepz"))
    assert f"On instance{where}" in message


@pytest.mark.parametrize("overlay, command_line, expected", [
    ({"toy": {"train": {"lr": -1.0}}}, {}, "config: toy.train.lr = -1.0: it is less than or equal to the minimum of 0"),
    ({"toy": {"train": {"stepz": 10}}}, {},
     "config: unknown key(s) 'stepz' under toy.train ('stepz': did you mean 'steps'?); expected one of batch_size,"),
    ({"toyy": 1}, {}, "config: unknown key(s) 'toyy' under the top level ('toyy': did you mean 'toy'?)"),
    # `--config 'toy={train: {steps: 50}}'`: Snakemake reads the nested value as a string
    ({"toy": {"train": {"steps": "50"}}}, {"toy": {"train": {"steps": "50"}}},
     "config: toy.train.steps = '50': it is not of type 'integer'. --config reads nested values as strings"),
    ({"toy.train.steps": 50}, {"toy.train.steps": 50}, "config: unknown key(s) 'toy.train.steps' under the top level"),
])
def test_a_config_error_is_one_line_naming_the_key(config, overlay, command_line, expected):
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    assert config_error(config, schema) is None
    message = config_error(deep_merge(config, overlay), schema, command_line)
    assert message.startswith(expected) and "\n" not in message and "Failed validating" not in message
    assert ("--configfile FILE" in message) == bool(command_line)


@pytest.mark.parametrize("overlay, expected", [
    ({"model_defaults": {"n_heads": 3}}, "config: toy.models.mdm (over toy.model_defaults and toy.train): "
                                         "ModelConfig: d_model=256 is not divisible by n_heads=3"),
    ({"eval": {"top_k": 100}}, "config: toy.eval.top_k = 100; expected at most 54, the size of the toy vocabulary"),
])
def test_cross_field_rules_are_checked_when_the_config_is_read(config, overlay, expected):
    check_toy_config(config)
    with pytest.raises(ValueError) as error:
        check_toy_config(deep_merge(config, {"toy": overlay}))
    assert str(error.value).startswith(expected)


@pytest.mark.parametrize("overlay, expected", [
    ({"toy": {"train": {"precision": "fp64"}}}, "config: toy.train.precision = 'fp64': it is not one of"),  # schema
    ({"toy": {"eval": {"top_k": 100}}}, "config: toy.eval.top_k = 100; expected at most 54"),               # toy
    ({"ablation": {"length": 11}}, "config.yaml: ablation.length = 11 is not in toy.lengths"),             # ablation
    ({"llm": {"grid": {"models": ["gpt"]}}}, "config.yaml: llm.grid.models names 'gpt'; expected keys"),    # llm
    ({"preset": "quick", "llm": {"train": {"stack_seeds": True}}}, "config.yaml: llm.train.stack_seeds is true"),
])
def test_the_loader_runs_the_schema_and_every_studys_cross_field_checks(overlay, expected):
    with pytest.raises(BadInput) as error:
        load_config([overlay])
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_the_loader_applies_config_yaml_the_preset_the_files_in_order_then_the_command_line(tmp_path):
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    first.write_text("toy: {train: {steps: 50, lr: 0.001}}\n")
    second.write_text("toy: {train: {steps: 60}}\n")
    quick = resolve_config({**yaml.safe_load((ROOT / "config.yaml").read_text()), "preset": "quick"})
    config = load_config([ROOT / "config.yaml", first, second, dotted_values(["toy.eval.top_k=2"])],
                         {"preset": "quick"})   # config.yaml among the files, as `snakemake --configfile config.yaml x`
    assert config == deep_merge(quick, {"toy": {"train": {"steps": 60, "lr": 0.001}, "eval": {"top_k": 2}}})


def test_an_unknown_model_names_the_known_ones(config):
    with pytest.raises(ValueError, match="toy model 'gpt' .* is not in toy.models; expected one of mdm, arm"):
        toy_model_fields(config, "gpt")


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match=r"preset='fast' is unknown; expected 'paper' or one of \['quick'\]"):
        resolve_config({"preset": "fast", "presets": {"quick": {}}})


def test_preset_overlay_is_deep():
    merged = deep_merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 5}, "d": [2, 3]})
    assert merged == {"a": {"b": 5, "c": 2}, "d": [2, 3]}


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


@pytest.mark.workflow
def test_workflow_refuses_a_bad_value_before_scheduling(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--config", "preset=quick", "--configfile", str(_override(tmp_path))],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "config: toy.eval.weights = 'sometimes': it is not one of ['ema', 'raw']" in result.stdout + result.stderr


def _override(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("toy:\n  eval:\n    weights: sometimes\n")
    return path


def test_the_command_line_wins_over_the_preset():
    config = {"preset": "quick", "toy": {"train": {"steps": 3000, "lr": 3e-4}},
              "presets": {"quick": {"toy": {"train": {"steps": 1000, "lr": 1e-3}}}}}
    resolved = resolve_config(config, {"toy": {"train": {"steps": 50}}})
    assert resolved["toy"]["train"] == {"steps": 50, "lr": 1e-3}           # config.yaml < preset < command line


@pytest.mark.workflow
@pytest.mark.parametrize("value, expected", [("steps: 50", '"steps": 50'),
                                             ("lr: -0.001", "less than or equal to the minimum of 0")])
def test_a_user_file_wins_over_the_quick_preset_and_is_validated(tmp_path, value, expected):
    """The README's form: config.yaml and the user's file as configfiles, the preset on the command line."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(f"toy: {{train: {{{value}}}}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "results/quick/table2.csv", "--configfile", "config.yaml",
         str(mine), "--config", "preset=quick"], cwd=ROOT, capture_output=True, text=True)
    assert expected in result.stdout + result.stderr
