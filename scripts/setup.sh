#!/usr/bin/env bash
# One-command setup for a fresh Debian 12 machine: installs every Debian
# package adcorre needs, makes OpenBLAS the active BLAS, configures and builds.
# Idempotent: run it again at any time. Fails loudly.
#
#   scripts/setup.sh            # install packages + build (Release) into build/
#   BUILD_DIR=out scripts/setup.sh
#   SKIP_APT=1 scripts/setup.sh # build only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
say() { printf '\n== %s\n' "$*" >&2; }

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev                       # LibTorch 1.13 (CPU), c10d/Gloo inside libtorch_cpu
  libopenblas0-pthread               # ~1.5x faster than the reference BLAS here
  libopencv-dev opencv-data          # image/video I/O, Haar/LBP face cascades
  nlohmann-json3-dev libcli11-dev
  zlib1g-dev                         # CRC-32 checks of model files and checkpoints
  libgtest-dev libbenchmark-dev
  libhdf5-dev                        # Keras .h5 import
  libcpp-httplib-dev                 # serve-bench's client, the service tests
  libboost-dev                       # adcorre serve: Boost.Beast/Asio (header-only)
  libgloo-dev                        # c10d Gloo headers (distributed training)
  libdlib-dev libdlib-data           # HOG face detector, 68-point landmarks
  python3 python3-numpy python3-torch  # the Python side of the benchmarks
  pybind11-dev python3-dev python3-pytest  # the Python module, its tests
  python3-opencv                     # docs/onnx.md: the exported ONNX file in cv2.dnn; the Python module's tests
  chromium                           # the real-browser test of the web page
)

if [ -z "${SKIP_APT:-}" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${#missing[@]} Debian packages: ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    say "all ${#PACKAGES[@]} Debian packages already installed"
  fi
  say "making OpenBLAS (pthread) the active BLAS/LAPACK"
  for lib in libblas.so.3 liblapack.so.3; do
    target=/usr/lib/x86_64-linux-gnu/openblas-pthread/$lib
    if [ -e "$target" ]; then
      $SUDO update-alternatives --set "$lib-x86_64-linux-gnu" "$target" >/dev/null
      echo "$lib -> $(readlink -f /usr/lib/x86_64-linux-gnu/$lib)" >&2
    fi
  done
fi

say "configuring ($BUILD_DIR, Release)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
say "building with $JOBS jobs"
start=$(date +%s)
cmake --build "$BUILD_DIR" -j "$JOBS"
say "built in $(( $(date +%s) - start )) s: $BUILD_DIR/adcorre"
