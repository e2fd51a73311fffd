#!/usr/bin/env bash
# Every check that needs a GPU (README.md, "GPU acceptance"), in one run of under 10 minutes on one
# GPU (an H200):
#   1 table2      the paper-scale toy Table 2 from scratch, timed: `snakemake table2` (the rule writing
#                 results/table2.csv) with config.yaml + reference/paper/config.yaml, preset paper_bf16,
#                 toy.train.device=cuda,
#                 --resources gpu=$GPU_JOBS (8 jobs share the card), in a fresh copy of the repository
#                 (benchmarks/toy_speed.py --measure-table2); its Table 2 is kept;
#   2 toy_speed   benchmarks/toy_speed.py --device cuda: ms/step and evaluation, fp32 vs bf16, MDM and ARM
#                 at L = 10 and 40;
#   3 llm_speed   benchmarks/llm_speed.py --device cuda --shapes llama8b llada8b;
#   4 probe_cost  benchmarks/llm_probe_cost.py --device cuda --shapes llada8b llama8b.
# The steps run one after another (clean timings), each under its own `timeout`, so that one that
# fails or hangs does not eat the window: step i may use what the earlier ones left of the budget
# ($BUDGET_S, 570 s) minus the later steps' shares (240, 60, 180, 90 s). A summary (status, seconds,
# command and printout of each step) ends the run; the exit status is 0 only if every step passed.
#
# Usage, from anywhere:
#   bash benchmarks/gpu_acceptance.sh [--tiny] [--wheels WHEEL_DIR] [FOLDER]
#   bash benchmarks/gpu_acceptance.sh --fetch-wheels WHEEL_DIR [PACKAGE...]
# FOLDER (default: $OUT if set, else benchmarks/out/gpu_acceptance_<UTC time>) receives at most 8
# files, flat: summary.txt, 1_table2.log, 2_toy_speed.log, 3_llm_speed.log, 4_probe_cost.log (each
# step's standard output), table2.csv, and extra.tar.gz (standard errors, environment, toy_speed
# JSON, the Table 2 run's snakemake log, job logs, benchmark records, per-run eval.parquet, table2.md).
# --tiny: the same four steps on the CPU at tiny sizes (a 20-step Table 2 of one length and seed,
# quick-preset toy shapes, tiny-llama/tiny-llada): a smoke test of this script, about 30 s on 2 idle
# cores, minutes on a busy machine (tests/workflow/test_gpu_acceptance.py). Its figures say nothing about a GPU.
#
# Environment: PYTHON (default python3; give the interpreter that has the CUDA torch), GPU_JOBS (8),
# BUDGET_S, STEP_SHARES_S (four numbers), and extra arguments per step:
# TABLE2_ARGS, TOY_SPEED_ARGS, LLM_SPEED_ARGS, PROBE_COST_ARGS (e.g. LLM_SPEED_ARGS="--queries 256").
#
# A bare GPU machine (a CUDA torch, no internet, no .git, the package not installed) runs it too:
# - every step, and every workflow job (`python -m revcurse...`), runs $PYTHON: `python` and
#   `python3` on the PATH the steps see are $PYTHON, whatever else the machine has first on its PATH;
# - the other packages (snakemake, jsonschema, transformers, peft, accelerate, pandas, pyarrow, ...)
#   come from a wheel folder: fill one on a machine with internet, with the GPU machine's Python
#   version and platform, with `--fetch-wheels WHEEL_DIR` (`pip wheel` of the project's dependencies
#   but torch at the pins of requirements/lock.txt, or of the PACKAGEs named), carry it along, and pass
#   `--wheels WHEEL_DIR`: the wheels of distributions $PYTHON lacks are installed, without their
#   dependencies and without network, into the run's temporary folder (on PYTHONPATH), nothing else;
# - the code version every output records comes from git where there is a .git, else from the
#   installed revcurse, else from the tree itself (package version + a hash of its files,
#   benchmarks/gpu_acceptance_env.py); the summary's `code:` line names it.
# revcurse is taken from src/ (PYTHONPATH), not installed. The first lines of the summary name any
# package still missing.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=full
FOLDER= WHEELS= FETCH=
while (($#)); do
  case $1 in
    --tiny) MODE=tiny ;;
    --wheels|--fetch-wheels)
      [[ $# -ge 2 ]] || { echo "gpu_acceptance.sh: $1 needs a folder" >&2; exit 2; }
      [[ $1 == --wheels ]] && WHEELS=$2 || { FETCH=$2; shift 2; break; }
      shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_acceptance.sh: unknown option $1 (--tiny, --wheels DIR, --fetch-wheels DIR, FOLDER)" >&2; exit 2 ;;
    *) FOLDER=$1 ;;
  esac
  shift
done
REQUESTED=${PYTHON:-python3}
if ! PYTHON=$(command -v "$REQUESTED"); then
  echo "gpu_acceptance.sh: PYTHON=$REQUESTED is not an interpreter here; expected the path of the Python that" \
       "has torch (e.g. PYTHON=/opt/venv/bin/python)" >&2
  exit 2
fi
if [[ -n $FETCH ]]; then   # on a machine with internet: the packages the GPU machine lacks, as wheels
  # shellcheck disable=SC2207  # package names are words
  (($#)) && PACKAGES=("$@") || PACKAGES=($("$PYTHON" "$ROOT/benchmarks/gpu_acceptance_env.py" packages))
  exec "$PYTHON" -m pip wheel -c "$ROOT/requirements/lock.txt" -w "$FETCH" "${PACKAGES[@]}"
fi
[[ -z $WHEELS || -d $WHEELS ]] || { echo "gpu_acceptance.sh: --wheels $WHEELS: no such folder" >&2; exit 2; }
[[ -z $WHEELS ]] || WHEELS=$(cd "$WHEELS" && pwd)
FOLDER=${FOLDER:-${OUT:-$ROOT/benchmarks/out/gpu_acceptance_$(date -u +%Y%m%dT%H%M%SZ)}}
mkdir -p "$FOLDER" && FOLDER=$(cd "$FOLDER" && pwd)
EXTRA=$FOLDER/extra
rm -rf "$EXTRA" "$FOLDER/extra.tar.gz" && mkdir -p "$EXTRA"
cd "$ROOT"
# Temporary files (the Table 2 run's copy of the repository, with its weights) in one folder that
# goes at the end, also after a step killed by its timeout.
WORKTMP=$(mktemp -d -t gpu_acceptance.XXXXXX) && export TMPDIR=$WORKTMP
trap 'rm -rf "$WORKTMP"' EXIT

export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# The workflow's rules call `python`: here that is $PYTHON, whichever python comes first on PATH. A
# script, not a link: a link to a venv's interpreter outside the venv would lose the venv.
mkdir "$WORKTMP/bin"
for name in python python3; do printf '#!/bin/sh\nexec "%s" "$@"\n' "$PYTHON" > "$WORKTMP/bin/$name"; done
chmod +x "$WORKTMP"/bin/* && export PATH="$WORKTMP/bin:$PATH"
SITE=$WORKTMP/site   # what this run adds: wheels from --wheels, the code version without git
if [[ -n $WHEELS ]]; then
  LACKING=$("$PYTHON" "$ROOT/benchmarks/gpu_acceptance_env.py" missing "$WHEELS") || exit 2
  INSTALL=() && [[ -n $LACKING ]] && mapfile -t INSTALL <<< "$LACKING"
  if ((${#INSTALL[@]})); then
    echo "=== installing ${#INSTALL[@]} wheels of $WHEELS into the run's temporary folder" >&2
    "$PYTHON" -m pip install -q --no-index --no-deps --disable-pip-version-check --target "$SITE" "${INSTALL[@]}" \
      || { echo "gpu_acceptance.sh: installing from --wheels $WHEELS failed" >&2; exit 2; }
  fi
fi
export PYTHONPATH="$PYTHONPATH:$SITE"
if ! CODE_VERSION=$("$PYTHON" -c 'from revcurse.core.provenance import code_version; print(code_version())' \
                    2>/dev/null); then
  CODE_VERSION=revcurse-$("$PYTHON" "$ROOT/benchmarks/gpu_acceptance_env.py" code-version "$SITE") || exit 2
fi
GPU_JOBS=${GPU_JOBS:-8}

if [[ $MODE == full ]]; then
  BUDGET_S=${BUDGET_S:-570}
  SHARES=(240 60 180 90)
  TABLE2=(benchmarks/toy_speed.py --device cuda --table2-only --measure-table2)
  TOY_SPEED=(benchmarks/toy_speed.py --device cuda)
  LLM_SPEED=(benchmarks/llm_speed.py --device cuda --shapes llama8b llada8b)
  PROBE_COST=(benchmarks/llm_probe_cost.py --device cuda --shapes llada8b llama8b)
else
  export OMP_NUM_THREADS=1        # tiny sizes: one thread is fastest and leaves the other cores alone
  BUDGET_S=${BUDGET_S:-2400}      # a smoke test, not a timing: room for a busy machine
  SHARES=(600 600 600 600)
  TABLE2=(benchmarks/toy_speed.py --device cpu --tiny --table2-only --measure-table2)
  TOY_SPEED=(benchmarks/toy_speed.py --device cpu --tiny)
  LLM_SPEED=(benchmarks/llm_speed.py --device cpu --shapes tiny-llama tiny-llada --runs 2 --train-steps 2
             --queries 8 --prompt-tokens 8 --answer-tokens 8 --max-new-tokens 4 --diffusion-steps 4)
  PROBE_COST=(benchmarks/llm_probe_cost.py --device cpu --shapes tiny-llada tiny-llama --samples 4 --placements 2)
fi
TABLE2+=(--preset paper_bf16 --configfile reference/paper/config.yaml --gpu-jobs "$GPU_JOBS" --out "$EXTRA/toy_table2")
TOY_SPEED+=(--out "$EXTRA/toy_speed")
# shellcheck disable=SC2206  # words on purpose
[[ -n ${STEP_SHARES_S:-} ]] && SHARES=($STEP_SHARES_S)
# shellcheck disable=SC2206  # extra arguments are split into words on purpose
TABLE2+=(${TABLE2_ARGS:-}); TOY_SPEED+=(${TOY_SPEED_ARGS:-}); LLM_SPEED+=(${LLM_SPEED_ARGS:-})
# shellcheck disable=SC2206
PROBE_COST+=(${PROBE_COST_ARGS:-})

{
  echo "date: $(date -u +%FT%TZ)  host: ${HOSTNAME:-?}  mode: $MODE  folder: $FOLDER"
  echo "git: $(git describe --always --dirty --abbrev=12 2>/dev/null || echo 'n/a (no .git)')"
  echo "code: $CODE_VERSION (the code version every output records)"
  [[ -n $WHEELS ]] && echo "wheels: $WHEELS (${#INSTALL[@]} installed for this run)"
  "$PYTHON" - <<'EOF' 2>&1
import importlib.metadata, importlib.util, sys
found, missing = [], []
for module, dist in (("torch", "torch"), ("snakemake", "snakemake"), ("jsonschema", "jsonschema"),
                     ("transformers", "transformers"), ("peft", "peft"), ("accelerate", "accelerate"),
                     ("pandas", "pandas"), ("pyarrow", "pyarrow"), ("yaml", "pyyaml"), ("revcurse", None)):
    spec = importlib.util.find_spec(module)        # found, not imported: cheap
    if spec is None:
        missing.append(dist)
        continue
    try:
        found.append(f"{module} {importlib.metadata.version(dist) if dist else spec.origin}")
    except importlib.metadata.PackageNotFoundError:
        found.append(f"{module} {spec.origin}")
print(f"python {sys.version.split()[0]} ({sys.executable}): " + ", ".join(found))
print("MISSING: " + " ".join(missing) if missing else "missing: none")
EOF
  if [[ $MODE == full ]]; then
    "$PYTHON" -c 'import torch; print("cuda:", f"{torch.cuda.get_device_name()}, torch {torch.__version__}, \
CUDA {torch.version.cuda}" if torch.cuda.is_available() else "not available")' 2>&1
  fi
} > "$EXTRA/environment.txt"
command -v nvidia-smi >/dev/null && nvidia-smi >> "$EXTRA/environment.txt" 2>&1
if [[ $MODE == full ]] && ! grep -q "^cuda: [^n]" "$EXTRA/environment.txt"; then
  cat "$EXTRA/environment.txt"
  echo "gpu_acceptance.sh: no CUDA device here; for the CPU smoke run use --tiny" >&2
  exit 2
fi

STARTED=$(date +%s)     # the budget is the four steps'
NAMES=(table2 toy_speed llm_speed probe_cost)
STATUS=() SECONDS_TAKEN=() LIMITS=() COMMANDS=()
run_step() {  # run_step <index 0..3> <command...>
  local i=$1; shift
  local name=${NAMES[$i]} later=0 j
  for ((j = i + 1; j < ${#SHARES[@]}; j++)); do later=$((later + SHARES[j])); done
  local limit=$((BUDGET_S - ($(date +%s) - STARTED) - later))
  ((limit < 10)) && limit=10
  local log="$FOLDER/$((i + 1))_$name.log" err="$EXTRA/$((i + 1))_$name.stderr"
  COMMANDS[i]="$PYTHON $*"
  LIMITS[i]=$limit
  echo "=== $(date -u +%T) step $((i + 1)) $name (limit ${limit} s): ${COMMANDS[i]}" >&2
  local t0 rc ms
  t0=$(date +%s%N)
  timeout -k 30 "$limit" "$PYTHON" "$@" > "$log" 2> "$err"
  rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  SECONDS_TAKEN[i]=$((ms / 1000)).$((ms % 1000 / 100))
  case $rc in
    0) STATUS[i]=ok ;;
    124|137) STATUS[i]="TIMEOUT" ;;
    *) STATUS[i]="FAILED($rc)" ;;
  esac
  echo "=== $(date -u +%T) step $((i + 1)) $name: ${STATUS[i]} after ${SECONDS_TAKEN[i]} s" >&2
}

run_step 0 "${TABLE2[@]}"
TABLE2_OUT=$EXTRA/toy_table2/table2
[[ -f $TABLE2_OUT/table2.csv ]] && cp "$TABLE2_OUT/table2.csv" "$FOLDER/table2.csv"
if [[ ${STATUS[0]} != ok && -d $TABLE2_OUT/results/paper_bf16/benchmarks ]]; then
  # Stopped early: what the jobs that finished took, from their benchmark records.
  { echo; echo "(step stopped: the records of the jobs that finished)"
    "$PYTHON" benchmarks/toy_speed.py --device cpu --table2-only --preset paper_bf16 \
      --configfile reference/paper/config.yaml $([[ $MODE == tiny ]] && echo --tiny) \
      --from-benchmarks "$TABLE2_OUT/results/paper_bf16/benchmarks" 2>&1 | tail -n +2; } >> "$FOLDER/1_table2.log"
fi
run_step 1 "${TOY_SPEED[@]}"
run_step 2 "${LLM_SPEED[@]}"
run_step 3 "${PROBE_COST[@]}"
TOTAL=$(($(date +%s) - STARTED))

{
  echo "GPU acceptance ($MODE mode$([[ $MODE == tiny ]] && echo ': CPU smoke run, tiny sizes, no GPU figures'))"
  grep -E "^(date|git|code|wheels|python|missing|MISSING|cuda)[: ]" "$EXTRA/environment.txt"
  echo
  printf '%-3s %-11s %-11s %8s %7s  %s\n' step name status seconds limit command
  for i in 0 1 2 3; do
    printf '%-3s %-11s %-11s %8s %7s  %s\n' "$((i + 1))" "${NAMES[i]}" "${STATUS[i]}" "${SECONDS_TAKEN[i]}" \
      "${LIMITS[i]}" "${COMMANDS[i]}"
  done
  echo "total ${TOTAL} s (budget ${BUDGET_S} s)"
  for i in 0 1 2 3; do
    name="$((i + 1))_${NAMES[i]}"
    echo; echo "== $name.log"
    cat "$FOLDER/$name.log"
    if [[ ${STATUS[i]} != ok ]]; then
      echo "-- last lines of its standard error ($name.stderr in extra.tar.gz):"
      tail -n 15 "$EXTRA/$name.stderr"
    fi
  done
  echo
  echo "files in $FOLDER: summary.txt, {1_table2,2_toy_speed,3_llm_speed,4_probe_cost}.log," \
       "$([[ -f $FOLDER/table2.csv ]] && echo "table2.csv, ")extra.tar.gz (stderr, environment," \
       "toy_speed.json, the Table 2 run's logs and records)"
} > "$FOLDER/summary.txt"
tar -czf "$FOLDER/extra.tar.gz" -C "$FOLDER" extra && rm -rf "$EXTRA"
cat "$FOLDER/summary.txt"
for status in "${STATUS[@]}"; do [[ $status == ok ]] || exit 1; done
