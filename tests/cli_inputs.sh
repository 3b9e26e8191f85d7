#!/bin/bash
# tests/cli_inputs.sh CHORD CRAFTED_INPUTS: one run of the `chord` program per class of bad input
# (crafted by tests/crafted_inputs.cpp). Each must exit with the expected code (1: bad input, 2: usage)
# and a message naming the file and the field, within 1 s and 64 MB above the program's baseline.
set -u
chord=$1
crafted=$2
dir=$(mktemp -d /tmp/chord-cli-inputs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$crafted" "$dir" || { echo "FAIL: crafted_inputs"; exit 1; }
mkfifo "$dir/fifo"
failures=0

# The baseline: the largest resident size of a run that fails at once (KB).
/usr/bin/time -f %M -o "$dir/rss" "$chord" eval --model "$dir/missing.safetensors" >/dev/null 2>&1
baseline=$(tail -1 "$dir/rss")

# expect CODE "WORD1|WORD2|..." chord args...: every word must be in the output
expect() {
  local code=$1 words=$2
  shift 2
  local start end ms rss
  start=$(date +%s%N)
  timeout 10 /usr/bin/time -f %M -o "$dir/rss" "$chord" "$@" >"$dir/out" 2>&1
  local got=$?
  end=$(date +%s%N)
  ms=$(((end - start) / 1000000))
  rss=$(tail -1 "$dir/rss")
  local ok=1
  [ "$got" -eq "$code" ] || ok=0
  IFS='|' read -ra list <<<"$words"
  for w in "${list[@]}"; do grep -qF -- "$w" "$dir/out" || ok=0; done
  [ "$ms" -le 1000 ] || ok=0
  [ $((rss - baseline)) -le 65536 ] || ok=0
  if [ "$ok" -eq 1 ]; then
    echo "ok   exit $got, ${ms} ms, +$((rss - baseline)) KB: chord $*"
  else
    echo "FAIL exit $got (want $code), ${ms} ms, +$((rss - baseline)) KB: chord $*"
    sed 's/^/       /' "$dir/out" | tail -5
    failures=$((failures + 1))
  fi
}

d=$dir
# limits checked before allocation
expect 1 "items.safetensors|sasrec.num_items|InputLimits::max_items" eval --model $d/items.safetensors --data $d/a.txt
expect 1 "blocks.safetensors|sasrec.blocks|InputLimits::max_blocks" eval --model $d/blocks.safetensors --data $d/a.txt
expect 1 "caser_overflow.safetensors|caser.d" eval --model $d/caser_overflow.safetensors --data $d/a.txt
expect 1 "hyper_huge.safetensors|chord.hidden|max_hypernet_width" strategy --model $d/bound.safetensors --hyper $d/hyper_huge.safetensors --profile $d/profile_huge.chrp --out $d/s.chrs
# non-finite and overflowing values
expect 1 "nan.safetensors|blocks.0.attn.q.weight|value 3" eval --model $d/nan.safetensors --data $d/a.txt
expect 1 "profile_huge.chrp|profile value 2|max_magnitude" strategy --model $d/bound.safetensors --hyper $d/hyper.safetensors --profile $d/profile_huge.chrp --out $d/s.chrs
# malformed metadata numbers
expect 1 "space.safetensors|sasrec.d|not an integer" eval --model $d/space.safetensors --data $d/a.txt
expect 1 "data.synthetic_seed|abc" eval --model $d/seed.safetensors
# inputs that are not regular files, outputs that are not either
expect 1 "/dev/zero|not a regular file" eval --model $d/bound.safetensors --data /dev/zero
expect 1 "fifo|not a regular file" eval --model $d/bound.safetensors --data $d/fifo
expect 1 "/dev/null|not a regular file" train --model sasrec --data $d/a.txt --out /dev/null
expect 1 "nowhere|does not exist" train --model sasrec --data $d/a.txt --out $d/nowhere/m.safetensors
# usage errors
expect 2 "--weight-decay|not a finite number" train --model sasrec --weight-decay nan
# models bound to their data
expect 1 "bound.safetensors|b.txt|--allow-other-data" eval --model $d/bound.safetensors --data $d/b.txt
expect 0 "note: model|unknown" eval --model $d/unknown.safetensors --data $d/a.txt --protocol sampled --bits 8
expect 0 "user 30" profile --model $d/bound.safetensors --data $d/a.txt --user 30 --out $d/p.chrp
expect 1 "--user 31|a.txt" profile --model $d/bound.safetensors --data $d/a.txt --user 31 --out $d/p.chrp
# sparse ids: a 30,000,000 item id costs three embedding rows, not 30 million
expect 0 "120 items" train --model sasrec --data $d/sparse.txt --epochs 1 --d 4 --out $d/sparse.safetensors

echo "cli_inputs: $failures failure(s)"
[ "$failures" -eq 0 ]
