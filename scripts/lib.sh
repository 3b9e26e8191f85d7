# scripts/lib.sh: shared bash functions for scripts/test.sh, scripts/demo.sh (and later bench.sh).
# Source it, do not run it:   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The one list of Debian packages the project needs lives here, so every script installs the same set.

# Project root: the folder above scripts/, whatever the caller's working directory.
CHORD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Native build: compilers, build tools and the header/library dependencies (Debian 12 names).
# libclang-rt-14-dev gives Clang its sanitizer runtimes (the ASan+UBSan configuration).
CHORD_BUILD_PACKAGES=(cmake ninja-build g++ clang libclang-rt-14-dev catch2 libxsimd-dev libhwy-dev
                      libbenchmark-dev libcpuinfo-dev libcli11-dev libfmt-dev nlohmann-json3-dev
                      locales python3-torch python3-numpy)
# locales: localedef + locale sources (the tests compile de_DE.UTF-8, tests/CMakeLists.txt);
# python3-torch, python3-numpy: the interop tests (tests/interop)
# aarch64 cross build, its tests run under qemu. libhwy-dev:arm64 provides the arm64 libhwy.so; there
# is no libcpuinfo-dev:arm64 here because it cannot be co-installed with the amd64 one (the cross build
# goes without cpuinfo).
CHORD_CROSS_PACKAGES=(g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64)
# Peers in the benchmarks (fp32 BLAS, oneDNN, gemmlowp and XNNPACK int8; XNNPACK's header needs
# pthreadpool's).
CHORD_BENCH_PACKAGES=(libopenblas-dev libeigen3-dev libdnnl-dev libgemmlowp-dev libxnnpack-dev libpthreadpool-dev)

chord_log() { printf '==> %s\n' "$*" >&2; }

# chord_package_installed NAME[:ARCH]
# True when the package is installed. Without an architecture, the native one (or "all") must be the
# installed instance: once arm64 is added, `dpkg -s libhwy-dev` is ambiguous, so ask dpkg-query per
# architecture instead.
chord_package_installed() {
  local pkg=$1 native
  if [[ $pkg == *:* ]]; then
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]]
  else
    native=$(dpkg --print-architecture)
    dpkg-query -W -f='${Architecture} ${Status}\n' "$pkg" 2>/dev/null |
      grep -Eq "^(${native}|all) install ok installed$"
  fi
}

# chord_ensure_packages PACKAGE...
# Installs the missing packages when running as root (adding the arm64 architecture first when a
# :arm64 package is asked for); otherwise prints the exact command to run and returns 1.
chord_ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    chord_log "not a Debian system (no dpkg-query): not checking packages; needed: $*"
    return 0
  fi
  local missing=() pkg need_arm64=0
  for pkg in "$@"; do
    chord_package_installed "$pkg" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    chord_log "all ${#} required Debian packages are installed"
    return 0
  fi
  for pkg in "${missing[@]}"; do [[ $pkg == *:arm64 ]] && need_arm64=1; done
  local add_arch=()
  if ((need_arm64)) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    add_arch=(dpkg --add-architecture arm64)
  fi
  local install=(apt-get install -y --no-install-recommends "${missing[@]}")
  chord_log "missing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    {
      echo "Install them as root, then run this script again:"
      if ((${#add_arch[@]})); then echo "  sudo ${add_arch[*]}"; fi
      echo "  sudo apt-get update"
      echo "  sudo ${install[*]}"
    } >&2
    return 1
  fi
  if ((${#add_arch[@]})); then "${add_arch[@]}"; fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive "${install[@]}"
  # Check again: a package name apt could not resolve must not pass silently.
  for pkg in "${missing[@]}"; do
    if ! chord_package_installed "$pkg"; then
      chord_log "package $pkg is still not installed after apt-get install"
      return 1
    fi
  done
}

# chord_now: seconds since the epoch with a fraction, for wall times.
chord_now() { date +%s.%N; }
# chord_elapsed START: seconds since START, one decimal.
chord_elapsed() { awk -v a="$1" -v b="$(chord_now)" 'BEGIN { printf "%.1f", b - a }'; }
