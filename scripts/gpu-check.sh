#!/usr/bin/env bash
# The GPU check of issue #22, prepared to run once on a CUDA machine that has
# PyTorch (and no OpenCV): it builds adcorre's dependency-light configuration
# (ADCORRE_MINIMAL) against PyTorch's own LibTorch, runs the loss's golden
# tests and the model tests on the GPU, measures training throughput
# (fer-compact at 48x48 and the paper's Xception at 224x224, without and with
# --amp) and runs a short training of the paper preset on packed FER-2013.
# Everything it finds goes under $OUT: summary.json plus every log.
#
#   TRAIN_PACK=fer-train.pack VAL_PACK=fer-val.pack scripts/gpu-check.sh
#   DEVICE=cpu SMALL=1 TRAIN_PACK=... VAL_PACK=... scripts/gpu-check.sh   # its CPU form (tiny sizes)
#
# Inputs (environment):
#   DEVICE      cuda (default) or cpu; cuda fails early when torch sees no GPU
#   OUT         results folder (default: gpu-check-out)
#   BUILD_DIR   build folder (default: build-gpu; reused, so a rerun is incremental)
#   TORCH_PREFIX  LibTorch's CMake prefix (default: python3's torch.utils.cmake_prefix_path)
#   TRAIN_PACK, VAL_PACK  packed FER-2013 (`adcorre pack` of a full build; this
#               build decodes no images). Required.
#   GOLDEN      the loss's golden values (default ../shared/testdata/adcorre_golden.json)
#   HEADERS_DIR a folder with nlohmann/json.hpp and CLI/CLI.hpp, where no package has them
#   GTEST_SRC   GoogleTest sources (e.g. /usr/src/googletest), where no GTest package is installed
#   SMALL=1     tiny sizes and step counts (the CPU form: minutes, not hours)
#   STEPS       timed steps per throughput run (default 30; SMALL: 3)
#   JOBS        build jobs (default: nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-gpu-check-out}
BUILD_DIR=${BUILD_DIR:-build-gpu}
GOLDEN=${GOLDEN:-../shared/testdata/adcorre_golden.json}
JOBS=${JOBS:-$(nproc)}
SMALL=${SMALL:-}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
say() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/progress.log" >&2; }
die() { printf 'gpu-check: %s\n' "$*" | tee -a "$OUT/progress.log" >&2; exit 1; }
PY=${PYTHON:-python3}

[ -n "${TRAIN_PACK:-}" ] && [ -f "$TRAIN_PACK" ] || die "TRAIN_PACK (packed FER-2013 training data) is required"
[ -n "${VAL_PACK:-}" ] && [ -f "$VAL_PACK" ] || die "VAL_PACK (packed FER-2013 validation data) is required"
TRAIN_PACK=$(realpath "$TRAIN_PACK"); VAL_PACK=$(realpath "$VAL_PACK")
[ -f "$GOLDEN" ] || die "the loss's golden values $GOLDEN are missing (set GOLDEN)"
GOLDEN=$(realpath "$GOLDEN")

# --- 1. the machine and its LibTorch -----------------------------------------
say "machine"
if [ -z "${TORCH_PREFIX:-}" ]; then
  TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
    die "no TORCH_PREFIX given and $PY cannot import torch"
fi
"$PY" - "$OUT/machine.json" "$TORCH_PREFIX" <<'EOF' || echo '{}' > "$OUT/machine.json"
import json, os, sys
info = {"torch_prefix": sys.argv[2], "torch_prefix_exists": os.path.isdir(sys.argv[2])}
try:
    import torch
    info.update(torch=torch.__version__, cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                gpu=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
except Exception as e:  # the build may still find LibTorch through TORCH_PREFIX
    info["torch_import_error"] = str(e)
info["cpu_count"] = os.cpu_count()
json.dump(info, open(sys.argv[1], "w"), indent=2)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
cat "$OUT/machine.json" >&2

# --- 2. build (minimal: LibTorch + header-only libraries) --------------------
say "configure and build $BUILD_DIR against $TORCH_PREFIX"
cmake_args=(-S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DADCORRE_MINIMAL=ON
            "-DCMAKE_PREFIX_PATH=$TORCH_PREFIX")
[ -n "${HEADERS_DIR:-}" ] && cmake_args+=("-DADCORRE_HEADERS_DIR=$(realpath "$HEADERS_DIR")")
[ -n "${GTEST_SRC:-}" ] && cmake_args+=("-DADCORRE_GTEST_SOURCE_DIR=$(realpath "$GTEST_SRC")")
start=$(date +%s)
cmake "${cmake_args[@]}" ${CMAKE_ARGS:-} > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log" >&2; die "configure failed ($OUT/configure.log)"; }
cmake --build "$BUILD_DIR" -j "$JOBS" > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log" >&2; die "build failed ($OUT/build.log)"; }
build_s=$(( $(date +%s) - start ))
ADC="$BUILD_DIR/adcorre"
"$ADC" info > "$OUT/info.txt" 2>&1
cat "$OUT/info.txt" >&2
if [ "$DEVICE" != cpu ]; then
  grep -q '^CUDA yes' "$OUT/info.txt" || die "this LibTorch build sees no CUDA device (info.txt)"
fi

# --- 3. the loss's golden tests and the model tests on $DEVICE ---------------
say "tests on $DEVICE"
tests_ok=1
for t in test-loss test-models test-train-packed; do
  dev=$DEVICE
  [ $t = test-train-packed ] && dev=cpu   # the trainer's own tests (CPU bf16, refusals) are device-free
  if ADCORRE_TEST_DEVICE=$dev ADCORRE_GOLDEN=$GOLDEN "$BUILD_DIR/$t" --gtest_output="json:$OUT/$t.json" \
      > "$OUT/$t.log" 2>&1; then
    echo "$t: passed on $dev" >&2
  else
    echo "$t: FAILED on $dev (see $OUT/$t.log)" >&2
    tests_ok=0
  fi
done
grep -q '"name": "GoldenFloat32"' "$OUT/test-loss.json" && ! grep -q '"result": "SKIPPED"' "$OUT/test-loss.json" ||
  { echo "test-loss: the golden tests did not run" >&2; tests_ok=0; }

# --- 4. training throughput --------------------------------------------------
# img/s of the timed epoch (the second: the first pays cuDNN's benchmark
# search and the allocator's warm-up), as `adcorre train` logs it.
if [ -n "$SMALL" ]; then
  STEPS=${STEPS:-3}; XSIZE=${XSIZE:-96}; XBATCH=${XBATCH:-8}; CBATCH=${CBATCH:-32}; XMID=${XMID:-1}
else
  STEPS=${STEPS:-30}; XSIZE=${XSIZE:-224}; XBATCH=${XBATCH:-32}; CBATCH=${CBATCH:-128}; XMID=${XMID:-8}
fi
if [ "$DEVICE" = cpu ]; then amps=(none bf16); else amps=(none bf16 fp16); fi
throughput() {  # name preset size batch amp [extra...]
  local name=$1 preset=$2 size=$3 batch=$4 amp=$5; shift 5
  local run="$OUT/runs/$name-$amp" log="$OUT/throughput-$name-$amp.log"
  rm -rf "$run"
  if "$ADC" --device "$DEVICE" train --train "$TRAIN_PACK" --preset "$preset" --input-size "$size" \
      --batch-size "$batch" --epochs 2 --max-steps-per-epoch "$STEPS" --log-every "$STEPS" --augment strong \
      --amp "$amp" --out "$run" "$@" > "$log" 2>&1; then
    local ips
    ips=$(grep -o 'epoch 2/2 .* img/s' "$log" | tail -1 | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "img/s") print $i}')
    printf '{"model": "%s", "preset": "%s", "input": %s, "batch": %s, "amp": "%s", "steps": %s, "img_per_s": %s}\n' \
      "$name" "$preset" "$size" "$batch" "$amp" "$STEPS" "${ips:-null}" >> "$OUT/throughput.jsonl"
    echo "$name $amp: ${ips:-?} img/s" >&2
  else
    printf '{"model": "%s", "amp": "%s", "error": "see %s"}\n' "$name" "$amp" "$(basename "$log")" >> "$OUT/throughput.jsonl"
    echo "$name $amp: FAILED ($log)" >&2
  fi
}
say "throughput ($STEPS steps)"
rm -f "$OUT/throughput.jsonl"
for amp in "${amps[@]}"; do
  throughput fer-compact fer-compact 48 "$CBATCH" "$amp"
  throughput xception xception "$XSIZE" "$XBATCH" "$amp" --middle-blocks "$XMID"
done

# --- 5. a short training of the paper preset on packed FER-2013 --------------
say "short paper-preset training"
if [ -n "$SMALL" ]; then
  PEPOCHS=${PEPOCHS:-1}; PSTEPS=${PSTEPS:-2}; PVAL_ARGS=(--val "$VAL_PACK")
else
  PEPOCHS=${PEPOCHS:-3}; PSTEPS=${PSTEPS:-0}; PVAL_ARGS=(--val "$VAL_PACK")
fi
PAMP=${PAMP:-$([ "$DEVICE" = cpu ] && echo none || echo bf16)}
rm -rf "$OUT/runs/paper"
paper_ok=1
"$ADC" --device "$DEVICE" train --train "$TRAIN_PACK" "${PVAL_ARGS[@]}" --preset xception --input-size "$XSIZE" \
  --middle-blocks "$XMID" --batch-size "$XBATCH" --epochs "$PEPOCHS" --max-steps-per-epoch "$PSTEPS" --amp "$PAMP" \
  --log-every 50 --out "$OUT/runs/paper" > "$OUT/paper-train.json" 2> "$OUT/paper-train.log" || paper_ok=0
if [ $paper_ok = 1 ]; then
  cp "$OUT/runs/paper/metrics.jsonl" "$OUT/paper-metrics.jsonl"
  "$ADC" --device "$DEVICE" eval --model "$OUT/runs/paper/best.pt" --data "$VAL_PACK" --json "$OUT/paper-eval.json" \
    > "$OUT/paper-eval.txt" 2>&1 || paper_ok=0
fi
rm -rf "$OUT/runs"/*/checkpoint.pt  # large, and not a result

# --- summary ---------------------------------------------------------------
"$PY" - "$OUT" "$DEVICE" "$build_s" "$tests_ok" "$paper_ok" <<'EOF'
import json, os, sys
out, device, build_s, tests_ok, paper_ok = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5] == "1"
def load(name, default=None):
    p = os.path.join(out, name)
    try:
        return json.load(open(p))
    except Exception:
        return default
tests = {}
for t in ("test-loss", "test-models", "test-train-packed"):
    j = load(t + ".json", {})
    tests[t] = {"tests": j.get("tests"), "failures": j.get("failures"), "disabled": j.get("disabled")}
thr = [json.loads(l) for l in open(os.path.join(out, "throughput.jsonl"))] if os.path.exists(os.path.join(out, "throughput.jsonl")) else []
s = {"device": device, "machine": load("machine.json", {}), "build_seconds": build_s, "tests_passed": tests_ok,
     "tests": tests, "throughput": thr, "paper_training": {"ok": paper_ok, "result": load("paper-train.json"),
     "eval": load("paper-eval.json")}}
if s["paper_training"]["eval"]:
    s["paper_training"]["eval"] = {k: s["paper_training"]["eval"].get(k) for k in ("accuracy", "mean_class_accuracy", "n")}
json.dump(s, open(os.path.join(out, "summary.json"), "w"), indent=2)
print(json.dumps(s, indent=2))
EOF
say "done: $OUT/summary.json"
[ $tests_ok = 1 ] && [ $paper_ok = 1 ]
