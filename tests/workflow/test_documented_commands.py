"""Every command the README and docs/ show works as written: each `snakemake` command as a dry run
(`-n`) in a copy of the workflow, each `python`/`pytest` command in a harmless mode (`--help` after
its arguments: the script, module and subcommand must exist, though argparse stops at `--help` before
it checks the options; `--collect-only`), each script by a syntax check."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.workflow import ROOT, copy_workflow

pytestmark = pytest.mark.workflow

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "reference/paper/README.md"]
COMMAND_WORDS = ("snakemake", "python", "python3", "pytest", "bash", "nohup", "scripts/")
# The set-up lines of the README's two commands: tests/workflow/test_readme.py checks them against .ci/run.
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install")
# Files the documented commands name, as the docs describe them (docs/llm.md, docs/cluster.md).
OVERLAYS = {"weights.yaml": "llm: {models: {llada: {weights: /path/to/LLaDA-8B-Instruct}}}\n",
            "more-seeds.yaml": "toy: {seeds: [0, 1, 2, 3]}\n"}


def documented_commands():
    """(document, command) for every command line in a code block or in a table cell, comments removed,
    continuation lines joined, `;` and `&&` chains split."""
    for document in DOCUMENTS:
        text = document.read_text()
        lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
                 for line in block.replace("\\\n", " ").splitlines()]
        lines += re.findall(r"\| `((?:snakemake|python|pytest|bash)[^`]*)` \|", text)
        for line in lines:
            line = re.sub(r"\s+#\s.*$", "", line.strip())
            if not line.startswith(COMMAND_WORDS):
                continue
            for command in re.split(r"\s*(?:&&|;)\s*", line):
                if command and not command.startswith(SETUP):
                    yield pytest.param(command, id=f"{document.name}: {command[:70]}")


COMMANDS = list(documented_commands())


def test_the_documents_show_commands_of_every_kind():
    words = [param.values[0].split() for param in COMMANDS]
    kinds = {w[1] if w[0] == "nohup" else w[0] for w in words}      # `nohup bash script` runs bash
    assert {"snakemake", "python", "pytest", "bash"} <= kinds and len(COMMANDS) > 40


@pytest.fixture(scope="module")
def documented_workdir(tmp_path_factory):
    root = copy_workflow(tmp_path_factory.mktemp("documented"))
    for name, text in OVERLAYS.items():
        (root / name).write_text(text)
    shutil.copy(root / "slurm/site.example.yaml", root / "slurm/site.yaml")
    shutil.copytree(ROOT / "reference/paper", root / "reference/paper")   # its overlays and shipped runs
    return root


def report_path(args: list[str]) -> str:
    preset = next((a.split("=", 1)[1] for a in args if a.startswith("preset=")), "paper")
    return "results/report.html" if preset == "paper" else f"results/{preset}/report.html"


def check(command: str, workdir) -> str | None:
    """Runs one documented command in its harmless mode; None if it works, else what went wrong."""
    args = shlex.split(command)
    word = args[0]
    if word == "nohup":                                     # nohup bash script > log 2>&1 &
        args = args[1:args.index(">")] if ">" in args else args[1:]
        word = args[0]
    if word == "snakemake":
        if "--report" in args:                              # needs finished outputs: check the path it names
            path = args[args.index("--report") + 1]
            return None if path == report_path(args) else f"{command}: --report {path}, expected {report_path(args)}"
        # --sdm conda needs conda on the machine; the dry run checks everything else of the command.
        args = [a for a in args if a not in ("--sdm", "conda", "--conda-create-envs-only")]
        # Through bash, so that brace expansion (fig{6,7,9}) happens as in the user's shell.
        snakemake_args = " ".join(shlex.quote(a) if "{" not in a else a for a in args[1:])
        args, cwd = ["bash", "-c", f"{shlex.quote(sys.executable)} -m snakemake -n {snakemake_args}"], workdir
    elif word in ("bash",) or word.startswith("scripts/"):  # long runs or installs: syntax only
        args, cwd = ["bash", "-n", str(ROOT / (args[1] if word == "bash" else word))], ROOT
    elif word == "pytest":
        args, cwd = [sys.executable, "-m", "pytest", "--collect-only", "-q", *args[1:]], ROOT
    else:                                                   # python, python3
        args, cwd = [sys.executable, *args[1:]] + ([] if "--help" in args else ["--help"]), ROOT
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    return None if result.returncode == 0 else f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def outcomes(documented_workdir):
    """Every command checked once, one per core at a time: each is a separate process (a dry run
    builds the whole DAG), so side by side they take half the time on 2 cores. Dry runs take no lock."""
    commands = list(dict.fromkeys(param.values[0] for param in COMMANDS))   # a command shown twice runs once
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        return dict(zip(commands, pool.map(lambda command: check(command, documented_workdir), commands)))


@pytest.mark.parametrize("command", COMMANDS)
def test_documented_command_works(command, outcomes):
    assert outcomes[command] is None, outcomes[command]
