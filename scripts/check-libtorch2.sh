#!/usr/bin/env bash
# Builds adcorre against Debian 13's LibTorch 2.x (and OpenCV 4.10) and runs
# the whole ctest suite, inside a Debian 13 (trixie) root made with mmdebstrap.
# The host stays on Debian 12 / LibTorch 1.13; one source tree serves both.
#
#   scripts/check-libtorch2.sh [ROOT]       # default ROOT=/var/tmp/adcorre-trixie
#   JOBS=2 NICE=5 scripts/check-libtorch2.sh
#   SKIP_TESTS=1 scripts/check-libtorch2.sh # build only
#   CMAKE_ARGS=-DADCORRE_MINIMAL=ON scripts/check-libtorch2.sh
#
# Needs root (chroot, bind mounts) and mmdebstrap (apt-get install mmdebstrap).
# The Debian mirror is the one this machine's apt already uses, read from
# /etc/apt/sources.list* at run time. The root is reused when it exists; the
# build folder lives inside it (ROOT/build), so a rerun is incremental.
# The source tree is copied to ROOT/src/adcorre (rsync) and ../shared (the
# test data) bind-mounted next to it at ROOT/src/shared, read-only.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
ROOT=${1:-${ADCORRE_TRIXIE_ROOT:-/var/tmp/adcorre-trixie}}
JOBS=${JOBS:-$(nproc)}
NICE=${NICE:-5}
SUITE=trixie
say() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'check-libtorch2: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot and bind mounts)"
for tool in mmdebstrap rsync; do
  command -v $tool >/dev/null || die "$tool missing: apt-get install $tool"
done
case "$(realpath -m "$ROOT")/" in "$SRC"/*) die "ROOT $ROOT is inside the source tree";; esac

# --- the mirror apt uses here (deb822 URIs: or one-line 'deb URL suite') ----
mirror() {
  local f url
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    url=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 !~ /security/ && u ~ /debian\/?$/) { print u; exit } }' "$f")
    [ -n "$url" ] && { echo "$url"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    url=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^https?:/) { print $i; exit } }' "$f")
    [ -n "$url" ] && { echo "$url"; return; }
  done
}
MIRROR=${MIRROR:-$(mirror)}
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list*; set MIRROR=http://.../debian"

# --- the project's package list, from scripts/setup.sh ----------------------
# Debian 13 names where they differ from Debian 12's (old=new; new empty: drop).
declare -A RENAME=(
)
# Packages trixie needs beyond them: its dlib CMake package links
# /usr/lib/x86_64-linux-gnu/libblas.so and liblapack.so (the -dev symlinks),
# and its libdlib-dev does not depend on the packages that hold them.
EXTRA=(libblas-dev liblapack-dev)
mapfile -t PACKAGES < <(sed -n '/^PACKAGES=(/,/^)/p' scripts/setup.sh | sed '1d;$d;s/#.*//' | tr -s ' \t' '\n' | sed '/^$/d')
[ ${#PACKAGES[@]} -gt 5 ] || die "could not read PACKAGES from scripts/setup.sh"
WANT=("${EXTRA[@]}")
for p in "${PACKAGES[@]}"; do
  if [ -n "${RENAME[$p]+x}" ]; then [ -n "${RENAME[$p]}" ] && WANT+=("${RENAME[$p]}"); else WANT+=("$p"); fi
done

# --- the root ---------------------------------------------------------------
if [ ! -e "$ROOT/etc/adcorre-trixie-root" ]; then
  say "creating the Debian 13 root at $ROOT (mmdebstrap, mirror from this machine's apt sources)"
  rm -rf "$ROOT"
  mkdir -p "$(dirname "$ROOT")"
  mmdebstrap --variant=apt --include=ca-certificates \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$SUITE" "$ROOT" "deb $MIRROR $SUITE main"
  touch "$ROOT/etc/adcorre-trixie-root"
fi

MOUNTS=()
cleanup() {
  local i
  for (( i=${#MOUNTS[@]}-1; i>=0; i-- )); do umount -l "${MOUNTS[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DEST [ro]
  mkdir -p "$2"
  mount --rbind "$1" "$2"; mount --make-rslave "$2"; MOUNTS+=("$2")
  [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
  return 0
}
mkdir -p "$ROOT/proc"
mount -t proc proc "$ROOT/proc"; MOUNTS+=("$ROOT/proc")
bind /dev "$ROOT/dev"
bind /sys "$ROOT/sys"
# A copy, not a bind mount: the build sees one consistent snapshot of the
# tree while it is being edited; rsync keeps unchanged files' times, so a
# rerun rebuilds only what changed.
mkdir -p "$ROOT/src/adcorre"
# --checksum without --times: a file whose content changed gets the time of
# the copy, newer than its object, so ninja rebuilds it (with -a a file edited
# before the previous run's build kept its older time and was not rebuilt).
rsync -rlp --checksum --delete --exclude=/.git --exclude='/build*/' --exclude=/fuzz-results/ "$SRC/" "$ROOT/src/adcorre/"
if [ -d "$SRC/../shared" ]; then bind "$(realpath "$SRC/../shared")" "$ROOT/src/shared" ro
else echo "check-libtorch2: no ../shared next to the tree: tests that need data will skip" >&2; fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive bash -c "$1"; }

say "checking which of the ${#WANT[@]} packages exist in $SUITE"
in_root "apt-get update -q >/dev/null"
INSTALL=()
for p in "${WANT[@]}"; do
  if in_root "apt-cache show $p >/dev/null 2>&1"; then INSTALL+=("$p")
  else die "package $p (from scripts/setup.sh) is not in $SUITE: add a rename to RENAME in $0"; fi
done
say "installing ${#INSTALL[@]} packages in the root"
in_root "apt-get install -y -q --no-install-recommends ${INSTALL[*]} >/var/log/adcorre-apt.log 2>&1 || { tail -30 /var/log/adcorre-apt.log; exit 1; }"
in_root "for lib in libblas.so.3 liblapack.so.3; do t=/usr/lib/x86_64-linux-gnu/openblas-pthread/\$lib; [ -e \$t ] && update-alternatives --set \$lib-x86_64-linux-gnu \$t >/dev/null; done; true"
in_root "dpkg-query -W -f='\${Package} \${Version}\n' libtorch-dev libopencv-dev g++ cmake | sed 's/^/  /'" >&2

say "configuring and building adcorre in the root (nice -n $NICE, $JOBS jobs)"
start=$(date +%s)
in_root "cd /src/adcorre && cmake -S . -B /build/adcorre -G Ninja -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/build-configure.log 2>&1 || { cat /build-configure.log; exit 1; }"
in_root "nice -n $NICE cmake --build /build/adcorre -j $JOBS"
built=$(( $(date +%s) - start ))
say "built in $built s"
[ -n "${SKIP_TESTS:-}" ] && exit 0

say "running the whole ctest suite in the root"
start=$(date +%s)
in_root "cd /build/adcorre && nice -n $NICE ctest --output-on-failure -j 1"
say "LibTorch 2 check passed: build $built s, tests $(( $(date +%s) - start )) s"
