#!/usr/bin/env bash
# scripts/demo.sh: install what is missing, build the project (GCC, Release, build/gcc) and run the demos:
#   1. examples/00_quantize_layer.cpp quantizes one layer with a per-channel mixed strategy, runs it
#      through the packed kernels and prints its size and error against fp32 (a second);
#   2. `chord demo`: CHORD end to end on MovieLens-100K when ../shared/data/ml-100k/u.data sits next to
#      the repository (else on generated data): trains a SASRec and the cloud's hypernetworks (cached in
#      build/demo), personalizes each user's model per device class (2, 3, 4, 6 bits) through the real
#      device <-> cloud messages, and prints one table against fp32, uniform PTQ and a shared mixed
#      strategy (README.md, "How long they take": about 4 minutes on 2 shared cores the first time
#      plus the build, seconds with the cache).
#
# Usage: scripts/demo.sh      (from any directory; CHORD_BUILD_ROOT, CHORD_JOBS as in test.sh)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD_DIR=${CHORD_BUILD_ROOT:-$CHORD_ROOT/build}/gcc
JOBS=${CHORD_JOBS:-2}
ML100K="$CHORD_ROOT/../shared/data/ml-100k/u.data"

chord_ensure_packages "${CHORD_BUILD_PACKAGES[@]}"

chord_log "configure + build in $BUILD_DIR"
cmake -S "$CHORD_ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++
cmake --build "$BUILD_DIR" -j "$JOBS" --target quantize_layer chord_cli

chord_log "examples/00_quantize_layer.cpp"
"$BUILD_DIR/examples/quantize_layer"

# The work directory holds the cached model and hypernetworks (keyed by the data's content).
cd "$CHORD_ROOT"
start=$(chord_now)
if [[ -f $ML100K ]]; then
  chord_log "chord demo on MovieLens-100K ($ML100K)"
  "$BUILD_DIR/examples/chord" demo --data "$ML100K" --work-dir build/demo
else
  chord_log "chord demo on generated data ($ML100K not found)"
  "$BUILD_DIR/examples/chord" demo --work-dir build/demo
fi
chord_log "chord demo: $(chord_elapsed "$start") s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
