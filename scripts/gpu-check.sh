#!/usr/bin/env bash
# The fused ops' GPU checks, for a machine with an NVIDIA GPU and a CUDA-enabled torch in $VENV (CPU CI cannot run
# them): rebuild the op library against that torch (CUDA kernels for the local GPU), run the kernel tests on the
# GPU (parity with the reference, gradcheck, opcheck, determinism, CUDA graphs), run them again under
# compute-sanitizer memcheck, and benchmark the ops on the GPU.
#
#   VENV=.venv scripts/gpu-check.sh [OUT_DIR]     results: OUT_DIR/{tests,memcheck}.log, OUT_DIR/fused_ops_gpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
OUT=${1:-gpu-check-out}
mkdir -p "$OUT"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to torch")'
cap=$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
echo "[gpu-check] $("$PY" -c 'import torch; print(torch.cuda.get_device_name(), "torch", torch.__version__)'), sm_${cap/./}"
TORCH_CUDA_ARCH_LIST=$cap BUILD_DIR=build/ops-gpu VENV=$VENV scripts/build-ops.sh
"$PY" -c 'from hpcgen.ops import library; import sys; sys.exit(0 if library.has_kernels("cuda") else "CUDA kernels not built: " + library.status())'
HPCGEN_REQUIRE_OPS=1 "$PY" -m pytest -q tests/test_ops_kernels.py 2>&1 | tee "$OUT/tests.log"
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
# memcheck on the CUDA cases only (host-side tests would only slow it down); any error fails the script
HPCGEN_REQUIRE_OPS=1 "$sanitizer" --tool memcheck --error-exitcode 99 \
  "$PY" -m pytest -q -x tests/test_ops_kernels.py -k "cuda" 2>&1 | tee "$OUT/memcheck.log"
"$PY" benchmarks/bench_fused_ops.py --device cuda --out "$OUT/fused_ops_gpu.json"
