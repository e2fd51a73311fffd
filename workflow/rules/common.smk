# Config resolution and path helpers shared by every rule file.
import json
from pathlib import Path

import revcurse.toy.specs as toy_specs
from revcurse.core.config import config_hash, other_presets_output, results_dir
from revcurse.pipeline.config import load_config


configfile: "config.yaml"


# Every rule sees the config as the command lines and benchmarks load it (revcurse.pipeline.config): config.yaml
# (the file `configfile:` names), the preset, then what the command line set (--configfile files, then --config),
# so a typed value wins over the preset. A bad value stops the run here, before any job, in one line naming the key.
_resolved = load_config(workflow.config_settings.configfiles or [], workflow.config_settings.config or {},
                        Path("config.yaml"), Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
config.clear()
config.update(_resolved)

PRESET = config["preset"]
TOY = config["toy"]
TOY_DIR = f"results/{PRESET}/toy"
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


def toy_runs():
    """Every (model, L, seed) of the toy grid."""
    return [
        dict(model=m, L=L, seed=s)
        for m in TOY["models"]
        for L in TOY["lengths"]
        for s in TOY["seeds"]
    ]


def toy_run_files(name):
    return [f"{TOY_DIR}/{r['model']}/L{r['L']}/seed{r['seed']}/{name}" for r in toy_runs()]


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


# The Table 2 experiment (table2_experiment.smk): the MDM runs of its candidates (presets table2_*) under results/.
TABLE2_EXPERIMENT_RUNS = "results/{candidate}/toy/mdm/L{L}/seed{seed}"


def table2_experiment_files(name):
    """Input function: ``name`` of every evaluated run of a table2_* preset."""
    def files(wildcards):
        runs = glob_wildcards(f"{TABLE2_EXPERIMENT_RUNS}/eval.parquet")
        found = sorted(f"{TABLE2_EXPERIMENT_RUNS}/{name}".format(candidate=c, L=L, seed=s)
                       for c, L, s in zip(runs.candidate, runs.L, runs.seed) if c.startswith("table2_"))
        if not found:
            raise ValueError("results/table2_experiment.*: no evaluated run of a table2_* preset under results/; "
                             "make them first: bash reference/paper/table2_experiment.sh A")
        return found
    return files
