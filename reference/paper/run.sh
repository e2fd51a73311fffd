#!/usr/bin/env bash
# The reference paper-scale toy run, cells in priority order, so that a run stopped early has
# the most informative cells (reference/paper/README.md). Each line is one Snakemake call of
# the same workflow; rerunning the script skips what is done. Usage, from the repository root:
#   nohup bash reference/paper/run.sh > reference/paper/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
run() {  # run <preset> <model> <lengths> <seeds>
  local preset=$1 model=$2 targets=()
  for L in $3; do for s in $4; do targets+=("results/$preset/toy/$model/L$L/seed$s/eval.parquet"); done; done
  echo "=== $(date -u +%FT%TZ) $preset $model L=[$3] seeds=[$4]"
  snakemake --configfile config.yaml reference/paper/config.yaml --config preset="$preset" -- "${targets[@]}"
}
run paper_bf16 mdm "10" "0 1 2 3 4"
run paper_bf16 arm "10" "0 1 2"
run paper_fp32 mdm "10" "0 1 2 3 4"       # precision check at L = 10
run paper_bf16 mdm "40" "0 1 2"
run paper_bf16 mdm "20 30" "0 1 2"
run paper_bf16 arm "20 30 40" "0"
run paper_bf16 mdm "40" "3 4"
run paper_bf16 mdm "20 30" "3 4"
run paper_bf16 arm "20 30 40" "1 2"
run paper_bf16 arm "10" "3 4"
echo "=== $(date -u +%FT%TZ) done"
