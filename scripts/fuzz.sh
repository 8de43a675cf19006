#!/usr/bin/env bash
# Builds adcorre's libFuzzer targets (clang, with ASan + UBSan) and runs each
# for a given time, on seeds from real files, writing one summary line per
# target (executions, crashes) to fuzz-results/summary.txt.
#
#   scripts/fuzz.sh                 # every target, 600 s each
#   SECONDS_PER_TARGET=60 scripts/fuzz.sh zip_integrity image_header
#
# Targets (fuzz/fuzz_<name>.cpp): zip_integrity (model files, checkpoints),
# image_header (decode caps), fer2013_csv (CSV and label readers), keras_hdf5
# (the Keras .h5 reader; libhdf5 itself is not instrumented). Each is
# built from only the sources it exercises, so all of it is instrumented.
# Needs clang and libclang-rt (Debian: clang libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECONDS_PER_TARGET:-600}
OUT=${FUZZ_OUT:-fuzz-results}
CXX=${FUZZ_CXX:-$(command -v clang++-14 || command -v clang++)}
mkdir -p "$OUT/bin"
FLAGS=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Isrc)
OPENCV=$(pkg-config --cflags --libs opencv4)

build() {  # name, sources and libraries...
  local name=$1; shift
  [ "$OUT/bin/fuzz_$name" -nt "fuzz/fuzz_$name.cpp" ] && return 0
  echo "building fuzz_$name" >&2
  # shellcheck disable=SC2068
  "$CXX" "${FLAGS[@]}" "fuzz/fuzz_$name.cpp" $@ -o "$OUT/bin/fuzz_$name"
}

seeds() {  # name -> corpus folder with seeds
  local name=$1 dir="$OUT/corpus/$1"
  mkdir -p "$dir"
  case $name in
    zip_integrity) python3 - "$dir" <<'PY'
# Small archives shaped like LibTorch's: stored entries, one deflated, and
# the zip64 end records PyTorch's writer adds (large model files would be
# cut at -max_len).
import sys, zipfile
for n, zip64 in ((0, False), (1, True)):
    with zipfile.ZipFile(f"{sys.argv[1]}/archive{n}.pt", "w", zipfile.ZIP_STORED, allowZip64=zip64) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00." * 20)
        z.writestr("archive/data/0", bytes(range(256)) * 4)
        z.writestr("archive/code/x.py", b"def f(): pass\n" * 30, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("archive/version", b"3\n")
PY
                   ;;
    image_header)  cp -n examples/*.jpg "$dir/" 2>/dev/null || true
                   printf '\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x00\x00\x00\x00' > "$dir/png-header" ;;
    keras_hdf5)    cp -n ../shared/testdata/keras/*mini*.hdf5 "$dir/" 2>/dev/null || true ;;
    fer2013_csv)   python3 - "$dir" <<'PY'
import sys, random
random.seed(1)
px = " ".join(str(random.randrange(256)) for _ in range(2304))
open(sys.argv[1] + "/seed.csv", "w").write("emotion,pixels,Usage\n3," + px + ",Training\n5," + px + ",PublicTest\n")
PY
                   ;;
  esac
  echo "$dir"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(zip_integrity image_header fer2013_csv keras_hdf5)
for t in "${targets[@]}"; do
  case $t in
    zip_integrity) build "$t" src/util/zip_integrity.cpp -lz ;;
    image_header)  build "$t" src/serve/image_header.cpp ;;
    keras_hdf5)    build "$t" src/keras/keras_file.cpp src/keras/hdf5.cpp -DADCORRE_HAVE_HDF5=1 \
                         $(pkg-config --cflags --libs hdf5) ;;
    fer2013_csv)   build "$t" src/data/fer2013_csv.cpp src/data/csv.cpp src/data/class_names.cpp src/data/dataset.cpp \
                         src/util/fs.cpp src/util/log.cpp "$OPENCV" ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
: > "$OUT/summary.txt.new"
for t in "${targets[@]}"; do
  corpus=$(seeds "$t")
  log="$OUT/$t.log"
  echo "fuzzing $t for $SECS s (log: $log)" >&2
  set +e
  "$OUT/bin/fuzz_$t" -max_total_time="$SECS" -max_len=$(case $t in zip_integrity) echo 65536;; keras_hdf5) echo 1048576;; *) echo 16384;; esac) \
      -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$OUT/$t-" "$corpus" > "$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  crashes=$(find "$OUT" -maxdepth 1 -name "$t-*" \( -name '*crash-*' -o -name '*leak-*' -o -name '*timeout-*' -o -name '*oom-*' \) | wc -l)
  line="$t: ${SECS} s, ${execs:-?} executions, $crashes crash/leak/timeout/oom inputs, exit $rc"
  echo "$line" | tee -a "$OUT/summary.txt.new"
done
mv "$OUT/summary.txt.new" "$OUT/summary.txt"
! grep -q ', [1-9][0-9]* crash' "$OUT/summary.txt"
