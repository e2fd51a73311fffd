"""`snakemake --profile slurm` against a real single-node SLURM that this module starts and stops.

Debian's slurm-wlm and munge (installed by .ci/run) run as a throw-away cluster: one node, two
CPUs, two fake GPUs (gres.conf points them at /dev/null and /dev/zero), no accounting database.
The quick preset's toy stage, made tiny, goes through the repository's profile unchanged. The
tests check that every job passes through squeue and ends, that GPU jobs get a GPU and CPU jobs
don't, and that the training runs go out as one array job. A one-rule workflow shows that a job
SLURM kills for exceeding its memory succeeds on the retry, which asks for more.
"""
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers.workflow import snakemake

# The job-step plugin strips SLURM_CONF from the environment of the srun it starts, so the
# configuration must sit at the path compiled into Debian's SLURM.
SLURM_DIR = Path("/etc/slurm")
MARKER = "# Written by tests/workflow/test_slurm.py for a throw-away test cluster; removed when the test ends.\n"
SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
PROGRAMS = ["munged", "munge", "unmunge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol"]

# Tiny settings on top of the quick preset: one length, few steps, few samples. `device: auto`
# makes the toy jobs ask for a GPU, as they do on a cluster; without CUDA they run on the CPU.
TINY_QUICK_TOY = """\
presets:
  quick:
    toy:
      lengths: [6]
      train: {steps: 20, warmup_steps: 5, checkpoint_every: 10, log_every: 5, snapshot_every: 10, device: auto}
      eval: {samples_per_letter: 2}
"""
TRAIN_RUNS = 2 * 2  # {mdm, arm} x seeds {0, 1}

# The retry story on a one-rule workflow that starts in a second: its job holds 700 MB, more than
# attempt 1's 500 MB, so SLURM kills it; the profile's retries run it again with 1000 MB.
MEMORY_RETRY_SNAKEFILE = """\
rule hold_memory:
    output:
        "memory_retry/mem_mb.txt",
    resources:
        mem_mb=lambda wildcards, attempt: 500 * attempt,
    shell:
        "python -c 'import time; block = bytearray(700 * 2**20); time.sleep(3)' && echo {resources.mem_mb} > {output}"
"""


def program(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def why_no_cluster() -> str | None:
    if os.geteuid() != 0:
        return "starting munged, slurmctld and slurmd needs root"
    missing = [name for name in PROGRAMS if program(name) is None]
    if missing:
        return f"SLURM is not installed (no {', '.join(missing)}): apt-get install slurm-wlm munge, as .ci/run does"
    for name in ("slurm.conf", "gres.conf"):
        path = SLURM_DIR / name
        if path.exists() and not path.read_text().startswith(MARKER):
            return f"{path} belongs to a real SLURM installation; this test only runs its own throw-away cluster"
    return None


def slurm_conf(host: str, state: Path) -> str:
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return MARKER + f"""\
ClusterName=revcurse-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation={state}/slurmctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
SelectType=select/cons_tres
# Memory is a consumable resource, so a job's --mem is its limit.
SelectTypeParameters=CR_Core_Memory
# No cgroups here: SLURM samples each job step's memory every second and kills a step over its
# limit, as on sites without the cgroup plugins.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# No accounting database: sacct knows no jobs, the profile polls squeue, which lists a finished
# job for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
MinJobAge=300
GresTypes=gpu
# Trust the node line below (two CPUs, the machine's memory) whatever the machine has.
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs=2 RealMemory={memory_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def gres_conf(host: str) -> str:
    # Fake GPUs: SLURM only needs a device file per GPU to hand out; nothing opens it.
    return MARKER + f"NodeName={host} Name=gpu File=/dev/null\nNodeName={host} Name=gpu File=/dev/zero\n"


def munge_works() -> bool:
    return subprocess.run(f"{program('munge')} -n | {program('unmunge')}", shell=True,
                          capture_output=True).returncode == 0


def wait_for(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the test cluster did not come up: {what}")
        time.sleep(0.5)


def node_is_idle() -> bool:
    states = subprocess.run([program("sinfo"), "-h", "-o", "%T"], capture_output=True, text=True).stdout
    return states.strip() == "idle"


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """munged (unless one already runs), slurmctld and slurmd, stopped again at the end."""
    reason = why_no_cluster()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname().split(".")[0]
    configs = {SLURM_DIR / "slurm.conf": slurm_conf(host, state), SLURM_DIR / "gres.conf": gres_conf(host)}
    daemons = []
    try:
        for path, text in configs.items():
            path.write_text(text)
        if not munge_works():
            Path("/run/munge").mkdir(exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            daemons.append(subprocess.Popen([program("munged"), "--foreground"], user="munge", group="munge",
                                            extra_groups=[], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            wait_for(munge_works, "munged answers no credential request")
        for daemon in ("slurmctld", "slurmd"):
            daemons.append(subprocess.Popen([program(daemon), "-D"], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.STDOUT))
        wait_for(node_is_idle, f"node {host} is not idle (logs in {state})")
        yield state
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        for path in configs:
            path.unlink(missing_ok=True)


class SqueuePoller:
    """Records every (job, state, comment, GPUs) row squeue shows while a run goes on."""

    FIELDS = ["job", "state", "comment", "gpus"]

    def __init__(self):
        self.rows = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll)

    def _poll(self):
        command = [program("squeue"), "--states=all", "--noheader",
                   "--Format=JobArrayID:|,State:|,Comment:|,tres-per-job:|"]
        while not self._stop.wait(0.5):
            lines = subprocess.run(command, capture_output=True, text=True).stdout.splitlines()
            self.rows.update(tuple(line.split("|")[:4]) for line in lines)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def table(self) -> pd.DataFrame:
        rows = pd.DataFrame(sorted(self.rows), columns=self.FIELDS)
        rows["rule"] = rows["comment"].str.extract(r"^rule_(\w+?)(?:_wildcards_|$)", expand=False)
        return rows


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, workdir):
    (workdir / "tiny.yaml").write_text(TINY_QUICK_TOY)
    with SqueuePoller() as squeue:
        output = snakemake(
            "results/quick/table2.csv", "--profile", "slurm",
            "--configfile", "tiny.yaml", "--config", "preset=quick",
            # One CPU per toy job, so that two share the node's two CPUs.
            "--set-threads", "train_toy=1", "evaluate_toy=1",
            "--slurm-init-seconds-before-status-checks", "2",
            cwd=workdir,
        )
    return workdir, output, squeue.table()


def test_the_toy_stage_runs_through_the_profile(slurm_run):
    workdir, output, _ = slurm_run
    table = pd.read_csv(workdir / "results/quick/table2.csv")
    # {mdm, arm} x {forward, reverse} x {final, best}
    assert len(table) == 2 * 2 * 2 and set(table["preset"]) == {"quick"}
    assert "SLURM run ID" in output and "15 of 15 steps (100%) done" in output


def test_every_job_passes_through_squeue_and_ends(slurm_run):
    _, _, squeue = slurm_run
    seen = squeue.groupby("rule")["state"].agg(set)
    assert set(seen.index) == {"toy_dataset", "toy_data_check", "train_toy", "evaluate_toy", "evaluate_toy_over_training",
                               "table2"}
    assert all(states & {"PENDING", "RUNNING"} and "COMPLETED" in states for states in seen)


def test_gpu_jobs_request_a_gpu_and_cpu_jobs_do_not(slurm_run):
    _, _, squeue = slurm_run
    gpus = squeue.groupby("rule")["gpus"].agg(set)
    assert gpus["train_toy"] == gpus["evaluate_toy"] == gpus["evaluate_toy_over_training"] == {"gres:gpu:1"}
    assert gpus["toy_dataset"] == gpus["toy_data_check"] == gpus["table2"] == {"N/A"}


def test_training_runs_go_out_as_one_array_job(slurm_run):
    _, _, squeue = slurm_run
    train_jobs = set(squeue.loc[squeue["rule"] == "train_toy", "job"])
    tasks = {job for job in train_jobs if "[" not in job}     # not the pending "<id>_[1-4]" summary
    assert len(tasks) == TRAIN_RUNS and len({task.split("_")[0] for task in tasks}) == 1, tasks


@pytest.fixture(scope="module")
def memory_retry_run(slurm_cluster, workdir):
    (workdir / "memory_retry.smk").write_text(MEMORY_RETRY_SNAKEFILE)
    with SqueuePoller() as squeue:
        output = snakemake("--snakefile", "memory_retry.smk", "--profile", "slurm",
                           "--slurm-init-seconds-before-status-checks", "2", cwd=workdir)
    return workdir, output, squeue.table()


def test_a_job_killed_for_memory_succeeds_on_retry_with_more(memory_retry_run):
    workdir, output, squeue = memory_retry_run
    ends = squeue[(squeue["rule"] == "hold_memory") & squeue["state"].isin(["FAILED", "COMPLETED"])]
    assert sorted(ends["state"]) == ["COMPLETED", "FAILED"]    # two SLURM jobs: killed, then done
    # The plugin keeps the SLURM log of a failed job: SLURM's own reason for the failure.
    (failed_log,) = (workdir / ".snakemake/slurm_logs/rule_hold_memory").rglob("*.log")
    assert "exceeded memory limit" in failed_log.read_text()
    assert "Trying to restart job" in output
    assert (workdir / "memory_retry/mem_mb.txt").read_text().strip() == "1000"
