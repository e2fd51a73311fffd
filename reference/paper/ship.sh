#!/usr/bin/env bash
# Builds the reference run's tables and figures from the runs that run.sh has finished, and copies
# them, with their per-run Parquet files and provenance, into reference/paper/ (no checkpoints or
# snapshots). Safe to repeat as more runs finish. From the repository root:
#   bash reference/paper/ship.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
SHIP=reference/paper
# Everything is built in a git-ignored folder and copied into $SHIP at the end: a file written into
# the tree would make every later step's code version "-dirty".
OUT=results/reference_paper
rm -rf $OUT
SMK=(snakemake --configfile config.yaml reference/paper/config.yaml --rerun-triggers mtime)   # keeps runs of earlier commits (run.sh)
finished() { ls results/$1/toy/*/L*/seed*/eval.parquet 2>/dev/null | sort -V; }

mapfile -t evals < <(finished paper_bf16)
curves=("${evals[@]/eval.parquet/accuracy_over_training.parquet}")
# Accuracy over training of every finished run, and Table 3 for the fidelity report.
"${SMK[@]}" --config preset=paper_bf16 -- "${curves[@]}" results/table3.csv
hash=$(python -m revcurse.toy reference-config-hash paper_bf16)
mkdir -p $OUT/figures $OUT/runs
python -m revcurse.toy table2 --inputs "${evals[@]}" --curves "${curves[@]}" --csv $OUT/table2.csv \
  --md $OUT/table2.md --config-hash "$hash"
python -m revcurse.toy training-curves --inputs "${curves[@]}" --png $OUT/figures/toy_accuracy_over_training.png \
  --pdf $OUT/figures/toy_accuracy_over_training.pdf --csv $OUT/figures/toy_accuracy_over_training.csv \
  --choices-csv $OUT/toy_decoding_choices.csv --choices-md $OUT/toy_decoding_choices.md --config-hash "$hash"
sources=(--source table2=$OUT/table2.csv --source table3=results/table3.csv)
# The probe figures made with probes.yaml (README), where they exist; the fidelity report reads 3, 4, 5, 13.
for fig in fig3 fig4 fig5 fig11 fig12 fig13; do
  csv=$(ls results/figures/${fig}_*.csv 2>/dev/null | head -1 || true)
  [ -z "$csv" ] && continue
  cp results/figures/${fig}_* $OUT/figures/
  case $fig in fig3|fig4|fig5|fig13) sources+=(--source $fig=$csv) ;; esac
done
python -m revcurse.report fidelity --paper-values resources/paper_values.yaml "${sources[@]}" --selection final \
  --config-hash "$hash" --csv $OUT/fidelity.csv --md $OUT/fidelity.md

# Presets that differ in one setting, on the cells and seeds that the preset run on a subset has:
# compare <name> <variant> <baseline> <the subset's preset> writes <name>.{csv,md} (variant − baseline).
compared=()
compare() {
  mapfile -t other < <(finished "$4")
  [ ${#other[@]} -gt 0 ] || return 0
  local counterpart=$2; [ "$4" = "$2" ] && counterpart=$3
  local both=("${other[@]}")
  for f in "${other[@]}"; do both+=("${f/$4/$counterpart}"); done
  local curves=() f   # the accuracy over training of the runs that have it (best over training, per cell)
  for f in "${both[@]/eval.parquet/accuracy_over_training.parquet}"; do [ -f "$f" ] && curves+=("$f"); done
  [ ${#curves[@]} -gt 0 ] && curves=(--curves "${curves[@]}")
  python -m revcurse.toy compare-presets --variant "$2" --baseline "$3" --evals "${both[@]}" \
    --models "${both[@]/eval.parquet/model.pt}" "${curves[@]}" --losses $OUT/runs/loss_curves_$1.parquet \
    --csv $OUT/$1.csv --md $OUT/$1.md
  compared+=("${other[@]}" "${curves[@]:1}")
}
compare precision_check paper_bf16 paper_fp32 paper_fp32                           # docs/toy.md, "Precision"
compare init_radd paper_bf16_init_radd paper_bf16 paper_bf16_init_radd            # docs/toy.md, "Choices that
compare init_pytorch paper_bf16_init_pytorch paper_bf16 paper_bf16_init_pytorch   # move the number"
compare init_pytorch_steps6000 paper_bf16_init_pytorch_steps6000 paper_bf16_init_pytorch paper_bf16_init_pytorch_steps6000

# Per-run Parquet files and the Snakemake benchmark records (wall time per job).
for f in "${evals[@]}" "${curves[@]}" "${compared[@]}"; do
  mkdir -p "$OUT/runs/$(dirname "${f#results/}")" && cp "$f" "$OUT/runs/${f#results/}"
done
for preset in paper_bf16 paper_fp32 paper_bf16_init_radd paper_bf16_init_pytorch paper_bf16_init_pytorch_steps6000; do
  [ -d results/$preset/benchmarks ] && mkdir -p $OUT/benchmarks/$preset && cp -r results/$preset/benchmarks/. $OUT/benchmarks/$preset/
done
python -m revcurse.toy reference-provenance --out $OUT/provenance.json --benchmarks $OUT/benchmarks
cp -a $OUT/. $SHIP/
python -m revcurse.toy reference-readme --fidelity $SHIP/fidelity.csv
echo "shipped ${#evals[@]} paper_bf16 runs and ${#compared[@]} files of the compared presets into $SHIP"
