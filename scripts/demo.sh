#!/usr/bin/env bash
# The main job: `hpcgen demo` on NP MPI ranks (default 2) — simulate with the cascade and GFlash, fine-tune 3DGAN
# data-parallel, generate, validate, measure throughput at fidelity, and write one report (hpcgen/bench/demo.py).
#   NP=2 OUT=demo-out TINY=1 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${OUT:-demo-out}
NP=${NP:-2}
export PATH="$PWD/$VENV/bin:$PATH" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HPCGEN_NO_PROGRESS=1
if [ "$(id -u)" = "0" ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
extra=()
[ "${TINY:-0}" = "1" ] && extra=(--tiny)
start=$(date +%s)
mpirun -n "$NP" --oversubscribe -x OMP_NUM_THREADS -x HPCGEN_NO_PROGRESS hpcgen demo --out "$OUT" "${extra[@]}"
echo "== make demo: $(( $(date +%s) - start )) s wall"
