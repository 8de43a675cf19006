#!/usr/bin/env bash
# Configures, builds and tests the dependency-light configuration
# (-DADCORRE_MINIMAL=ON: LibTorch and header-only libraries; docs/building.md)
# in a build folder of its own, without zlib, so that the built-in CRC-32 is
# the one the integrity tests exercise. Its ctest runs the minimal build's own
# test subset (loss golden values, models, metrics, file integrity, training
# and evaluation from packed data).
#
#   scripts/check-minimal.sh [BUILD_DIR]     # default: a fresh temp folder, removed after
#   KEEP=1 scripts/check-minimal.sh /var/tmp/adcorre-minimal   # keep it (a rerun is incremental)
#   JOBS=2 NICE=5 CMAKE_ARGS=-DCMAKE_PREFIX_PATH=/path/to/libtorch scripts/check-minimal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
JOBS=${JOBS:-$(nproc)}
NICE=${NICE:-5}
if [ -n "${1:-}" ]; then
  BUILD=$1
else
  BUILD=$(mktemp -d /tmp/adcorre-minimal.XXXXXX)
  [ -n "${KEEP:-}" ] || trap 'rm -rf "$BUILD"' EXIT
fi
say() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
start=$(date +%s)
say "configure $BUILD (ADCORRE_MINIMAL=ON, without zlib)"
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DADCORRE_MINIMAL=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_ZLIB=ON ${CMAKE_ARGS:-}
# The configuration must really be free of OpenCV and zlib.
if grep -qiE 'opencv|libz\.|zlib' "$BUILD/build.ninja"; then
  grep -oiE '[^ ]*(opencv|libz\.|zlib)[^ ]*' "$BUILD/build.ninja" | sort -u | head >&2
  echo "check-minimal: the minimal build still refers to OpenCV or zlib" >&2
  exit 1
fi
say "build"
nice -n "$NICE" cmake --build "$BUILD" -j "$JOBS"
built=$(date +%s)
say "test"
ctest --test-dir "$BUILD" --output-on-failure
done_at=$(date +%s)
say "passed: configure + build $(( built - start )) s, ctest $(( done_at - built )) s"
