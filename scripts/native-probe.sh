#!/bin/sh
# Compiles scripts/native-probe.c with the system C compiler (CC, else cc; -O3 -march=native, OpenMP) into a
# temporary folder and runs it: one JSON line of GB/s per kernel and thread count (see the .c file).
#   sh scripts/native-probe.sh [MB per array] [reps]
# Exit 3 without a C compiler, 4 when the compile fails (the compiler's message on stderr).
set -u
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "native-probe: no C compiler ($cc not found)" >&2
  exit 3
fi
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
if ! "$cc" -O3 -march=native -fopenmp "$(dirname "$0")/native-probe.c" -o "$dir/native-probe"; then
  echo "native-probe: $cc -O3 -march=native -fopenmp failed" >&2
  exit 4
fi
"$dir/native-probe" "$@"
