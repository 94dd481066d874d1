#!/usr/bin/env bash
# The shipped calorimeter GAN, reproduced by one script: cascade training/monitor/reference data, training on
# 2 ranks (DDP, one core each) in resumable sittings, then generation, the full validation and the provenance.
#
#   benchmarks/calo_gan.sh data        # simulate the three cascade files into $WORK (~45 min on 2 cores)
#   benchmarks/calo_gan.sh train       # one sitting: train until $SITTING_S seconds or $STEPS steps, checkpoint
#                                      # (run it again to continue; --resume auto), then copy the run to $DEST
#   benchmarks/calo_gan.sh validate    # generate 1000 showers at each of 10..500 GeV, `hpcgen validate calo`
#                                      # against the held-out reference, write PROVENANCE.txt
#   benchmarks/calo_gan.sh all         # the three in order (one long sitting)
#
# Defaults: WORK=.cache/gan14 STEPS=40000 BATCH=32 (per rank) SITTING_S=0 (no limit) DEST=benchmarks/results/calo_gan
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/.cache/gan14}
STEPS=${STEPS:-40000}
BATCH=${BATCH:-32}
SITTING_S=${SITTING_S:-0}
DEST=${DEST:-$ROOT/benchmarks/results/calo_gan}
export PATH="$ROOT/.venv/bin:$PATH" HPCGEN_NO_PROGRESS=${HPCGEN_NO_PROGRESS:-1}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x HPCGEN_NO_PROGRESS)
mkdir -p "$WORK" "$DEST"
cd "$WORK"

data() {
    SIM=(hpcgen simulate calo --generator cascade)
    [ -e train.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 30000 --energy-gev log:10:500 --seed 101 --out train.h5
    [ -e monitor.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 1000 --energy-gev 10,50,100,200,500 --seed 303 --out monitor.h5
    [ -e heldout.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 5000 --energy-gev 10,50,100,200,500 --seed 202 --out heldout.h5
}

train() {
    set +e
    "${MPI[@]}" hpcgen train calo --data train.h5 --out run --engine ddp --batch-size "$BATCH" --steps "$STEPS" \
        --seed 11 --eval-data monitor.h5 --eval-every 500 --checkpoint-every 250 --resume auto \
        --time-limit-s "$SITTING_S"
    rc=$?
    set -e
    [ $rc = 0 ] || [ $rc = 75 ] || exit $rc  # 75: the sitting's time limit; run `train` again to continue
    cp run/checkpoint.pt run/metrics.jsonl run/config.json "$DEST/"
    [ -e run/summary.json ] && cp run/summary.json "$DEST/"
    python - "$DEST" <<'PY'
import sys
from hpcgen.bench.shipped_gan import plot_training_curve
plot_training_curve(sys.argv[1])
PY
    echo "sitting done (exit $rc): $DEST"
}

validate() {
    rm -rf gen && mkdir gen
    "${MPI[@]}" hpcgen generate --checkpoint run --n 5000 --energy-gev 10,50,100,200,500 --seed 404 --out gen/gan.h5
    rm -rf validation
    hpcgen validate calo --ref heldout.h5 --test gen/gan.h5 --out validation --per-energy-classifier
    cp validation/metrics.json "$DEST/validation_metrics.json"
    cp validation/report.md validation/*.png "$DEST/"
    python - "$DEST" "$ROOT" "$BATCH" <<'PY'
import sys
from hpcgen.bench.shipped_gan import write_provenance
write_provenance(*sys.argv[1:])
PY
}

case "${1:-all}" in
    data) data ;;
    train) train ;;
    validate) validate ;;
    all) data; train; validate ;;
    *) echo "usage: $0 data|train|validate|all" >&2; exit 2 ;;
esac
