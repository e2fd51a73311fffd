"""Conda envs per rule (`snakemake --sdm conda`, docs/cluster.md): every rule names an env file in
envs/, every env file parses and pins every package, and the pins are the versions the tests run
with. Conda itself is not needed: the files are read as YAML and the rule files as text."""
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

import revcurse.llm.plan as llm_plan

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
RULE_FILES = sorted((ROOT / "workflow/rules").glob("*.smk"))
THE_PROJECT = "-e ${PWD}"
# LLaDA's and Dream's modeling code ships with the checkpoint and needs the transformers stack it was
# written for (docs/llm.md); the tests run with the current one (envs/llm.yaml).
NOT_THE_TESTED_VERSIONS = {
    "llm-remote-code.yaml": {"transformers", "tokenizers", "peft", "accelerate", "huggingface_hub"},
}
CONDA_PIN = re.compile(r"^[A-Za-z0-9_.-]+=[0-9][0-9A-Za-z.]*$")       # python=3.11
PIP_PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)$")    # numpy==2.4.6
# `rule name:` up to the next top-level line; `use rule ... with:` inherits its parent's env.
RULE = re.compile(r"^rule (\w+):\n(.*?)(?=^\S|\Z)", re.M | re.S)
CONDA_DIRECTIVE = re.compile(r"^\s+conda:\n\s+(.+)$", re.M)


def load(env_file: Path) -> dict:
    return yaml.safe_load(env_file.read_text())


def split(env: dict) -> tuple[list[str], list[str]]:
    """(conda packages, pip packages) of an env."""
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d["pip"]]
    return conda, pip


def rule_envs():
    for rule_file in RULE_FILES:
        for name, body in RULE.findall(rule_file.read_text()):
            match = CONDA_DIRECTIVE.search(body)
            yield pytest.param(rule_file, match.group(1).strip() if match else None, id=f"{rule_file.stem}:{name}")


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_parses_and_pins_every_package(env_file):
    env = load(env_file)
    assert env["channels"] and env["dependencies"]
    conda, pip = split(env)
    assert all(CONDA_PIN.match(d) for d in conda), conda
    assert all(PIP_PIN.match(p) for p in pip if p != THE_PROJECT), pip


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_pins_are_the_versions_the_tests_run_with(env_file):
    conda, pip = split(load(env_file))
    assert f"python={sys.version_info.major}.{sys.version_info.minor}" in conda
    exempt = NOT_THE_TESTED_VERSIONS.get(env_file.name, set())
    for name, pinned in (PIP_PIN.match(p).groups() for p in pip if p != THE_PROJECT):
        if name in exempt:
            continue
        try:
            installed = Version(metadata.version(name)).public    # 2.13.0+cpu is the 2.13.0 CPU build
        except metadata.PackageNotFoundError:
            continue
        assert installed == pinned, f"{env_file.name} pins {name}=={pinned}, the tests run with {installed}"


@pytest.mark.parametrize(("rule_file", "conda"), list(rule_envs()))
def test_every_rule_names_an_env_in_envs(rule_file, conda):
    assert conda is not None, "no conda: directive"
    if conda.startswith("lambda"):      # the LLM rules pick the env of the model's transformers stack
        assert "llm_plan.conda_env" in conda
        paths = set(llm_plan.ENVS.values())
    else:
        paths = {conda.strip("\"'")}
    for path in paths:                  # relative to the rule file, as Snakemake resolves them
        assert (rule_file.parent / path).resolve() in ENV_FILES, path
