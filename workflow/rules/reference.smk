# The shipped reference (reference/paper/README.md): every table of it, and the accuracy-over-training figure,
# rebuilt from the shipped per-run files (reference/paper/runs/) by one command:
#   snakemake --configfile config.yaml reference/paper/config.yaml --config preset=paper_bf16 reference
# Built under results/reference/ and copied into reference/paper/ by the last job (ship_reference), so that no
# job stamps a code version made '-dirty' by an earlier job's output. The probe figures (3, 4, 5, 11, 12, 13)
# are shipped as their probe run made them (their probe tables are not shipped); the fidelity report reads
# their plotted values. The runs themselves: `snakemake ... --config preset=<preset> reference_runs` makes
# every run the reference ships of that preset under results/; copying their Parquet files into
# reference/paper/runs/ is what ships them (reference/paper/README.md).
from revcurse.toy.experiment import DEFAULT_PRESET

REFERENCE = "reference/paper"
REFERENCE_BUILD = "results/reference"
REFERENCE_PRESET = "paper_bf16"   # the reference numbers: Table 2, the decoding choices, the fidelity report
# Table 2 re-run at config.yaml's model (DEFAULT_PRESET: the Table 2 experiment's outcome), built as the reference's
# own from its shipped runs into default/; the reference's own stay the project's first model's (REFERENCE_PRESET).
DEFAULT_BUILD = f"{REFERENCE_BUILD}/default"
# Presets that differ in one setting: <name>.{csv,md} is variant − baseline on the cells and seeds that
# `cells_of` ran (docs/toy.md, "Precision and speed", "Choices that move the number"); `losses`: the loss
# curves of those runs, read from their checkpoints when they were compared first.
REFERENCE_COMPARISONS = {
    "precision_check": dict(variant="paper_bf16", baseline="paper_fp32", cells_of="paper_fp32"),
    "init_radd": dict(variant="paper_bf16_init_radd", baseline="paper_bf16", cells_of="paper_bf16_init_radd"),
    "init_pytorch": dict(variant="paper_bf16_init_pytorch", baseline="paper_bf16", cells_of="paper_bf16_init_pytorch"),
    "init_pytorch_steps6000": dict(variant="paper_bf16_init_pytorch_steps6000", baseline="paper_bf16_init_pytorch",
                                   cells_of="paper_bf16_init_pytorch_steps6000"),
}


# A comparison's runs: the cells and seeds that `cells_of` ran, in both presets (lambdas rather than defs:
# `snakemake --lint` asks rule files not to define functions).
comparison_runs = lambda c: [
    run_dir(preset, "toy", model, L, seed, root=REFERENCE_RUNS)
    for _, model, L, seed in [run for run in shipped_runs() if run[0] == c["cells_of"]]
    for preset in (c["variant"], c["baseline"])
]
# One preset's shipped runs' ``name`` files (lambdas rather than defs, as above).
preset_files = lambda preset, name: lambda wildcards: shipped_files(name, lambda p: p == preset)
# The probe figures' plotted values shipped under ``folder`` (the fidelity report reads 3, 4, 5, 13 where they exist).
shipped_figures = lambda folder: {figure: f"{folder}/figures/{stem}.csv" for figure, (stem, _) in TOY_FIGURES.items()
                                  if figure in FIDELITY_FIGURES and os.path.exists(f"{folder}/figures/{stem}.csv")}
# The MDM's loss reduction of each preset, which fixes the scale of its loss (revcurse.toy.experiment.loss_levels).
preset_loss_reductions = lambda presets: {
    preset: toy_specs.toy_model_fields(config_for_preset(preset), "mdm")["loss_reduction"] for preset in sorted(presets)}
# The toy config's hash of a reference preset, as its Table 2 stamps it (a lambda: read only when a job needs it,
# so that a workflow without reference/paper/config.yaml still parses).
reference_config_hash = lambda preset: lambda wildcards: config_hash(config_for_preset(preset)["toy"])


rule reference_runs:
    input:
        lambda wildcards: [path.replace(f"{REFERENCE_RUNS}/", "results/", 1)
                           for name in ("eval.parquet", "accuracy_over_training.parquet")
                           for path in shipped_files(name, lambda preset: preset == PRESET)],


use rule table2 as reference_table2 with:
    input:
        evals=preset_files(REFERENCE_PRESET, "eval.parquet"),
        curves=preset_files(REFERENCE_PRESET, "accuracy_over_training.parquet"),
    output:
        csv=f"{REFERENCE_BUILD}/table2.csv",
        md=f"{REFERENCE_BUILD}/table2.md",
    params:
        config_hash=reference_config_hash(REFERENCE_PRESET),
    log:
        f"{LOG_DIR}/reference/table2.log",
    benchmark:
        f"{BENCH_DIR}/reference/table2.tsv"


use rule toy_training_curves as reference_training_curves with:
    input:
        preset_files(REFERENCE_PRESET, "accuracy_over_training.parquet"),
    output:
        png=f"{REFERENCE_BUILD}/figures/toy_accuracy_over_training.png",
        pdf=f"{REFERENCE_BUILD}/figures/toy_accuracy_over_training.pdf",
        csv=f"{REFERENCE_BUILD}/figures/toy_accuracy_over_training.csv",
        choices_csv=f"{REFERENCE_BUILD}/toy_decoding_choices.csv",
        choices_md=f"{REFERENCE_BUILD}/toy_decoding_choices.md",
    params:
        config_hash=reference_config_hash(REFERENCE_PRESET),
    log:
        f"{LOG_DIR}/reference/training_curves.log",
    benchmark:
        f"{BENCH_DIR}/reference/training_curves.tsv"


rule reference_comparison:
    input:
        evals=lambda wildcards: [f"{run}/eval.parquet" for run in comparison_runs(REFERENCE_COMPARISONS[wildcards.name])],
        curves=lambda wildcards: [f"{run}/accuracy_over_training.parquet"
                                  for run in comparison_runs(REFERENCE_COMPARISONS[wildcards.name])
                                  if os.path.exists(f"{run}/accuracy_over_training.parquet")],
        losses=f"{REFERENCE_RUNS}/loss_curves_{{name}}.parquet",
    output:
        csv=f"{REFERENCE_BUILD}/{{name}}.csv",
        md=f"{REFERENCE_BUILD}/{{name}}.md",
    params:
        variant=lambda wildcards: REFERENCE_COMPARISONS[wildcards.name]["variant"],
        baseline=lambda wildcards: REFERENCE_COMPARISONS[wildcards.name]["baseline"],
        curves=lambda wildcards, input: f"--curves {' '.join(input.curves)}" if input.curves else "",
    wildcard_constraints:
        name="|".join(REFERENCE_COMPARISONS),
    log:
        f"{LOG_DIR}/reference/{{name}}.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy compare-presets --variant {params.variant} --baseline {params.baseline} "
        "--evals {input.evals} --losses {input.losses} {params.curves} --csv {output.csv} --md {output.md} > {log} 2>&1"


REFERENCE_FIGURES = shipped_figures(REFERENCE)


use rule fidelity as reference_fidelity with:
    input:
        table2=rules.reference_table2.output.csv,
        table3=FIDELITY_REQUIRED["table3"],
        **REFERENCE_FIGURES,
        paper_values="resources/paper_values.yaml",
        paper_table3="resources/paper_table3.csv",
    output:
        md=f"{REFERENCE_BUILD}/fidelity.md",
        csv=f"{REFERENCE_BUILD}/fidelity.csv",
    params:
        sources=lambda wildcards, input: " ".join(
            f"--source {name}={input[name]}" for name in ["table2", "table3", *REFERENCE_FIGURES]
        ),
        selection="final",
        config_hash=reference_config_hash(REFERENCE_PRESET),
    log:
        f"{LOG_DIR}/reference/fidelity.log",
    benchmark:
        f"{BENCH_DIR}/reference/fidelity.tsv"


# Table 2 re-run at the default (DEFAULT_PRESET): the same tables, figure and report as the reference's above.
use rule table2 as reference_default_table2 with:
    input:
        evals=preset_files(DEFAULT_PRESET, "eval.parquet"),
        curves=preset_files(DEFAULT_PRESET, "accuracy_over_training.parquet"),
    output:
        csv=f"{DEFAULT_BUILD}/table2.csv",
        md=f"{DEFAULT_BUILD}/table2.md",
    params:
        config_hash=reference_config_hash(DEFAULT_PRESET),
    log:
        f"{LOG_DIR}/reference/default/table2.log",
    benchmark:
        f"{BENCH_DIR}/reference/default/table2.tsv"


use rule toy_training_curves as reference_default_training_curves with:
    input:
        preset_files(DEFAULT_PRESET, "accuracy_over_training.parquet"),
    output:
        png=f"{DEFAULT_BUILD}/figures/toy_accuracy_over_training.png",
        pdf=f"{DEFAULT_BUILD}/figures/toy_accuracy_over_training.pdf",
        csv=f"{DEFAULT_BUILD}/figures/toy_accuracy_over_training.csv",
        choices_csv=f"{DEFAULT_BUILD}/toy_decoding_choices.csv",
        choices_md=f"{DEFAULT_BUILD}/toy_decoding_choices.md",
    params:
        config_hash=reference_config_hash(DEFAULT_PRESET),
    log:
        f"{LOG_DIR}/reference/default/training_curves.log",
    benchmark:
        f"{BENCH_DIR}/reference/default/training_curves.tsv"


DEFAULT_FIGURES = shipped_figures(f"{REFERENCE}/default")


use rule fidelity as reference_default_fidelity with:
    input:
        table2=rules.reference_default_table2.output.csv,
        table3=FIDELITY_REQUIRED["table3"],
        **DEFAULT_FIGURES,
        paper_values="resources/paper_values.yaml",
        paper_table3="resources/paper_table3.csv",
    output:
        md=f"{DEFAULT_BUILD}/fidelity.md",
        csv=f"{DEFAULT_BUILD}/fidelity.csv",
    params:
        sources=lambda wildcards, input: " ".join(
            f"--source {name}={input[name]}" for name in ["table2", "table3", *DEFAULT_FIGURES]
        ),
        selection="final",
        config_hash=reference_config_hash(DEFAULT_PRESET),
    log:
        f"{LOG_DIR}/reference/default/fidelity.log",
    benchmark:
        f"{BENCH_DIR}/reference/default/fidelity.tsv"


# The Table 2 experiment (docs/toy.md, "The Table 2 experiment"): its cells and verdicts from the shipped MDM
# runs of its candidates (presets table2_* of reference/paper/config.yaml).
rule reference_table2_experiment:
    input:
        evals=lambda wildcards: experiment_files("eval.parquet"),
        curves=lambda wildcards: experiment_files("accuracy_over_training.parquet"),
        losses=lambda wildcards: experiment_files("loss_curve.parquet", required=False),
        paper_values="resources/paper_values.yaml",
    output:
        csv=f"{REFERENCE_BUILD}/table2_experiment.csv",
        verdicts=f"{REFERENCE_BUILD}/table2_experiment_verdicts.csv",
        md=f"{REFERENCE_BUILD}/table2_experiment.md",
        summary=f"{REFERENCE_BUILD}/table2_experiment_summary.md",
    log:
        f"{LOG_DIR}/reference/table2_experiment.log",
    conda:
        ENV_ANALYSIS
    params:
        loss_reductions=lambda wildcards: as_json(preset_loss_reductions(
            {preset for preset, *_ in shipped_runs_with("loss_curve.parquet", is_experiment_preset, models=("mdm",))})),
    shell:
        "python -m revcurse.toy table2-experiment --evals {input.evals} --curves {input.curves} "
        "--losses {input.losses} --loss-reductions {params.loss_reductions:q} "
        "--paper-values {input.paper_values} --csv {output.csv} --verdicts-csv {output.verdicts} --md {output.md} "
        "--summary-md {output.summary} > {log} 2>&1"


# Stage B's stuck seed (docs/toy.md, "The Table 2 experiment"): paper_bf16_init_pytorch's MDM at L = 40, seed 0,
# unchanged and under one change at a time, shipped apart from runs/ (its unchanged run shares a preset and cell
# with a reference run of another code version), each with its loss curve (rule toy_loss_curve).
rule reference_stuck_seed:
    input:
        evals=lambda wildcards: stuck_seed_files("eval.parquet"),
        curves=lambda wildcards: stuck_seed_files("accuracy_over_training.parquet"),
        losses=lambda wildcards: stuck_seed_files("loss_curve.parquet"),
    output:
        csv=f"{REFERENCE_BUILD}/stuck_seed.csv",
        md=f"{REFERENCE_BUILD}/stuck_seed.md",
    params:
        loss_reductions=lambda wildcards: as_json(preset_loss_reductions(stuck_seed_presets())),
    log:
        f"{LOG_DIR}/reference/stuck_seed.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy stuck-seed --evals {input.evals} --curves {input.curves} --losses {input.losses} "
        "--loss-reductions {params.loss_reductions:q} --csv {output.csv} --md {output.md} > {log} 2>&1"


rule reference_provenance:
    input:
        f"{REFERENCE}/benchmarks",
    output:
        f"{REFERENCE_BUILD}/provenance.json",
    params:
        config_hashes=lambda wildcards: as_json({preset: reference_config_hash(preset)(wildcards)
                                                 for preset in ("paper_bf16", "paper_fp32")}),
    log:
        f"{LOG_DIR}/reference/provenance.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.report reference-provenance --benchmarks {input} --config-hashes {params.config_hashes:q} "
        "--out {output} > {log} 2>&1"


# The last job: copy everything built into reference/paper/ and write README's Table 2 block from the fidelity
# report. A record of the copy is its output, so that the tracked files are never a job's output (Snakemake
# deletes a job's outputs before it runs).
rule reference:
    input:
        rules.reference_table2.output,
        rules.reference_training_curves.output,
        expand(rules.reference_comparison.output, name=REFERENCE_COMPARISONS),
        rules.reference_fidelity.output,
        rules.reference_default_table2.output,
        rules.reference_default_training_curves.output,
        rules.reference_default_fidelity.output,
        rules.reference_table2_experiment.output,
        rules.reference_stuck_seed.output,
        rules.reference_provenance.output,
    output:
        touch(f"{REFERENCE_BUILD}.shipped"),
    params:
        build=lambda wildcards, input: os.path.dirname(input[0]),   # REFERENCE_BUILD
        to=REFERENCE,
    log:
        f"{LOG_DIR}/reference/ship.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.report ship-reference --build {params.build} --to {params.to} --readme README.md "
        "> {log} 2>&1"
