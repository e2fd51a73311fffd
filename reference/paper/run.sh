#!/usr/bin/env bash
# The reference paper-scale toy run, cells in priority order, so that a run stopped early has
# the most informative cells (reference/paper/README.md). Each line is one Snakemake call of
# the same workflow; rerunning the script skips what is done. Usage, from the repository root:
#   nohup bash reference/paper/run.sh > reference/paper/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
# Runs made by an earlier commit are kept: their specs lack fields added since with the value they
# ran with (toy.model_defaults.init: gpt2), so only missing or older-than-input files are rebuilt.
run() {  # run <preset> <model> <lengths> <seeds> [files per run]
  local preset=$1 model=$2 targets=()
  for L in $3; do for s in $4; do for f in ${5:-eval.parquet accuracy_over_training.parquet}; do
    targets+=("results/$preset/toy/$model/L$L/seed$s/$f")
  done; done; done
  echo "=== $(date -u +%FT%TZ) $preset $model L=[$3] seeds=[$4]"
  snakemake --configfile config.yaml reference/paper/config.yaml --config preset="$preset" \
    --rerun-triggers mtime -- "${targets[@]}"
}
run paper_bf16 mdm "10" "0 1 2 3 4"
run paper_bf16 arm "10" "0 1 2"
run paper_fp32 mdm "10" "0 1 2 3 4" eval.parquet      # precision check at L = 10
run paper_bf16 mdm "40" "0 1 2"
run paper_bf16 mdm "20 30" "0 1 2"
run paper_bf16_init_radd mdm "10" "0 1 2"                  # initialisation, L = 10 (with accuracy over training)
run paper_bf16_init_pytorch mdm "10" "0 1 2"
run paper_bf16 mdm "40" "3 4"
run paper_bf16 arm "20 30 40" "0"
run paper_bf16 mdm "20 30" "3 4"
run paper_bf16 arm "10" "3 4"
run paper_bf16_init_pytorch mdm "40" "0 1" eval.parquet    # initialisation, L = 40: two seeds first
run paper_bf16_init_radd mdm "40" "0 1" eval.parquet
run paper_bf16 arm "20" "1 2"                              # the runs the probes at L = 20 need (README)
run paper_bf16_init_pytorch mdm "40" "2" eval.parquet
run paper_bf16_init_radd mdm "40" "2" eval.parquet
run paper_bf16 arm "30 40" "1 2"
run paper_bf16 arm "20 30 40" "3 4"
run paper_bf16_init_pytorch_steps6000 mdm "40" "0" eval.parquet   # the seed that had not learned by step 3000
echo "=== $(date -u +%FT%TZ) done"
