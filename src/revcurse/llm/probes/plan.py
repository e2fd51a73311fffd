"""The probe jobs as the workflow sees them (workflow/rules/llm_probes.smk): which runs, which
files, which spec. Kept free of Snakemake so the tests check the same plan.

The probes read the checkpoints ``llm_finetune`` writes, for the runs of ``llm.grid`` whose task
is in ``llm.probes.tasks`` (the paper probes Parent-Child: P2C and C2P). The attention probe runs
on the MDMs only (an ARM never reads a mask); the training-dynamics probe on every model. The
MDM runs of the Person-Description tasks are left out here, before any job, and counted
(``UNPROBED_MDM_TASKS``, docs/llm_probes.md).
"""
from __future__ import annotations

import sys

from revcurse.llm import plan as llm_plan

# MDM probes need A and B as the same tokens in both queries (measure.query_pair). A description
# starts the sentence of one query, capitalised ("The celebrated ..."), and is lower case in the
# other, so every sample of these tasks would be excluded and the job would stop.
UNPROBED_MDM_TASKS = ("P2D", "D2P")
_reported: set[str] = set()     # measurements whose left-out runs were reported (once per workflow)

# measurement: probe tables it writes
MEASUREMENTS = {
    "attention": ("llm_attention",),
    "dynamics": ("llm_gradient_alignment", "llm_query_probability"),
}
# Per job at the first attempt (retries multiply them): a stand-in probe is seconds on one
# thread; an 8B model is loaded in bf16 on the host first (as for evaluation), and its gradient
# probe (2 backward passes per sample and checkpoint) is benchmarks/llm_probe_cost.py's figure.
RESOURCES = {
    "standin": {"threads": 1, "mem_mb": 4000, "minutes": 20},
    "real": {"threads": 4, "mem_mb": 64000, "minutes": 240},
}


def probe_runs(config: dict, measurement: str) -> list[dict]:
    """Runs of ``llm.grid`` with a task of ``llm.probes.tasks`` (MDMs only for ``attention``), but
    the MDM runs of ``UNPROBED_MDM_TASKS``, whose number goes to standard error once; may be none."""
    tasks = config["llm"]["probes"]["tasks"]
    runs = [run for run in llm_plan.grid_runs(config) if llm_plan.TASK_OF[(run["dataset"], run["direction"])] in tasks]
    if measurement == "attention":
        runs = [run for run in runs if llm_plan.model_spec(config, run["model"]).kind == "mdm"]
    left_out = [run for run in runs if llm_plan.TASK_OF[(run["dataset"], run["direction"])] in UNPROBED_MDM_TASKS
                and llm_plan.model_spec(config, run["model"]).kind == "mdm"]
    if left_out and measurement not in _reported:
        _reported.add(measurement)
        print(f"NOTE: config.yaml: llm.probes.tasks = {tasks}: the {measurement} probe leaves out {len(left_out)} MDM "
              f"runs of {'/'.join(UNPROBED_MDM_TASKS)} (a description is not the same tokens in both queries; "
              f"docs/llm_probes.md)", file=sys.stderr)
    return [run for run in runs if run not in left_out]


def probe_file(config: dict, table: str, model: str, dataset: str, direction: str, seed: int) -> str:
    return f"{llm_plan.run_dir(config, model, dataset, direction, seed)}/probes/{table}.parquet"


def probe_files(config: dict, measurement: str, table: str) -> list[str]:
    """Every run's file of probe ``table`` (written by ``measurement``), in the grid's order. A figure
    asked for without any run to probe stops here, naming the settings."""
    runs = probe_runs(config, measurement)
    if not runs:
        which = "MDM " if measurement == "attention" else ""
        raise ValueError(f"config.yaml: no {which}run of llm.grid (models {config['llm']['grid']['models']}, tasks "
                         f"{config['llm']['grid']['tasks']}) has a task of llm.probes.tasks = "
                         f"{config['llm']['probes']['tasks']} (MDM runs of {'/'.join(UNPROBED_MDM_TASKS)} are left "
                         f"out, docs/llm_probes.md): nothing to probe for this figure")
    return [probe_file(config, table, **run) for run in runs]


# The llm.probes settings a measurement depends on (the others only select runs or shape figures,
# so changing them reruns no probe job).
MEASUREMENT_SETTINGS = ("samples", "checkpoints", "context", "placements", "batch_size")


def probe_spec(config: dict, model: str, dataset: str, direction: str, seed: int) -> dict:
    """What a probe job depends on: the run it reads, the measurement settings, the MDM generation
    length (``llm.probes.context: sequence``) and the device."""
    spec = llm_plan.evaluate_spec(config, model, dataset, direction, seed)
    probes = config["llm"]["probes"]
    return {**{k: v for k, v in spec.items() if k != "eval"},
            "answer_length": config["llm"]["eval"]["max_new_tokens"],
            "probes": {key: probes[key] for key in MEASUREMENT_SETTINGS}}


def resources(config: dict, model: str) -> dict:
    return RESOURCES["standin" if llm_plan.model_spec(config, model).is_standin else "real"]
