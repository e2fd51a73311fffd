"""Smoke test of benchmarks/gpu_acceptance.sh (README.md, "GPU acceptance"), its --tiny mode on the CPU.

Why it is here: the script is the one prepared run for the short GPU windows the project gets (one
H200 for about 15 minutes); a script that breaks there wastes the window. This runs its four steps
(Table 2 from scratch through snakemake, the toy speed benchmark, llm_speed.py, llm_probe_cost.py)
at tiny sizes and checks the summary and that each step wrote its result. It measures no speed.
It is one of the slower tests (about 30 s on 2 idle cores, minutes on a busy machine: four
processes, one of them a whole snakemake run); nothing else covers the script.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["table2", "toy_speed", "llm_speed", "probe_cost"]


@pytest.mark.workflow
@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("bash") is None,
                    reason="the script needs bash and coreutils' timeout")
def test_gpu_acceptance_script_tiny_mode_on_cpu(tmp_path):
    folder = tmp_path / "acceptance"
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    budget = int(env.get("BUDGET_S", 2400))          # the script's own limit (tiny mode); a busy machine may raise it
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_acceptance.sh"), "--tiny", str(folder)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=budget + 300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    # One flat folder, at most 8 files (what the GPU machine's tool hands back).
    files = {path.name for path in folder.iterdir()}
    logs = {f"{i}_{name}.log" for i, name in enumerate(STEPS, 1)}
    assert files == {"summary.txt", "table2.csv", "extra.tar.gz", *logs}

    summary = (folder / "summary.txt").read_text()
    assert run.stdout.endswith(summary)
    assert "tiny mode" in summary and "missing: none" in summary
    for i, name in enumerate(STEPS, 1):
        assert re.search(rf"^{i}\s+{name}\s+ok\s+[\d.]+\s+\d+\s+\S+", summary, re.M), name
        assert f"== {i}_{name}.log" in summary

    # Each step's result.
    table2_log = (folder / "1_table2.log").read_text()
    assert re.search(r"wall time [\d.]+ (s|min)", table2_log)
    for rule in ("train_toy", "evaluate_toy"):
        assert re.search(rf"{rule}: 2 of the grid's 2 jobs found", table2_log), rule
    table2 = (folder / "table2.csv").read_text()
    assert "paper_bf16" in table2 and len(table2.splitlines()) > 1

    toy = (folder / "2_toy_speed.log").read_text()
    assert "1. training" in toy and "2. evaluation" in toy
    for model in ("mdm", "arm"):
        for length in (10, 40):
            assert len(re.findall(rf"^  {model}\s+{length}\s+[\d.]+ / [\d.]+\s+[\d.]+ / [\d.]+\s+[\d.]+x", toy,
                                  re.M)) == 2, (model, length)       # training and evaluation rows

    llm = (folder / "3_llm_speed.log").read_text()
    assert "tiny-llama (arm)" in llm and "tiny-llada (mdm)" in llm and "projected Table 1 grid" in llm
    assert "same tokens as the baseline" in llm

    probes = (folder / "4_probe_cost.log").read_text()
    assert "tiny-llada:" in probes and "tiny-llama:" in probes and "projected probe grid" in probes

    with tarfile.open(folder / "extra.tar.gz") as archive:
        names = set(archive.getnames())
    assert {"extra/environment.txt", "extra/toy_speed/toy_speed.json", "extra/toy_table2/table2/snakemake.log",
            *(f"extra/{i}_{name}.stderr" for i, name in enumerate(STEPS, 1))} <= names
    assert any(re.fullmatch(r"extra/toy_table2/table2/results/paper_bf16/benchmarks/toy/train/mdm_L6_seed0\.tsv", n)
               for n in names)
