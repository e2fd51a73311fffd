"""The provenance stored with every output: code version (git commit) and package versions."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from revcurse.core.config import REPO_ROOT


def code_version() -> str:
    """Git commit of the working tree (with '-dirty' if modified), else the package version."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "revcurse-" + metadata.version("revcurse")


def provenance() -> dict[str, str]:
    """Code and package versions stored with every output."""
    versions = {"code_version": code_version(), "python": platform.python_version()}
    for package in ("torch", "numpy", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions
