#!/bin/sh
# examples/chord/help_examples_test.sh: the `help_examples` test: every example line of every
# `chord <command> --help` runs as written, in the commands' order, in a fresh folder (an example may
# use a file an earlier one wrote). One substitution: a `--data <path>` naming a real dataset
# (../shared/data/...), which CI may not have and which would take minutes, is dropped, so the
# example runs on the synthetic data. A comment after the command ("   (...)" or "# ...") is not run.
#
# Usage: help_examples_test.sh <chord binary> <work folder> [command...]
set -eu
chord=$1
dir=$2
shift 2
commands=${*:-"train eval hypertrain profile strategy infer info experiment demo"}
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
count=0
for command in $commands; do
  # the lines after "Examples:" that start with two spaces and contain "chord "
  "$chord" "$command" --help | awk '/^Examples:/ { on = 1; next } on && /^  / && /chord / { print; next } on { on = 0 }' \
    > "examples-$command.txt"
  if [ ! -s "examples-$command.txt" ]; then
    echo "help_examples: 'chord $command --help' has no example" >&2
    exit 1
  fi
  while IFS= read -r line; do
    run=$(printf '%s\n' "$line" | sed -e 's/^ *//' -e 's/   *(.*)$//' -e 's/ *#.*$//' \
                                     -e 's| --data [^ ]*shared/data/[^ ]*||' -e "s|\\bchord |$chord |")
    count=$((count + 1))
    echo "help_examples: [$command] $line"
    echo "               runs: $run"
    if ! sh -c "$run" > "example-$count.log" 2>&1; then
      echo "help_examples: FAILED: '$line' (chord $command --help); output:" >&2
      cat "example-$count.log" >&2
      exit 1
    fi
  done < "examples-$command.txt"
done
echo "help_examples: $count examples ran"
