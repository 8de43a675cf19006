#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer:
# a separate build (build-asan/ by default) of the library, the CLI and every
# test, then ctest there. LibTorch, OpenCV and the other libraries are not
# instrumented; what is checked is adcorre's own code.
#
#   scripts/sanitize.sh                   # configure, build, run every test
#   scripts/sanitize.sh -R test-predict   # extra arguments go to ctest
#
# Takes about as long as a clean build plus 2-3x the test time (see
# docs/robustness.md for the measured figures).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-asan}
JOBS=${JOBS:-$(nproc)}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DADCORRE_BUILD_BENCH=OFF \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build "$BUILD_DIR" -j "$JOBS"
# Leaks: LibTorch and OpenCV keep process-lifetime allocations that LSan
# reports on every exit; they are not adcorre's, so leak checking is off.
# The sanitizers' own reports make a test fail (halt_on_error).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The Python tests (test-python-module, test-install) load the instrumented
# module into the uninstrumented interpreter: CMakeLists.txt preloads the
# sanitizer runtimes for those two tests only when the flags sanitize
# (ADCORRE_SANITIZER_PRELOAD); everything else (chromium in
# test-serve-browser, for one) runs without them.
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
