#!/usr/bin/env bash
# scripts/bench.sh: build and run the benchmark suite, then write the report.
#
#   scripts/bench.sh                 full run -> docs/benchmarks.md, docs/img/*.png, docs/benchmarks.json
#                                    (the JSON reduced to what the report reads; the whole one stays in
#                                    build/bench/results.json)
#   scripts/bench.sh 'gemv/w4a8'     only rows matching the regex (plus the peak probe), reported into
#                                    build/bench/report/ so that the committed document stays a full run
#
# Environment: CHORD_BENCH_REPETITIONS (default 3: the report uses the median), CHORD_BENCH_MIN_TIME
# (seconds per repetition, default 0.1), CHORD_JOBS (build jobs, default 2). Single thread throughout.
# A full run takes about 10-15 minutes on one core of a quiet machine; a shared machine makes every
# number worse (see "Median real / CPU time" in the report).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

filter=${1:-}
repetitions=${CHORD_BENCH_REPETITIONS:-3}
min_time=${CHORD_BENCH_MIN_TIME:-0.1}
build="$CHORD_ROOT/build/bench"

# The report runs on Debian's python3 (its matplotlib), not on whatever python3 is first on PATH.
chord_ensure_packages "${CHORD_BUILD_PACKAGES[@]}" "${CHORD_BENCH_PACKAGES[@]}" python3-matplotlib

chord_log "configuring a Release build in $build"
cmake -S "$CHORD_ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHORD_BUILD_BENCH=ON \
      -DCHORD_BUILD_TESTS=OFF -DCHORD_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target chord_bench -j "${CHORD_JOBS:-2}"

if [[ -n $filter ]]; then
  # Keep the peak rows: every "% of peak" in the report needs them.
  regex="^peak/|$filter"
  out_dir="$build/report"
  doc="$out_dir/benchmarks.md"
  img="$out_dir/img"
  compact="$out_dir/benchmarks.json"
  mkdir -p "$out_dir"
  # Start the filtered report from the committed introduction.
  if [[ ! -f $doc && -f $CHORD_ROOT/docs/benchmarks.md ]]; then cp "$CHORD_ROOT/docs/benchmarks.md" "$doc"; fi
else
  regex="."
  doc="$CHORD_ROOT/docs/benchmarks.md"
  img="$CHORD_ROOT/docs/img"
  compact="$CHORD_ROOT/docs/benchmarks.json"
fi
json="$build/results.json"

# Which source was measured: the commit, and whether the working tree differed from it.
commit=$(git -C "$CHORD_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$CHORD_ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo yes || echo no)

chord_log "running chord_bench (filter '$regex', $repetitions repetitions x ${min_time}s); load: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(chord_now)
# Sample the load while the suite runs: the report says how busy the machine was.
load_log="$build/load.log"
: >"$load_log"
(while sleep 10; do cut -d' ' -f1 /proc/loadavg; done) >>"$load_log" &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
"$build/bench/chord_bench" --benchmark_filter="$regex" --benchmark_repetitions="$repetitions" \
    --benchmark_min_time="$min_time" --benchmark_report_aggregates_only=true \
    --benchmark_out="$json" --benchmark_out_format=json \
    --benchmark_context="git_commit=$commit,git_tree_modified=$dirty"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$sampler" 2>/dev/null || true
load_during=$(awk '{ s += $1; if ($1 > m) m = $1; n++ }
                   END { if (n) printf "1-min load average sampled every 10 s: mean %.1f, max %.1f", s / n, m }' "$load_log")
chord_log "chord_bench took $(chord_elapsed "$start") s; load at the end: $load_after"

/usr/bin/python3 "$CHORD_ROOT/scripts/bench_report.py" "$json" --doc "$doc" --img "$img" \
    --load-after "$load_after" --load-during "$load_during" --compact-json "$compact" --json-name "$(basename "$compact")"
chord_log "report: $doc"
