# The shipped reference (reference/paper/README.md): every table of it, and the accuracy-over-training figure,
# rebuilt from the shipped per-run files (reference/paper/runs/) by one command:
#   snakemake --configfile config.yaml reference/paper/config.yaml --config preset=paper_bf16 reference
# Built under results/reference/ and copied into reference/paper/ by the last job (ship_reference), so that no
# job stamps a code version made '-dirty' by an earlier job's output. The probe figures (3, 4, 5, 11, 12, 13) of a
# build whose probe tables are shipped (runs/<preset>/<study>/.../probes/) are drawn from them; the others are
# shipped as their probe run drew them (the reference's own: its probe tables were not kept). The fidelity report
# reads their plotted values. The runs themselves: `snakemake ... --config preset=<preset> reference_runs` makes
# every run the reference ships of that preset under results/; copying their Parquet files into
# reference/paper/runs/ is what ships them (reference/paper/README.md).
from functools import cache

from revcurse.toy.experiment import DEFAULT_PRESET

REFERENCE = "reference/paper"
REFERENCE_BUILD = "results/reference"
REFERENCE_PRESET = "paper_bf16"   # the reference numbers: Table 2, the decoding choices, the fidelity report
# The reference's builds of Table 2, its figure and report, each from one preset's shipped runs: the folder under
# reference/paper/ (and results/reference/) → its preset. The reference's own stay the project's first model's
# (REFERENCE_PRESET); default/ is Table 2 re-run at config.yaml's model (DEFAULT_PRESET: the Table 2 experiment's outcome).
REFERENCE_FOLDERS = {"": REFERENCE_PRESET, "default/": DEFAULT_PRESET}
REFERENCE_FOLDER_PATTERN = "|".join(REFERENCE_FOLDERS)
# Presets that differ in one setting: <name>.{csv,md} is variant − baseline on the cells and seeds that
# `cells_of` ran (docs/toy.md, "Precision and speed", "Choices that move the number"), with the loss curves
# shipped with those runs (loss_curve.parquet: the MDM's, read from their checkpoints by rule toy_loss_curve).
REFERENCE_COMPARISONS = {
    "precision_check": dict(variant="paper_bf16", baseline="paper_fp32", cells_of="paper_fp32"),
    "init_radd": dict(variant="paper_bf16_init_radd", baseline="paper_bf16", cells_of="paper_bf16_init_radd"),
    "init_pytorch": dict(variant="paper_bf16_init_pytorch", baseline="paper_bf16", cells_of="paper_bf16_init_pytorch"),
    "init_pytorch_steps6000": dict(variant="paper_bf16_init_pytorch_steps6000", baseline="paper_bf16_init_pytorch",
                                   cells_of="paper_bf16_init_pytorch_steps6000"),
    "radd_steps12000": dict(variant="radd_steps12000", baseline=DEFAULT_PRESET, cells_of="radd_steps12000"),
}


# A comparison's runs: the cells and seeds that `cells_of` ran, in both presets (lambdas rather than defs:
# `snakemake --lint` asks rule files not to define functions).
comparison_runs = lambda c: [
    run_dir(preset, "toy", model, L, seed, root=REFERENCE_RUNS)
    for _, model, L, seed in [run for run in shipped_runs() if run[0] == c["cells_of"]]
    for preset in (c["variant"], c["baseline"])
]
# A comparison's runs' ``name`` files, where shipped (not every run has its accuracy over training or loss curve).
shipped_comparison_files = lambda wildcards, name: [
    f"{run}/{name}" for run in comparison_runs(REFERENCE_COMPARISONS[wildcards.name]) if os.path.exists(f"{run}/{name}")]
# The comparisons whose runs are shipped (one is listed before its runs are made).
SHIPPED_COMPARISONS = [name for name, comparison in REFERENCE_COMPARISONS.items() if comparison_runs(comparison)]
# The shipped runs' ``name`` files of a build's preset (lambdas rather than defs, as above).
reference_preset_files = lambda wildcards, name: shipped_files(
    name, lambda preset: preset == REFERENCE_FOLDERS[wildcards.folder])
# The probe grid (lengths, seeds) the reference's probe runs cover, overlaid on their preset as they ran.
REFERENCE_PROBES = f"{REFERENCE}/probes.yaml"
# The toy config a build's probes ran with: its preset, then REFERENCE_PROBES.
reference_probe_config = cache(
    lambda folder: config_for_preset(REFERENCE_FOLDERS[folder], [REFERENCE_PROBES])["toy"])
# The shipped probe tables a build's figure reads: those of its preset's probed runs, in REFERENCE_RUNS.
reference_figure_probes = lambda folder, figure: figure_probes(
    figure, reference_probe_config(folder), REFERENCE_FOLDERS[folder], REFERENCE_RUNS)
# The builds whose probe figures are drawn from their shipped probe tables: those with every table of every figure.
reference_figure_folders = cache(lambda: [
    folder for folder in REFERENCE_FOLDERS
    if all(os.path.exists(path) for figure in TOY_FIGURES for path in reference_figure_probes(folder, figure))])
TOY_FIGURE_OF_STEM = {stem: figure for figure, (stem, _) in TOY_FIGURES.items()}
# The probe figures' plotted values a build's fidelity report reads (3, 4, 5, 13): drawn by reference_figure where
# the build's probe tables are shipped, else those shipped in its folder, where they exist.
fidelity_figures = lambda folder: (
    {figure: f"{REFERENCE_BUILD}/{folder}figures/{TOY_FIGURES[figure][0]}.csv" for figure in FIDELITY_FIGURES}
    if folder in reference_figure_folders() else
    {figure: path for figure in FIDELITY_FIGURES
     for path in [f"{REFERENCE}/{folder}figures/{TOY_FIGURES[figure][0]}.csv"] if os.path.exists(path)})
# The MDM's loss reduction of each preset, which fixes the scale of its loss (revcurse.toy.experiment.loss_levels).
preset_loss_reductions = lambda presets: {
    preset: toy_specs.toy_model_fields(config_for_preset(preset), "mdm")["loss_reduction"] for preset in sorted(presets)}
# The toy config's hash of a preset, as its Table 2 stamps it, and of a build's preset (read only when a job needs
# it, so that a workflow without reference/paper/config.yaml still parses).
preset_config_hash = lambda preset: config_hash(config_for_preset(preset)["toy"])
reference_config_hash = lambda wildcards: preset_config_hash(REFERENCE_FOLDERS[wildcards.folder])


rule reference_runs:
    input:
        lambda wildcards: [path.replace(f"{REFERENCE_RUNS}/", "results/", 1)
                           for name in ("eval.parquet", "accuracy_over_training.parquet")
                           for path in shipped_files(name, lambda preset: preset == PRESET)],


use rule table2 as reference_table2 with:
    input:
        evals=lambda wildcards: reference_preset_files(wildcards, "eval.parquet"),
        curves=lambda wildcards: reference_preset_files(wildcards, "accuracy_over_training.parquet"),
    output:
        csv=f"{REFERENCE_BUILD}/{{folder}}table2.csv",
        md=f"{REFERENCE_BUILD}/{{folder}}table2.md",
    params:
        config_hash=reference_config_hash,
    wildcard_constraints:
        folder=REFERENCE_FOLDER_PATTERN,
    log:
        f"{LOG_DIR}/reference/{{folder}}table2.log",
    benchmark:
        f"{BENCH_DIR}/reference/{{folder}}table2.tsv"


use rule toy_training_curves as reference_training_curves with:
    input:
        lambda wildcards: reference_preset_files(wildcards, "accuracy_over_training.parquet"),
    output:
        png=f"{REFERENCE_BUILD}/{{folder}}figures/toy_accuracy_over_training.png",
        pdf=f"{REFERENCE_BUILD}/{{folder}}figures/toy_accuracy_over_training.pdf",
        csv=f"{REFERENCE_BUILD}/{{folder}}figures/toy_accuracy_over_training.csv",
        choices_csv=f"{REFERENCE_BUILD}/{{folder}}toy_decoding_choices.csv",
        choices_md=f"{REFERENCE_BUILD}/{{folder}}toy_decoding_choices.md",
    params:
        config_hash=reference_config_hash,
    wildcard_constraints:
        folder=REFERENCE_FOLDER_PATTERN,
    log:
        f"{LOG_DIR}/reference/{{folder}}training_curves.log",
    benchmark:
        f"{BENCH_DIR}/reference/{{folder}}training_curves.tsv"


rule reference_comparison:
    input:
        evals=lambda wildcards: [f"{run}/eval.parquet" for run in comparison_runs(REFERENCE_COMPARISONS[wildcards.name])],
        curves=lambda wildcards: shipped_comparison_files(wildcards, "accuracy_over_training.parquet"),
        losses=lambda wildcards: shipped_comparison_files(wildcards, "loss_curve.parquet"),
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


# A probe figure of a build, drawn from its shipped probe tables as figures.smk's rules draw it.
rule reference_figure:
    input:
        lambda wildcards: reference_figure_probes(wildcards.folder, TOY_FIGURE_OF_STEM[wildcards.stem]),
    output:
        png=f"{REFERENCE_BUILD}/{{folder}}figures/{{stem}}.png",
        pdf=f"{REFERENCE_BUILD}/{{folder}}figures/{{stem}}.pdf",
        csv=f"{REFERENCE_BUILD}/{{folder}}figures/{{stem}}.csv",
    params:
        command="python -m revcurse.toy figure",
        figure=lambda wildcards: TOY_FIGURE_OF_STEM[wildcards.stem],
        settings=lambda wildcards: as_json(reference_probe_config(wildcards.folder)["probes"]),
        config_hash=lambda wildcards: config_hash(reference_probe_config(wildcards.folder)),
    wildcard_constraints:
        folder=REFERENCE_FOLDER_PATTERN,
        stem="|".join(TOY_FIGURE_OF_STEM),
    log:
        f"{LOG_DIR}/reference/{{folder}}{{stem}}.log",
    benchmark:
        f"{BENCH_DIR}/reference/{{folder}}{{stem}}.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        FIGURE_COMMAND


use rule fidelity as reference_fidelity with:
    input:
        unpack(lambda wildcards: fidelity_figures(wildcards.folder)),
        table2=rules.reference_table2.output.csv,
        table3=FIDELITY_REQUIRED["table3"],
        paper_values="resources/paper_values.yaml",
        paper_table3="resources/paper_table3.csv",
    output:
        md=f"{REFERENCE_BUILD}/{{folder}}fidelity.md",
        csv=f"{REFERENCE_BUILD}/{{folder}}fidelity.csv",
    params:
        sources=fidelity_source_args,
        selection="final",
        config_hash=reference_config_hash,
    wildcard_constraints:
        folder=REFERENCE_FOLDER_PATTERN,
    log:
        f"{LOG_DIR}/reference/{{folder}}fidelity.log",
    benchmark:
        f"{BENCH_DIR}/reference/{{folder}}fidelity.tsv"


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
        config_hashes=lambda wildcards: as_json({preset: preset_config_hash(preset)
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
        expand(rules.reference_table2.output, folder=REFERENCE_FOLDERS),
        expand(rules.reference_training_curves.output, folder=REFERENCE_FOLDERS),
        expand(rules.reference_comparison.output, name=SHIPPED_COMPARISONS),
        expand(rules.reference_fidelity.output, folder=REFERENCE_FOLDERS),
        lambda wildcards: expand(rules.reference_figure.output, folder=reference_figure_folders(), stem=TOY_FIGURE_OF_STEM),
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
