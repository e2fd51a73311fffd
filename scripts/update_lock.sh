#!/usr/bin/env bash
# Refresh requirements/lock.txt, the exact versions every install uses (README, .ci/run, envs/):
#  1. re-resolve it with pip-compile from pyproject.toml's ranges, by default to the newest releases
#     (torch stays at 2.13.0, the CPU wheel the install commands name);
#  2. copy the new pins into envs/*.yaml (pins with a `# reason` comment are deliberate and kept);
#  3. install the lock in a throw-away venv with the README's command and run the test suite there;
#  4. show the diff. Nothing is committed: keep the upgrade with
#     `git commit -m "..." -- requirements/lock.txt envs/`, drop it with
#     `git checkout -- requirements/lock.txt envs/`.
#
#   scripts/update_lock.sh                         upgrade everything, then `pytest -q`
#   scripts/update_lock.sh -P transformers         upgrade only the named package(s)
#   scripts/update_lock.sh --no-upgrade            after editing pyproject.toml: add what is new, keep the rest
#   scripts/update_lock.sh -- tests/core/test_envs.py   pytest arguments go after `--`
#
# Options before `--` go to pip-compile (they replace the default --upgrade). The lock is for
# Python 3.11 on Linux; PYTHON names the interpreter (default python3). Needs the index pip is
# configured with, and the torch 2.13.0 CPU wheel (as the install commands do); elsewhere pass e.g.
# `--extra-index-url https://download.pytorch.org/whl/cpu`.
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=requirements/lock.txt
TORCH=2.13.0
PIP_TOOLS=pip-tools==7.6.2
PYTHON=${PYTHON:-python3}

compile_args=()
pytest_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; pytest_args=("$@"); break; fi
  compile_args+=("$1"); shift
done
[ ${#compile_args[@]} -gt 0 ] || compile_args=(--upgrade)
[ ${#pytest_args[@]} -gt 0 ] || pytest_args=(-q)

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "$0: the lock is for Python 3.11, $PYTHON is not; set PYTHON=python3.11" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== pip-compile ${compile_args[*]} (torch==$TORCH)"
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/pip" install -q "$PIP_TOOLS"
CUSTOM_COMPILE_COMMAND="scripts/update_lock.sh" \
  "$work/tools/bin/pip-compile" -q "${compile_args[@]}" --upgrade-package "torch==$TORCH" \
  --extra test --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
  --output-file "$LOCK" pyproject.toml
# torch==2.13.0+cpu -> torch==2.13.0: the same pin then also admits the CUDA build on a GPU machine
sed -i -E 's/^(torch==[0-9][0-9.]*)\+[A-Za-z0-9.]+/\1/' "$LOCK"
if grep -qiE '^(nvidia-|triton==)' "$LOCK"; then
  echo "$0: pip-compile resolved torch's CUDA build (nvidia-* in $LOCK); make the CPU wheel reachable" >&2
  exit 1
fi

echo "== envs/*.yaml take the new pins"
"$work/tools/bin/python" - "$LOCK" envs/*.yaml <<'PY'
import re
import sys
from pathlib import Path

MARK = "# every other pin: requirements/lock.txt (scripts/update_lock.sh writes these lines)"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)$")
ITEM = re.compile(r"^\s*- ([A-Za-z0-9_.-]+)==\S+?\s*(#.*)?$")


def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()


lock_file, *env_files = sys.argv[1:]
lock = [m.group(0) for line in Path(lock_file).read_text().splitlines() if (m := PIN.match(line))]
for env_file in map(Path, env_files):
    lines = env_file.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    project = next(i for i, line in enumerate(lines) if line.strip() == "- -e ${PWD}")
    indent = lines[project][: len(lines[project]) - len(lines[project].lstrip())]
    kept, deliberate = [], set()
    for line in lines[start + 1 : project]:
        item = ITEM.match(line)
        if item and item.group(2):          # `- name==version  # reason`: deliberate, kept as it is
            deliberate.add(canon(item.group(1)))
            kept.append(line)
        elif not item and line.strip() != MARK:
            kept.append(line)
    above_project = []                      # the comment just above `- -e ${PWD}` stays there
    while kept and kept[-1].strip().startswith("#"):
        above_project.insert(0, kept.pop())
    pins = [f"{indent}- {pin}" for pin in lock if canon(pin.split("==")[0]) not in deliberate]
    lines[start + 1 : project] = kept + [indent + MARK] + pins + above_project
    env_file.write_text("\n".join(lines) + "\n")
PY

echo "== install the lock in a throw-away venv and run pytest ${pytest_args[*]}"
status=0
"$PYTHON" -m venv "$work/venv"
( . "$work/venv/bin/activate" && pip install -q -c "$LOCK" "torch==$TORCH" -e '.[test]' && pytest "${pytest_args[@]}" ) \
  || status=$?

echo "== what changed"
git --no-pager diff --stat -- "$LOCK" envs/
git --no-pager diff -- "$LOCK"
if [ "$status" = 0 ]; then
  echo "$0: tests pass with the new lock; keep it: git commit -m 'Refresh the lock' -- $LOCK envs/"
else
  echo "$0: tests FAIL with the new lock (exit $status); drop it: git checkout -- $LOCK envs/" >&2
fi
exit "$status"
