#!/usr/bin/env bash
# Build hpcgen's fused-op library (C++ CPU kernels; CUDA too when the venv's torch has CUDA and nvcc exists) with
# CMake against the venv's own torch, into hpcgen/ops/_hpcgen_ops.so.
#
#   VENV=.venv       the venv whose torch to build against
#   BUILD_DIR        CMake build tree (default build/ops)
#
# Without cmake or a C++ compiler this prints one warning and exits 0: hpcgen then runs its pure-torch reference
# kernels (`hpcgen info` says which implementation is live). A compiler that is present but fails is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
BUILD_DIR=${BUILD_DIR:-build/ops}

missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v "${CXX:-c++}" >/dev/null || missing+=("a C++ compiler (${CXX:-c++})")
if [ ${#missing[@]} -gt 0 ]; then
  what=${missing[0]}
  [ ${#missing[@]} -gt 1 ] && what="$what and ${missing[1]}"
  echo "[ops] WARNING: $what not found; skipping the fused-op build, hpcgen will use its pure-torch reference kernels" >&2
  exit 0
fi

mkdir -p "$BUILD_DIR"
prefix=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
echo "[ops] building the fused-op library against torch $("$PY" -c 'import torch; print(torch.__version__)') in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
  -DPython_EXECUTABLE="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" >"$BUILD_DIR.configure.log" 2>&1 \
  || { cat "$BUILD_DIR.configure.log" >&2; echo "[ops] CMake configuration failed (log above)" >&2; exit 1; }
grep -E "^-- hpcgen:|WARNING" "$BUILD_DIR.configure.log" | sed 's/^/[ops] /' || true
cmake --build "$BUILD_DIR" -j "$(nproc 2>/dev/null || echo 2)"
"$PY" -c 'from hpcgen import ops; print("[ops] live implementation:", ops.status())'
