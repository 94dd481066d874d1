#!/usr/bin/env bash
# Quality run: train 3DGAN on GFlash showers (tuned to the cascade) on 2 CPU ranks with DDP for a fixed budget of
# steps, generate showers at the held-out energies, validate against held-out GFlash showers, and keep the small
# checkpoint with its provenance in benchmarks/results/quality_3dgan/.
#   WORK=/tmp/hpcgen-quality STEPS=500 BATCH=8 scripts... (defaults below)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/hpcgen-quality}
STEPS=${STEPS:-500}
BATCH=${BATCH:-8}
DEST=${DEST:-$ROOT/benchmarks/results/quality_3dgan}
export PATH="$ROOT/.venv/bin:$PATH" HPCGEN_NO_PROGRESS=${HPCGEN_NO_PROGRESS:-}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS=1)
mkdir -p "$WORK" "$DEST"
cd "$WORK"
SIM=(hpcgen simulate calo --generator gflash --gflash-tune cascade --overwrite)
"${MPI[@]}" "${SIM[@]}" --n 20000 --energy-gev 10:500 --seed 101 --out train.h5
"${MPI[@]}" "${SIM[@]}" --n 2000 --energy-gev 10,50,100,200,500 --seed 202 --out heldout.h5
start=$(date +%s)
"${MPI[@]}" hpcgen train calo --data train.h5 --engine ddp --batch-size "$BATCH" --steps "$STEPS" \
    --checkpoint-every 50 --seed 11 --out run
train_s=$(( $(date +%s) - start ))
"${MPI[@]}" hpcgen generate --checkpoint run --n 2000 --energy-gev 10,50,100,200,500 --seed 303 --out gan.h5 --overwrite
hpcgen validate calo --ref heldout.h5 --test gan.h5 --out validation
cp run/checkpoint.pt run/metrics.jsonl run/summary.json "$DEST/"
cp validation/metrics.json "$DEST/validation_metrics.json"
cp validation/report.md validation/*.png "$DEST/"
cat > "$DEST/PROVENANCE.txt" <<TXT
3DGAN checkpoint (hpcgen $(python -c 'import hpcgen; print(hpcgen.__version__)'), git $(git -C "$ROOT" rev-parse --short HEAD))
data:      20000 GFlash showers, --gflash-tune cascade, energies uniform 10-500 GeV, seed 101, 25x25x25 W/Si ECAL
held out:  2000 GFlash showers at 10,50,100,200,500 GeV, seed 202 (never seen in training)
training:  mpirun -n 2 hpcgen train calo --engine ddp --batch-size $BATCH --steps $STEPS --seed 11
           (2 ranks x 1 thread on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $train_s s wall)
generated: 2000 showers, seed 303, same energies as held out
validated: hpcgen validate calo --ref heldout.h5 --test gan.h5 (metrics in validation_metrics.json, report.md)
reproduce: WORK=$WORK STEPS=$STEPS BATCH=$BATCH benchmarks/quality_3dgan.sh
TXT
echo "quality run done: $DEST"
