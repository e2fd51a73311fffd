"""The rerun and batch stories of docs/cluster.md, checked by dry runs on a fake finished quick run:
every output of `all` present and up to date (empty files, stamped in DAG order by `--touch`)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers.workflow import snakemake

QUICK = ("--config", "preset=quick")


def planned_jobs(dry_run_output: str) -> list[dict]:
    """One dict per job of a dry run: rule, wildcards, reason."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n(.*?)(?=^\S|\Z)", dry_run_output, re.M | re.S):
        wildcards = re.search(r"^\s+wildcards: (.*)$", body, re.M)
        jobs.append({
            "rule": rule,
            "wildcards": dict(kv.split("=", 1) for kv in wildcards.group(1).split(", ")) if wildcards else {},
            "reason": re.search(r"^\s+reason: (.*)$", body, re.M).group(1),
        })
    return jobs


@pytest.fixture(scope="module")
def finished_run(workdir):
    summary = snakemake("all", *QUICK, "--summary", cwd=workdir)
    for line in summary.splitlines():
        fields = line.split("\t")
        if len(fields) >= 6 and fields[0] != "output_file":
            (workdir / fields[0]).parent.mkdir(parents=True, exist_ok=True)
            (workdir / fields[0]).touch()
    snakemake("all", *QUICK, "--touch", cwd=workdir)
    return workdir


@pytest.mark.parametrize("run_output", [
    "results/quick/toy/mdm/L6/seed1/model.pt",                                  # toy: (model, L, seed)
    "results/quick/llm/standin_llama/parent_child/p2c/seed1/checkpoints.json",   # LLM: (model, dataset, seed)
])
def test_rerunning_one_run_refreshes_only_what_depends_on_it(finished_run, run_output):
    output = snakemake("all", "-n", "--forcerun", run_output, *QUICK, cwd=finished_run)
    jobs = planned_jobs(output)
    assert [job["reason"] for job in jobs].count("Forced execution") == 1
    assert f"output: {run_output}" in output
    # Every other job reads an output of a job that reruns: a dependent, nothing else.
    assert all(job["reason"].startswith(("Forced execution", "Input files updated by another job")) for job in jobs)


def test_adding_a_seed_runs_only_the_new_seeds_jobs(finished_run):
    (finished_run / "seed2.yaml").write_text("presets: {quick: {toy: {seeds: [0, 1, 2]}}}\n")
    targets = ["results/quick/table2.csv", "results/quick/figures/fig12_training_dynamics.png"]
    jobs = planned_jobs(snakemake(*targets, "-n", "--configfile", "seed2.yaml", *QUICK, cwd=finished_run))
    assert {job["wildcards"]["seed"] for job in jobs if "seed" in job["wildcards"]} == {"2"}
    assert sum(job["rule"] == "train_toy" for job in jobs) == 2 * 2           # {mdm, arm} x L {6, 8}
    # What has no seed is an aggregate over seeds: Table 2 and the figure, rebuilt with the new seed.
    assert {job["rule"] for job in jobs if "seed" not in job["wildcards"]} == {"table2", "figure12"}


def test_unlock_after_the_head_process_was_killed(finished_run):
    target = "results/quick/toy/arm/L8/seed0/model.pt"
    head = subprocess.Popen([sys.executable, "-m", "snakemake", target, "--forcerun", target, *QUICK, "--cores", "1"],
                            cwd=finished_run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    started = finished_run / ".snakemake/incomplete"      # Snakemake marks a job's outputs when it starts it
    deadline = time.monotonic() + 120
    while not any(started.rglob("*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(head.pid, signal.SIGKILL)                   # as a closed login session or a killed head job would
    head.wait()
    refused = snakemake(target, *QUICK, "--cores", "1", cwd=finished_run, check=False)
    assert "Directory cannot be locked" in refused
    assert "Unlocked working directory" in snakemake("--unlock", *QUICK, cwd=finished_run)
    # The killed job's output is incomplete: the next run redoes it (rerun-incomplete in the profiles).
    jobs = planned_jobs(snakemake(target, "-n", *QUICK, cwd=finished_run))
    assert [job["rule"] for job in jobs] == ["train_toy"]
