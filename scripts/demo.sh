#!/usr/bin/env bash
# scripts/demo.sh: install what is missing, build the project (GCC, Release, build/gcc) and run the
# demo: examples/00_quantize_layer.cpp quantizes one layer with a per-channel mixed strategy, runs it
# through the packed kernels and prints its size and error against fp32.
#
# Usage: scripts/demo.sh      (from any directory; CHORD_BUILD_ROOT, CHORD_JOBS as in test.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR=${CHORD_BUILD_ROOT:-$CHORD_ROOT/build}/gcc
JOBS=${CHORD_JOBS:-2}

chord_ensure_packages "${CHORD_BUILD_PACKAGES[@]}"

chord_log "configure + build in $BUILD_DIR"
cmake -S "$CHORD_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++
cmake --build "$BUILD_DIR" -j "$JOBS" --target quantize_layer

chord_log "examples/00_quantize_layer.cpp"
"$BUILD_DIR/examples/quantize_layer"
