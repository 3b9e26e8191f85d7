#!/bin/bash
# tests/kill_saves.sh SAVE_LOOP [KILLS]: SIGKILLs a process that saves a model over and over, KILLS
# times (default 20) at random moments, and checks after each kill that the target still loads (the
# old or a complete new file, never a torn one); then one more successful save must leave no
# "<target>.chord-tmp.*" temporary behind (io/atomic_file.hpp removes those of dead processes).
set -u
save_loop=$1
kills=${2:-20}
dir=$(mktemp -d /tmp/chord-kill-saves.XXXXXX)
trap 'rm -rf "$dir"' EXIT
target=$dir/model.safetensors
"$save_loop" once "$target" || { echo "FAIL: the first save failed"; exit 1; }
RANDOM=12  # reproducible moments
loadable=0 left_after_kill=0 left_after_save=0
for ((i = 1; i <= kills; i++)); do
  "$save_loop" loop "$target" &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 400 + 20)))"
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null
  temps=$(find "$dir" -name 'model.safetensors.chord-tmp.*' | wc -l)
  left_after_kill=$((left_after_kill + temps))
  if "$save_loop" check "$target"; then loadable=$((loadable + 1)); else echo "FAIL: kill $i: the target does not load"; fi
  "$save_loop" once "$target"
  temps=$(find "$dir" -name 'model.safetensors.chord-tmp.*' | wc -l)
  left_after_save=$((left_after_save + temps))
  [ "$temps" -eq 0 ] || echo "FAIL: kill $i: $temps temporaries left after the next successful save"
done
echo "kill_saves: $kills SIGKILLs; target loadable after $loadable; temporaries left by the kills: $left_after_kill; left after the next save: $left_after_save"
[ "$loadable" -eq "$kills" ] && [ "$left_after_save" -eq 0 ]
