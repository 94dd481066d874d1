#!/usr/bin/env bash
# Build Horovod 0.28.1 (its last release) from the PyPI sdist into the project venv, with PyTorch, MPI and Gloo.
# 0.28.1 does not compile against torch >= 2.1 as released (it asks for C++14; torch's headers need C++17):
# we patch CMAKE_CXX_STANDARD 14 -> 17 in its two CMakeLists.txt (shared/REFERENCE.md §5). About 8 min on 2 cores.
#   VENV=.venv  HOROVOD_VERSION=0.28.1  MAKEFLAGS/HOROVOD_BUILD_JOBS for parallelism
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
VERSION=${HOROVOD_VERSION:-0.28.1}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "[horovod] no venv at $VENV: run scripts/setup-venv.sh first" >&2; exit 2; }
if "$PY" -c "import horovod.torch" 2>/dev/null; then
  echo "[horovod] already installed: $("$PY" -c 'import horovod; print(horovod.__version__)')"; exit 0
fi
command -v cmake >/dev/null || { echo "[horovod] needs cmake 3.x (apt-get install cmake)" >&2; exit 2; }
command -v g++ >/dev/null || { echo "[horovod] needs a C++17 compiler (apt-get install g++)" >&2; exit 2; }
CMAKE_MAJOR=$(cmake --version | head -1 | sed -E 's/[^0-9]*([0-9]+).*/\1/')
if [ "$CMAKE_MAJOR" -ge 4 ]; then export CMAKE_POLICY_VERSION_MINIMUM=3.5; fi  # gloo's cmake_minimum_required

export PATH="$PWD/$VENV/bin:$PATH"   # the venv's mpicc/mpirun (PyPI Open MPI) or the site's MPI on a cluster
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "[horovod] fetching horovod==$VERSION sdist"
"$PY" -m pip download -q --no-binary :all: --no-deps --no-build-isolation "horovod==$VERSION" -d "$WORK"
tar -xzf "$WORK"/horovod-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/horovod-$VERSION"
for f in "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"; do
  grep -q 'set(CMAKE_CXX_STANDARD 14)' "$f" || { echo "[horovod] $f: expected 'set(CMAKE_CXX_STANDARD 14)' to patch" >&2; exit 1; }
  sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$f"
done
echo "[horovod] building (PyTorch + MPI + Gloo, no TensorFlow/MXNet); this takes several minutes"
"$PY" -m pip install -q "cloudpickle" "psutil" "pyyaml" "packaging"
HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_TENSORFLOW=1 \
HOROVOD_WITHOUT_MXNET=1 \
  "$PY" -m pip install --no-build-isolation --no-deps -v "$SRC" > "$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log" >&2; echo "[horovod] build failed (log above)" >&2; exit 1; }
"$PY" -c "import horovod.torch as hvd; print('[horovod] built', __import__('horovod').__version__, 'mpi', hvd.mpi_built(), 'gloo', hvd.gloo_built())"
