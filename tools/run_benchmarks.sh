#!/usr/bin/env bash
# Runs every tools/bench_*.py in turn with the project's virtualenv, passing along any arguments (use only
# options every benchmark accepts). Keeps going after a failure; exits non-zero if any benchmark failed.
# PYTHON overrides the interpreter (default .venv/bin/python, else python3).
set -u
cd "$(dirname "$0")/.."
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
shopt -s nullglob
benches=(tools/bench_*.py)
if [ ${#benches[@]} -eq 0 ]; then
  echo "run_benchmarks: no tools/bench_*.py found"
  exit 0
fi
failed=()
for bench in "${benches[@]}"; do
  echo "=== $bench"
  start=$(date +%s)
  if "$python" "$bench" "$@"; then
    echo "=== $bench ok ($(( $(date +%s) - start )) s)"
  else
    echo "=== $bench FAILED (exit $?)"
    failed+=("$bench")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_benchmarks: ${#failed[@]} of ${#benches[@]} failed: ${failed[*]}"
  exit 1
fi
echo "run_benchmarks: all ${#benches[@]} ran"
