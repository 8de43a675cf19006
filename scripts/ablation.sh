#!/usr/bin/env bash
# The Ad-Corre ablation: the same preset and budget for every row, several
# seeds; prints a Markdown table (mean and spread of the best validation
# accuracy and mean class accuracy) and keeps each run under runs/ablation/.
#
#   scripts/ablation.sh [SEEDS] [EPOCHS] [STEPS_PER_EPOCH]
# Env: PRESET (fer-tiny), TRAIN/VAL (../shared/data/fer2013/{train,val}),
#      THREADS (1), ROWS (a subset of the row names below), OUT (runs/ablation)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2"}
EPOCHS=${2:-4}
STEPS=${3:-60}
PRESET=${PRESET:-fer-tiny}
TRAIN=${TRAIN:-../shared/data/fer2013/train}
VAL=${VAL:-../shared/data/fer2013/val}
THREADS=${THREADS:-1}
OUT=${OUT:-runs/ablation}
BIN=${BIN:-build/adcorre}
ROWS=${ROWS:-"ce adcorre adcorre-nonadaptive no-fd no-md no-ed"}

row_args() {
  case "$1" in
    ce) echo "--loss ce" ;;
    adcorre) echo "--loss adcorre" ;;
    adcorre-nonadaptive) echo "--loss adcorre --no-adaptive" ;;
    no-fd) echo "--loss adcorre --lambda-fd 0" ;;
    no-md) echo "--loss adcorre --lambda-md 0" ;;
    no-ed) echo "--loss adcorre --lambda-ed 0" ;;
    *) echo "unknown row $1" >&2; exit 2 ;;
  esac
}

mkdir -p "$OUT"
for row in $ROWS; do
  for seed in $SEEDS; do
    dir="$OUT/$row-seed$seed"
    if [ -f "$dir/best.pt" ] && [ "$(wc -l < "$dir/metrics.jsonl")" -ge "$EPOCHS" ]; then continue; fi
    rm -rf "$dir"
    echo "== $row seed $seed" >&2
    # shellcheck disable=SC2046
    "$BIN" --threads "$THREADS" --quiet train --train "$TRAIN" --val "$VAL" --preset "$PRESET" \
      $(row_args "$row") --optimizer adamw --lr 3e-3 --weight-decay 0.05 --schedule onecycle --warmup 0.15 \
      --epochs "$EPOCHS" --max-steps-per-epoch "$STEPS" --batch-size 128 --label-smoothing 0.1 --augment strong \
      --run-seed "$seed" --out "$dir" > "$dir.json"
  done
done

python3 - "$OUT" "$ROWS" "$SEEDS" "$PRESET" "$EPOCHS" "$STEPS" <<'PY'
import json, statistics, sys
out, rows, seeds, preset, epochs, steps = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), *sys.argv[4:]
print(f"preset {preset}, {epochs} epochs x {steps} steps of 128, seeds {' '.join(seeds)}; best epoch by val accuracy\n")
print("| row | val accuracy (mean ± sd) | mean class accuracy (mean ± sd) | runs |")
print("|---|---|---|---|")
for r in rows:
    acc, mca = [], []
    for s in seeds:
        try:
            recs = [json.loads(l) for l in open(f"{out}/{r}-seed{s}/metrics.jsonl") if l.strip()]
        except FileNotFoundError:
            continue
        best = max(recs, key=lambda x: x["val_accuracy"])
        acc.append(best["val_accuracy"]); mca.append(best["val_mean_class_accuracy"])
    if not acc: continue
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"| {r} | {100*statistics.mean(acc):.2f} ± {100*sd(acc):.2f} | {100*statistics.mean(mca):.2f} ± {100*sd(mca):.2f} | {len(acc)} |")
PY
