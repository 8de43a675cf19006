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
# (the Keras .h5 reader; libhdf5 itself is not instrumented), serve_http (the
# service's request handling: Beast's parser with the service's limits, routes,
# multipart, image-header checks, decoding). Each is built from the sources it
# exercises, so all of that is instrumented; serve_http takes the rest
# (Predictor, model, LibTorch, OpenCV) from the build's libadcorre.so
# (BUILD_DIR, default build/: run scripts/setup.sh first), uninstrumented.
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
    serve_http)    /usr/bin/python3 - "$dir" examples/astronaut.jpg <<'PY'
# Requests as a browser, curl and the web page send them: a page load, a raw
# JPEG post, a multipart upload with options, two pipelined requests.
import sys, cv2
d = sys.argv[1]
photo = cv2.imencode(".jpg", cv2.resize(cv2.imread(sys.argv[2]), (96, 64)))[1].tobytes()  # small: -max_len
def post(path, ctype, body, extra=b""):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + ctype + b"\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
open(d + "/get", "wb").write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
open(d + "/raw", "wb").write(post(b"/v1/predict?top_k=2&detector=none", b"image/jpeg", photo))
part = (b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.jpg\"\r\n"
        b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--XyZ--\r\n")
open(d + "/multipart", "wb").write(post(b"/v1/predict", b"multipart/form-data; boundary=XyZ", part))
open(d + "/pipelined", "wb").write(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n" +
                                   b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"5\r\nhello\r\n0\r\n\r\n")
PY
                   ;;
    model_file)    ADCORRE_FUZZ_WRITE_SEED="$dir/data.pkl" "$OUT/bin/fuzz_model_file" >&2 ;;
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

# A huge allocation request gets NULL (bad_alloc in C++), as outside ASan,
# instead of aborting the run: libhdf5 asks malloc for sizes read from the
# file and handles the failure (adcorre then reports "HDF5 file F: cannot
# open: ... memory allocation failed"); an allocation adcorre's own code fails
# to handle still shows as a crash or an uncaught exception.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(zip_integrity image_header fer2013_csv keras_hdf5 serve_http model_file)
for t in "${targets[@]}"; do
  case $t in
    zip_integrity) build "$t" src/util/zip_integrity.cpp src/util/pickle_scan.cpp -lz ;;
    image_header)  build "$t" src/serve/image_header.cpp ;;
    keras_hdf5)    build "$t" src/keras/keras_file.cpp src/keras/hdf5.cpp src/util/checking_child.cpp -DADCORRE_HAVE_HDF5=1 \
                         $(pkg-config --cflags --libs hdf5) ;;
    fer2013_csv)   build "$t" src/data/fer2013_csv.cpp src/data/csv.cpp src/data/class_names.cpp src/data/dataset.cpp \
                         src/util/fs.cpp src/util/log.cpp "$OPENCV" ;;
    serve_http)    lib=${BUILD_DIR:-build}
                   [ -e "$lib/libadcorre.so" ] || { echo "serve_http needs $lib/libadcorre.so (scripts/setup.sh)" >&2; exit 2; }
                   build "$t" src/serve/wire.cpp src/serve/handler.cpp src/serve/multipart.cpp src/serve/image_header.cpp \
                         -DADCORRE_HAVE_BEAST=1 -DADCORRE_VERSION='"fuzz"' -I/usr/include/torch/csrc/api/include "$OPENCV" \
                         -L"$lib" -Wl,-rpath,"$(cd "$lib" && pwd)" -ladcorre -ltorch -ltorch_cpu -lc10 ;;
    model_file)    lib=${BUILD_DIR:-build}
                   [ -e "$lib/libadcorre.so" ] || { echo "model_file needs $lib/libadcorre.so (scripts/setup.sh)" >&2; exit 2; }
                   build "$t" -I/usr/include/torch/csrc/api/include \
                         -L"$lib" -Wl,-rpath,"$(cd "$lib" && pwd)" -ladcorre -ltorch -ltorch_cpu -lc10 ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
: > "$OUT/summary.txt.new"
for t in "${targets[@]}"; do
  corpus=$(seeds "$t")
  log="$OUT/$t.log"
  # Findings of earlier runs are kept aside, so that this run's count is its own.
  mkdir -p "$OUT/earlier"
  find "$OUT" -maxdepth 1 -name "$t-*" -exec mv -t "$OUT/earlier/" {} +
  # libhdf5 keeps a few bytes of its own global state to the end (a 56-byte
  # block LeakSanitizer reports at exit, inside libhdf5): not adcorre's.
  opts=$ASAN_OPTIONS
  [ "$t" = keras_hdf5 ] && opts="$opts:detect_leaks=0"
  echo "fuzzing $t for $SECS s (log: $log)" >&2
  set +e
  ASAN_OPTIONS=$opts "$OUT/bin/fuzz_$t" -max_total_time="$SECS" -max_len=$(case $t in zip_integrity|model_file) echo 65536;; keras_hdf5) echo 1048576;; *) echo 16384;; esac) \
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
