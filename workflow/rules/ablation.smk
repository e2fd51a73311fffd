# Ablation grid (docs/ablation.md): position encoding × attention × objective × depth on
# the toy task. Cells, run directories and specs come from revcurse.ablation.grid. The reference cells
# (the paper's MDM and ARM) are the Table 2 runs of toy.smk, so only the other cells are trained
# here, one job per cell with its seeds stacked, then evaluated and probed with the toy rules.
import revcurse.ablation.grid as ablation

ABLATION_CELLS = {cell.name: cell for cell in ablation.expand_grid(config)[0]}
ABLATION_RUN = run_dir(PRESET, ablation.STUDY, "{cell}", "{L}", "{seed}")
ABLATION_RUN_NAME = run_name("{cell}", "{L}", "{seed}")
ABLATION_LOG = f"{LOG_DIR}/{ablation.STUDY}"
ABLATION_BENCH = f"{BENCH_DIR}/{ablation.STUDY}"


wildcard_constraints:
    cell=r"[a-z]+_[a-z]+_[a-z]+_depth\d+",


# Lambdas rather than defs: `snakemake --lint` asks rule files not to define functions.
ablation_eval_spec = lambda wildcards: as_json(
    ablation.eval_spec(config, ABLATION_CELLS[wildcards.cell], int(wildcards.seed))
)
ablation_probe_spec = lambda wildcards: as_json(
    ablation.probe_spec(config, ABLATION_CELLS[wildcards.cell], int(wildcards.seed))
)
# Called by all_targets() once the table rule is defined.
ablation_targets = lambda: list(rules.ablation_table.output)


rule train_ablation:
    input:
        data=toy_data_file("toy", "{L}"),
        check=toy_data_file("toy", "{L}", ".check.json"),    # toy.smk: rule toy_data_check
    output:
        models=[f"{run_dir(PRESET, ablation.STUDY, '{cell}', '{L}', s)}/model.pt" for s in TOY["seeds"]],
        snapshots=[f"{run_dir(PRESET, ablation.STUDY, '{cell}', '{L}', s)}/snapshots.pt" for s in TOY["seeds"]],
    params:
        arguments=lambda wildcards: ablation.train_arguments(config, ABLATION_CELLS[wildcards.cell]),
    log:
        f"{ABLATION_LOG}/train/{{cell}}_L{{L}}.log",
    benchmark:
        f"{ABLATION_BENCH}/train/{{cell}}_L{{L}}.tsv"
    threads: 1  # on the CPU a second thread barely speeds up the tiny stack (15.3 vs 15.7 ms/step); a second job does
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(4000),
        runtime=per_attempt(60),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy train {params.arguments:q} --data {input.data} > {log} 2>&1"


use rule evaluate_toy as evaluate_ablation with:
    input:
        model=f"{ABLATION_RUN}/model.pt",
    output:
        f"{ABLATION_RUN}/eval.parquet",
    params:
        spec=ablation_eval_spec,
    log:
        f"{ABLATION_LOG}/eval/{ABLATION_RUN_NAME}.log",
    benchmark:
        f"{ABLATION_BENCH}/eval/{ABLATION_RUN_NAME}.tsv"


use rule probe_attention as probe_attention_ablation with:
    input:
        f"{ABLATION_RUN}/snapshots.pt",
    output:
        f"{ABLATION_RUN}/probes/attention.parquet",
    params:
        spec=ablation_probe_spec,
    log:
        f"{ABLATION_LOG}/probes/{ABLATION_RUN_NAME}_attention.log",
    benchmark:
        f"{ABLATION_BENCH}/probes/{ABLATION_RUN_NAME}_attention.tsv"


use rule probe_training_dynamics as probe_training_dynamics_ablation with:
    input:
        f"{ABLATION_RUN}/snapshots.pt",
    output:
        alignment=f"{ABLATION_RUN}/probes/gradient_alignment.parquet",
        probability=f"{ABLATION_RUN}/probes/query_probability.parquet",
    params:
        spec=ablation_probe_spec,
    log:
        f"{ABLATION_LOG}/probes/{ABLATION_RUN_NAME}_training_dynamics.log",
    benchmark:
        f"{ABLATION_BENCH}/probes/{ABLATION_RUN_NAME}_training_dynamics.tsv"


rule ablation_table:
    input:
        [path for cell in ABLATION_CELLS.values() for path in ablation.cell_inputs(config, cell)],
    output:
        csv=report(
            f"{OUT}/ablation.csv",
            caption="../report/ablation.rst",
            category="Ablation",
            labels={"table": "Ablation grid (CSV)"},
        ),
        per_seed=f"{OUT}/ablation_per_seed.csv",
        md=f"{OUT}/ablation_conclusion.md",   # in the report as an HTML page, with the grid (report.smk)
        png=report(
            f"{FIGURE_DIR}/ablation.png",
            caption="../report/ablation_figure.rst",
            category="Ablation",
            labels={"figure": "Ablation grid"},
        ),
        pdf=f"{FIGURE_DIR}/ablation.pdf",
    params:
        grid=as_json(ablation.grid_record(config)),
        config_hash=config_hash({"toy": TOY, "ablation": config["ablation"]}),
    log:
        f"{ABLATION_LOG}/table.log",
    benchmark:
        f"{ABLATION_BENCH}/table.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.ablation table --grid {params.grid:q} --csv {output.csv} "
        "--per-seed-csv {output.per_seed} --md {output.md} --png {output.png} --pdf {output.pdf} "
        "--config-hash {params.config_hash} > {log} 2>&1"
