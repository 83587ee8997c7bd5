#!/usr/bin/env bash
# The compiled path under AddressSanitizer and UndefinedBehaviorSanitizer, time-boxed.
#
#   bash fuzz/sanitize.sh [SECONDS] [MODE]      MODE: compiled (default), differential, or
#                                               columns (the export's, fuzz/columns.py)
#   SEED=1 START=500000 INPUTS=500000 CORPUS=no bash fuzz/sanitize.sh 7200
#                                               one range of inputs (run ranges side by side)
#
# Builds sockcap/_speedups.c with -fsanitize=address,undefined (every error fatal) into a
# temporary folder, and runs fuzz/differential.py against that build with libasan and
# libubsan preloaded into Python and PYTHONMALLOC=malloc (so the extension's PyMem
# allocations are ASan's, not pymalloc's arenas): the corpus first, then mutated inputs
# (fuzz/mutators.py) until SECONDS have passed. MODE "compiled" runs the compiled path
# alone on each input (fast: the sanitizers are the check); "differential" also runs
# the pure path and requires the same output. A sanitizer report aborts the run with a
# non-zero exit; the last line says how many inputs went through.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT="${1:-600}"
MODE="${2:-compiled}"
PY="${PYTHON:-.venv/bin/python}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
INC="$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SUFFIX="$($PY -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
# ALLOC=raw: the extension's own blocks (PyMem_*) come from malloc, so ASan checks each,
# while Python's objects stay in pymalloc's arenas (PYTHONMALLOC=pymalloc): about 2x the
# inputs a second of ALLOC=malloc (every Python object ASan's too, its allocator half the
# run). What raw does not check: a read past a small (< 512 bytes) Python bytes object
# that the engine is handed (the reader's buffers are larger: malloc's, checked).
defines=()
if [ "${ALLOC:-malloc}" = raw ]; then
  # (PyMem_Free stays: it frees Python's blocks too, e.g. PyOS_double_to_string's, and
  # pymalloc hands a block outside its arenas to free())
  defines=(-DPyMem_Malloc=PyMem_RawMalloc -DPyMem_Calloc=PyMem_RawCalloc
           -DPyMem_Realloc=PyMem_RawRealloc)
  export PYTHONMALLOC=pymalloc
fi
gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
  -fno-sanitize-recover=all -std=c11 -Wall "${defines[@]}" -I"$INC" sockcap/_speedups.c \
  -o "$OUT/_speedups$SUFFIX"
extra=()
[ "$MODE" = compiled ] && extra+=(--compiled-only)
# no stack kept for each allocation (malloc_context_size=0) and no fill of new blocks:
# the allocator's bookkeeping was most of the run; a report still names the bad access's
# own stack
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:malloc_context_size=0:max_malloc_fill_size=0}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC="${PYTHONMALLOC:-malloc}"
export SOCKCAP_SANITIZED_EXTENSION="$OUT/_speedups$SUFFIX"
[ "${CORPUS:-yes}" = yes ] && extra+=(--corpus)
if [ "$MODE" = columns ]; then
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
    "$PY" fuzz/columns.py --time-limit "$LIMIT" --inputs "${INPUTS:-1000000000}" \
    --start "${START:-0}" --seed "${SEED:-1}" ${COMPARE:+--compare} \
    $([ "${CORPUS:-yes}" = yes ] && echo --corpus)
  exit
fi
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  "$PY" fuzz/differential.py --time-limit "$LIMIT" --inputs "${INPUTS:-1000000000}" \
  --start "${START:-0}" --seed "${SEED:-1}" "${extra[@]}"
