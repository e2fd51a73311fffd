#!/usr/bin/env bash
# The Table 2 experiment's runs (docs/toy.md, "The Table 2 experiment"), one stage at a time, in two
# lanes of single-thread Snakemake calls side by side (one per core; each call's targets are disjoint,
# hence --nolock). Rerunning skips what is done. Usage, from the repository root:
#   nohup bash reference/paper/table2_experiment.sh A > reference/paper/table2_A.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=${1:?usage: table2_experiment.sh A|B|C}
candidates="table2_init_radd table2_init_radd_normal_embedding table2_init_pytorch table2_init_gpt2 table2_control"

run() {  # run <preset> <model> <L> <seed>: one run's final evaluation and accuracy over training
  local dir="results/$1/toy/$2/L$3/seed$4"
  echo "=== $(date -u +%FT%TZ) $1 $2 L=$3 seed=$4"
  snakemake --nolock --configfile config.yaml reference/paper/config.yaml --config preset="$1" -c1 \
    -- "$dir/eval.parquet" "$dir/accuracy_over_training.parquet"
}

jobs=()            # "<preset> <model> <L> <seed>", in priority order: seeds 0-2 of every candidate first
case $stage in
  A) for s in 0 1 2 3 4; do for c in $candidates; do jobs+=("$c mdm 20 $s"); done; done ;;
  B) for c in ${STAGE_B_CANDIDATES:?the candidates that passed stage A}; do
       for s in 0 1 2 3 4; do jobs+=("$c mdm 40 $s"); done
     done
     for p in paper_bf16_init_pytorch table2_stuck_loss_sum table2_stuck_no_attention_bias table2_stuck_fp32; do
       jobs+=("$p mdm 40 0")
     done ;;
  C) selected=${STAGE_C_CANDIDATE:?the candidate the rule selects}   # the MDM's other lengths, then the ARM
     for L in 10 30; do for s in 0 1 2 3 4; do jobs+=("$selected mdm $L $s"); done; done
     for s in 0 1 2 3 4; do for L in 10 20 30 40; do jobs+=("$selected arm $L $s"); done; done ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac

# The toy data of each length once, before the lanes (two calls would both build it).
for L in $(printf '%s\n' "${jobs[@]}" | awk '{print $3}' | sort -u); do
  snakemake --nolock --configfile config.yaml reference/paper/config.yaml -c1 -- "results/data/toy/L$L.parquet"
done
lane() {  # lane <0|1>: every second job
  for i in "${!jobs[@]}"; do
    if (( i % 2 == $1 )); then run ${jobs[$i]} || echo "=== FAILED ${jobs[$i]}"; fi
  done
}
lane 0 & lane 1 & wait
echo "=== $(date -u +%FT%TZ) stage $stage done"
