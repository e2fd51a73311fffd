"""benchmarks/gpu_acceptance.sh on a machine like the lent GPU machines: a tree without .git, an
interpreter that lacks snakemake and jsonschema and has no revcurse installed, another `python`
first on PATH, no network. Its --tiny mode (CPU) must pass there with the missing packages taken
from a wheel folder (--wheels), every step and workflow job on the given interpreter, and the code
version read from the tree.

Here with the large-model stage because the script is that stage's GPU path;
tests/workflow/test_gpu_acceptance.py runs the same mode in the development environment.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = ("snakemake", "jsonschema")        # distributions the bare interpreter lacks (their wheels are given)


def tree_without_git(target: Path) -> Path:
    """The working tree as git sees it (tracked and untracked, not ignored), without .git."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listing):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def hidden(entry: str) -> bool:
    """A site-packages entry the bare interpreter does not get: the hidden distributions (their
    packages and dist-info, not e.g. jsonschema_specifications), snakemake's plugins, revcurse."""
    name = entry.lower()
    return (any(name == h or name.startswith((f"{h}-", f"{h}_executor")) for h in HIDDEN)
            or "revcurse" in name)


def bare_interpreter(target: Path) -> Path:
    """A venv of this Python's base interpreter whose site-packages links every entry of ours but
    the hidden ones."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(target)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = Path(subprocess.run([str(target / "bin" / "python"), "-c", "import sysconfig; "
                                  "print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                                 check=True).stdout.strip())
    for entry in ours.iterdir():
        if not hidden(entry.name) and not (theirs / entry.name).exists():
            (theirs / entry.name).symlink_to(entry)
    return target / "bin" / "python"


def wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel of an installed distribution, packed from its files (RECORD rewritten for them)."""
    dist = metadata.distribution(name)
    base = Path(dist.locate_file(""))
    files = [f for f in dist.files if not str(f).startswith("..") and "__pycache__" not in str(f)
             and not str(f).endswith("RECORD")]
    tag = re.search(r"^Tag: (\S+)$", dist.read_text("WHEEL"), re.M).group(1)
    info = next(f for f in files if str(f).endswith(".dist-info/METADATA")).parent
    path = folder / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for file in files:
            data = (base / file).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{file},sha256={digest},{len(data)}")
            wheel.writestr(str(file), data)
        wheel.writestr(f"{info}/RECORD", "\n".join(record + [f"{info}/RECORD,,"]) + "\n")
    return path


@pytest.mark.workflow
@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("bash") is None
                    or not (ROOT / ".git").exists(), reason="needs bash, coreutils' timeout and the git tree to copy")
def test_tiny_mode_passes_on_a_bare_machine_with_a_wheel_folder(tmp_path):
    tree = tree_without_git(tmp_path / "tree")
    python = bare_interpreter(tmp_path / "bare")
    for module in (*HIDDEN, "revcurse"):     # what the machine lacks, checked rather than assumed
        assert subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode != 0, module
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in HIDDEN:
        wheel_of_installed(name, wheels)
    impostor = tmp_path / "impostor"          # another python first on PATH: any call to it fails the run
    impostor.mkdir()
    for name in ("python", "python3"):
        (impostor / name).write_text("#!/bin/sh\necho 'the python first on PATH was called' >&2\nexit 97\n")
        (impostor / name).chmod(0o755)
    env = {"PATH": f"{impostor}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path), "PYTHON": str(python),
           "CUDA_VISIBLE_DEVICES": "", "BUDGET_S": os.environ.get("BUDGET_S", "2400")}
    folder = tmp_path / "acceptance"
    run = subprocess.run(["bash", str(tree / "benchmarks" / "gpu_acceptance.sh"), "--tiny", "--wheels", str(wheels),
                          str(folder)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=int(env["BUDGET_S"]) + 300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    summary = (folder / "summary.txt").read_text()
    assert "missing: none" in summary and "git: n/a (no .git)" in summary
    assert f"wheels: {wheels} ({len(HIDDEN)} installed for this run)" in summary
    assert f"python 3.{sys.version_info.minor}" in summary and f"({python})" in summary
    code = re.search(r"^code: (revcurse-\S+\+tree\.[0-9a-f]{12}) ", summary, re.M)
    assert code, summary[:1500]
    for i, name in enumerate(["table2", "toy_speed", "llm_speed", "probe_cost"], 1):
        assert re.search(rf"^{i}\s+{name}\s+ok\s", summary, re.M), name
    # The Table 2 the workflow built records the version read from the tree.
    assert set(pd.read_csv(folder / "table2.csv")["code_version"]) == {code.group(1)}
    assert "the python first on PATH was called" not in run.stdout + run.stderr
