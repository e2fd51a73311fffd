# Config resolution and path helpers shared by every rule file.
import json
import os
from pathlib import Path

import revcurse.toy.specs as toy_specs
from revcurse.core.config import config_hash, other_presets_output, results_dir
from revcurse.core.paths import RESULTS, run_dir, run_name, toy_data_file
from revcurse.pipeline.config import load_config


configfile: "config.yaml"


# The rules see the config as the command lines and benchmarks load it (revcurse.pipeline.config): config.yaml
# (the file `configfile:` names), the preset, then what the command line set (--configfile files, then --config),
# so a typed value wins over the preset. A bad value stops the run here, before any job, in one line naming the key.
_load = lambda command_line, configfiles=(): load_config(
    [*(workflow.config_settings.configfiles or []), *configfiles], command_line, Path("config.yaml"),
    Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
_resolved = _load(workflow.config_settings.config or {})
config.clear()
config.update(_resolved)
# Another preset's resolved config, over the same files and command line, then ``configfiles`` as if given after
# them (reference.smk: its config hashes; the probe grid its figures' runs cover).
config_for_preset = lambda preset, configfiles=(): _load({**(workflow.config_settings.config or {}), "preset": preset},
                                                         configfiles)

PRESET = config["preset"]
TOY = config["toy"]
# A toy run's folder and its name in log and benchmark files, as rule patterns (revcurse/core/paths.py).
TOY_RUN = run_dir(PRESET, "toy", "{model}", "{L}", "{seed}")
RUN_NAME = run_name("{model}", "{L}", "{seed}")
LOG_DIR = f"logs/{PRESET}"
BENCH_DIR = f"results/{PRESET}/benchmarks"
# The preset's tables, figures and report: results/ for the paper preset and its variants (`snakemake
# results/table2.csv`), results/<preset>/ for a smoke test (results/quick/table2.csv), so that a quick run never
# overwrites a paper-scale output. Asked for under the quick preset, a paper path stops the run naming the
# quick one (report.smk).
OUT = results_dir(PRESET)
FIGURE_DIR = f"{OUT}/figures"

# Every job's log starts with its command line, spec included ("command: python -m ..."): the
# profiles do not print shell commands (a JSON spec is ~1 kB per job on the console; `-p` still does).
shell.prefix(
    "set -euo pipefail; "
    "python() {{ {{ printf 'command: python'; printf ' %s' \"$@\"; printf '\\n'; }} >&2; command python \"$@\"; }}; "
)


wildcard_constraints:
    model="[a-z][a-z0-9_]*",
    L=r"\d+",
    seed=r"\d+",


# Shared by the rule files. The pinned conda env of each kind of job (`--sdm conda`, paths relative to
# this folder), and resources that grow with each retry (`--retries`, slurm profile).
ENV_TOY = "../../envs/toy.yaml"
ENV_LLM = "../../envs/llm.yaml"
ENV_ANALYSIS = "../../envs/analysis.yaml"
# The job that draws a figure (figures.smk): fig3 -> figure3, fig6 with prefix llm_ -> llm_figure6.
figure_rule_name = lambda figure, prefix="": f"{prefix}figure{figure[3:]}"


# A resource of `base` (a number, or a function of the wildcards) times the attempt: a job that ran
# out of memory or time is retried with twice, then three times as much.
per_attempt = lambda base: lambda wildcards, attempt: (base(wildcards) if callable(base) else base) * attempt


def as_json(obj):
    """Params passed to the CLI as one shell-quoted JSON argument."""
    return json.dumps(obj, sort_keys=True)


def toy_gpus(wildcards):
    """GPUs a toy job asks the cluster for: none when the config pins it to the CPU."""
    return 0 if TOY["train"]["device"] == "cpu" else 1


def toy_train_spec(wildcards):
    return as_json(toy_specs.toy_train_spec(config, wildcards.model, int(wildcards.L), int(wildcards.seed)))


def toy_attention_only_train_spec(wildcards):
    """Paper §5.2: a toy.models entry without its MLP, in its own study (toy.attention_only)."""
    spec = toy_specs.toy_train_spec(config, wildcards.model, int(wildcards.L), int(wildcards.seed))
    spec["model_fields"]["mlp_ratio"] = 0
    return as_json({**spec, "study": "toy_attention_only"})


def toy_eval_spec(wildcards):
    return as_json(toy_specs.toy_eval_spec(config, wildcards.model, int(wildcards.L), int(wildcards.seed)))


def toy_runs(toy=TOY):
    """Every (model, L, seed) of the toy grid of ``toy`` (a toy config; this workflow's by default)."""
    return [
        dict(model=m, L=L, seed=s)
        for m in toy["models"]
        for L in toy["lengths"]
        for s in toy["seeds"]
    ]


def toy_run_files(name):
    return [f"{run_dir(PRESET, 'toy', r['model'], r['L'], r['seed'])}/{name}" for r in toy_runs()]


def all_targets():
    return (
        [f"{OUT}/table2.csv", f"{OUT}/table2.md", f"{OUT}/toy_decoding_choices.md",
         f"{FIGURE_DIR}/toy_accuracy_over_training.png", f"{OUT}/fidelity.md"]
        + theory_targets()
        + dataset_targets()
        + llm_targets()
        + llm_probe_targets()
        + probe_targets()
        + ablation_targets()
        + report_targets()
    )


# The shipped reference (reference.smk): copies of the runs' Parquet files under reference/paper/runs/, and
# the Table 2 experiment's stuck-seed runs under reference/paper/stuck_seed/.
REFERENCE_RUNS = "reference/paper/runs"
STUCK_SEED_RUNS = "reference/paper/stuck_seed"


def shipped_runs():
    """Every shipped run of the toy study as (preset, model, L, seed), from its final evaluation."""
    pattern = run_dir("{preset}", "toy", "{model}", "{L}", "{seed}", root=REFERENCE_RUNS)
    return sorted(zip(*glob_wildcards(f"{pattern}/eval.parquet")))


def shipped_runs_with(name, keep, models=("mdm", "arm")):
    """The shipped runs (preset, model, L, seed) of ``models`` whose preset ``keep`` accepts and that have ``name``."""
    return [(p, m, L, s) for p, m, L, s in shipped_runs() if keep(p) and m in models
            and os.path.exists(f"{run_dir(p, 'toy', m, L, s, root=REFERENCE_RUNS)}/{name}")]


def shipped_files(name, keep, models=("mdm", "arm")):
    """``name`` of every shipped run of ``models`` whose preset ``keep`` accepts, where the run has that file."""
    return [f"{run_dir(p, 'toy', m, L, s, root=REFERENCE_RUNS)}/{name}"
            for p, m, L, s in shipped_runs_with(name, keep, models)]


is_experiment_preset = lambda preset: preset.startswith("table2_")


def experiment_files(name, required=True):
    """``name`` of the shipped MDM runs of the Table 2 experiment's candidates (presets table2_*); none is an
    error where ``required``."""
    files = shipped_files(name, is_experiment_preset, models=("mdm",))
    if not files and required:
        raise ValueError(f"the Table 2 experiment's tables: no run of a table2_* preset under {REFERENCE_RUNS}/; "
                         "make them (reference/paper/README.md, \"The Table 2 experiment\") and copy their Parquet "
                         f"files there")
    return files


STUCK_SEED_RUN = run_dir("{preset}", "toy", "mdm", 40, 0, root=STUCK_SEED_RUNS)


def stuck_seed_presets():
    """The presets of the shipped stuck-seed runs (STUCK_SEED_RUNS/<preset>/toy/mdm/L40/seed0/)."""
    return glob_wildcards(f"{STUCK_SEED_RUN}/eval.parquet").preset


def stuck_seed_files(name):
    """``name`` of the shipped stuck-seed runs."""
    files = expand(f"{STUCK_SEED_RUN}/{name}", preset=stuck_seed_presets())
    if not files:
        raise ValueError(f"the Table 2 experiment's stuck seed: no run under {STUCK_SEED_RUNS}/; make them "
                         "(reference/paper/README.md, \"The Table 2 experiment\", stage B) and copy their Parquet files there")
    return files
