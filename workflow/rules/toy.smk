# Toy study (paper §5, App. D): data -> train (model, L, seed) -> evaluate -> Table 2.
# The attention-only study of §5.2 (toy.attention_only) uses the same data and training
# commands with its own data and run directories; its probes and figures are in probes.smk.
TOY_ATTENTION_ONLY_RUN = run_dir(PRESET, "toy_attention_only", "{model}", "{L}", "{seed}")


rule toy_dataset:
    output:
        data=toy_data_file("toy", "{L}"),
        manifest=toy_data_file("toy", "{L}", ".manifest.json"),
    log:
        "logs/data/toy/L{L}.log",
    benchmark:
        "results/data/benchmarks/toy/L{L}.tsv"
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy data --length {wildcards.L} "
        "--out {output.data} --manifest {output.manifest} > {log} 2>&1"


# Training reruns when its data file is newer, deleting the trained model first: the file is checked in
# this step before, so one that training would reject stops the run here and the model is kept.
rule toy_data_check:
    input:
        toy_data_file("{toy_data}", "{L}"),
    output:
        toy_data_file("{toy_data}", "{L}", ".check.json"),
    log:
        "logs/data/{toy_data}/L{L}_check.log",
    wildcard_constraints:
        toy_data="toy|toy_attention_only",
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy check-data --data {input} --length {wildcards.L} --out {output} > {log} 2>&1"


rule train_toy:
    input:
        data=toy_data_file("toy", "{L}"),
        check=toy_data_file("toy", "{L}", ".check.json"),
    output:
        model=f"{TOY_RUN}/model.pt",
        snapshots=f"{TOY_RUN}/snapshots.pt",
    params:
        spec=toy_train_spec,
    log:
        f"{LOG_DIR}/toy/train/{RUN_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/toy/train/{RUN_NAME}.tsv"
    threads: 1   # one thread per job, jobs side by side: on 2 cores this beat one 2-thread job (docs/toy.md)
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy train --spec {params.spec:q} --data {input.data} "
        "--out {output.model} --snapshots {output.snapshots} > {log} 2>&1"


use rule toy_dataset as toy_dataset_attention_only with:
    output:
        data=toy_data_file("toy_attention_only", "{L}"),
        manifest=toy_data_file("toy_attention_only", "{L}", ".manifest.json"),
    log:
        "logs/data/toy_attention_only/L{L}.log",
    benchmark:
        "results/data/benchmarks/toy_attention_only/L{L}.tsv"


use rule train_toy as train_toy_attention_only with:
    input:
        data=toy_data_file("toy_attention_only", "{L}"),
        check=toy_data_file("toy_attention_only", "{L}", ".check.json"),
    output:
        model=f"{TOY_ATTENTION_ONLY_RUN}/model.pt",
        snapshots=f"{TOY_ATTENTION_ONLY_RUN}/snapshots.pt",
    params:
        spec=toy_attention_only_train_spec,
    log:
        f"{LOG_DIR}/toy_attention_only/train/{RUN_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/toy_attention_only/train/{RUN_NAME}.tsv"


rule evaluate_toy:
    input:
        model=rules.train_toy.output.model,
    output:
        f"{TOY_RUN}/eval.parquet",
    params:
        spec=toy_eval_spec,
    log:
        f"{LOG_DIR}/toy/eval/{RUN_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/toy/eval/{RUN_NAME}.tsv"
    threads: 1   # one thread per job, jobs side by side: on 2 cores this beat one 2-thread job (docs/toy.md)
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy evaluate --spec {params.spec:q} --model {input.model} "
        "--out {output} > {log} 2>&1"


# A run's logged training loss, out of its checkpoint: shipped with the run (checkpoints are not), it is what
# places the run against the data's loss levels (revcurse.toy.experiment.loss_levels).
rule toy_loss_curve:
    input:
        model=rules.train_toy.output.model,
    output:
        f"{TOY_RUN}/loss_curve.parquet",
    log:
        f"{LOG_DIR}/toy/loss_curve/{RUN_NAME}.log",
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy loss-curve --model {input.model} --out {output} > {log} 2>&1"


rule evaluate_toy_over_training:
    input:
        snapshots=rules.train_toy.output.snapshots,
    output:
        f"{TOY_RUN}/accuracy_over_training.parquet",
    params:
        spec=lambda wildcards: as_json(
            toy_specs.toy_eval_over_training_spec(config, wildcards.model, int(wildcards.L), int(wildcards.seed))
        ),
    log:
        f"{LOG_DIR}/toy/eval_over_training/{RUN_NAME}.log",
    benchmark:
        f"{BENCH_DIR}/toy/eval_over_training/{RUN_NAME}.tsv"
    threads: 1
    resources:
        gpu=toy_gpus,
        mem_mb=per_attempt(8000),
        runtime=per_attempt(30),
    conda:
        ENV_TOY
    shell:
        "python -m revcurse.toy evaluate-over-training --spec {params.spec:q} --snapshots {input.snapshots} "
        "--out {output} > {log} 2>&1"

rule table2:
    input:
        evals=toy_run_files("eval.parquet"),
        curves=toy_run_files("accuracy_over_training.parquet"),
    output:
        csv=report(
            f"{OUT}/table2.csv",
            caption="../report/table2.rst",
            category="Toy study",
            labels={"table": "Table 2 (CSV)"},
        ),
        md=f"{OUT}/table2.md",   # in the report as an HTML page (report.smk)
    params:
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/toy/table2.log",
    benchmark:
        f"{BENCH_DIR}/toy/table2.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy table2 --inputs {input.evals} --curves {input.curves} --csv {output.csv} --md {output.md} "
        "--config-hash {params.config_hash} > {log} 2>&1"


rule toy_training_curves:
    input:
        toy_run_files("accuracy_over_training.parquet"),
    output:
        png=report(
            f"{FIGURE_DIR}/toy_accuracy_over_training.png",
            caption="../report/toy_accuracy_over_training.rst",
            category="Toy study",
            labels={"figure": "Accuracy over training"},
        ),
        pdf=f"{FIGURE_DIR}/toy_accuracy_over_training.pdf",
        csv=f"{FIGURE_DIR}/toy_accuracy_over_training.csv",
        choices_csv=report(
            f"{OUT}/toy_decoding_choices.csv",
            caption="../report/toy_decoding_choices.rst",
            category="Toy study",
            labels={"table": "Decoding choices (CSV)"},
        ),
        choices_md=f"{OUT}/toy_decoding_choices.md",   # in the report as an HTML page (report.smk)
    params:
        config_hash=config_hash(TOY),
    log:
        f"{LOG_DIR}/toy/training_curves.log",
    benchmark:
        f"{BENCH_DIR}/toy/training_curves.tsv"
    conda:
        ENV_ANALYSIS
    shell:
        "python -m revcurse.toy training-curves --inputs {input} --png {output.png} --pdf {output.pdf} "
        "--csv {output.csv} --choices-csv {output.choices_csv} --choices-md {output.choices_md} "
        "--config-hash {params.config_hash} > {log} 2>&1"
