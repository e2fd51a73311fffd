"""What benchmarks/gpu_acceptance.sh needs to run on a bare GPU machine (a CUDA torch, no internet,
no .git, the package not installed), standard library only, run by the script's own interpreter:

  packages               the distributions a wheel folder must hold: the project's dependencies
                         (pyproject.toml) but torch, which the GPU machine brings in its CUDA build,
                         and the SLURM executor plugin, which a one-machine run never loads
  missing WHEEL_DIR      the wheels of WHEEL_DIR whose distribution this interpreter lacks
  code-version DIR       with no git and no installed revcurse: write DIR/revcurse-V.dist-info, V the
                         package version + a hash of the tree's files, so that
                         revcurse.core.provenance.code_version() reads V (DIR goes on PYTHONPATH);
                         prints V
"""
from __future__ import annotations

import hashlib
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"torch", "snakemake-executor-plugin-slurm"}
# What the version's hash leaves out: outputs, caches, environments (as toy_speed.py's copy of the tree).
NOT_HASHED = {".git", "results", "logs", ".snakemake", ".venv", "__pycache__", ".pytest_cache", "out"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def packages() -> list[str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[ <>=!~;\[]", d, maxsplit=1)[0] for d in dependencies]
    return [n for n in names if normalized(n) not in NOT_PACKAGES]


def missing(folder: Path) -> list[Path]:
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SystemExit(f"gpu_acceptance.sh: --wheels {folder}: no *.whl files there; expected a folder filled by "
                         f"`bash benchmarks/gpu_acceptance.sh --fetch-wheels {folder}`")
    lacking = []
    for wheel in wheels:
        try:
            metadata.distribution(wheel.name.split("-")[0])
        except metadata.PackageNotFoundError:
            lacking.append(wheel)
    return lacking


def code_version(site: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in ROOT.rglob("*") if p.is_file()
                       and not NOT_HASHED.intersection(p.relative_to(ROOT).parts)):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = f"{project['version']}+tree.{digest.hexdigest()[:12]}"
    info = site / f"{project['name']}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {version}\n")
    return version


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "packages":
        print(" ".join(packages()))
    elif command == "missing":
        print("\n".join(str(w) for w in missing(Path(args[0]))))
    elif command == "code-version":
        print(code_version(Path(args[0])))
    else:
        raise SystemExit(f"gpu_acceptance_env.py: unknown command {command!r}; expected packages, missing or "
                         f"code-version")
