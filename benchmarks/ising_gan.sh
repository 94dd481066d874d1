#!/usr/bin/env bash
# The shipped Ising DCGAN, reproduced by one script: Wolff training/monitor/reference configurations at L = 32,
# training on 2 ranks (DDP, one core each) within the 30-minute budget, then generation, the full validation
# (`hpcgen validate ising`) and the provenance.
#
#   benchmarks/ising_gan.sh data        # simulate the three Wolff files into $WORK (~1.5 min on one core)
#   benchmarks/ising_gan.sh train       # one sitting: train until $SITTING_S seconds or $STEPS steps, checkpoint
#                                       # (run it again to continue; --resume auto), then copy the run to $DEST
#   benchmarks/ising_gan.sh validate    # generate 20000 configurations per temperature, validate against the
#                                       # held-out reference, write PROVENANCE.txt
#   benchmarks/ising_gan.sh all         # the three in order
#
# Defaults: WORK=.cache/ising15 STEPS=100000 BATCH=64 (per rank) SITTING_S=1800 (the issue's 30 min on 2 cores)
#           DEST=benchmarks/results/ising_gan
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/.cache/ising15}
STEPS=${STEPS:-100000}
BATCH=${BATCH:-64}
SITTING_S=${SITTING_S:-1800}
DEST=${DEST:-$ROOT/benchmarks/results/ising_gan}
TEMPS=1.5,1.75,2.0,2.1,2.2,Tc,2.35,2.5,2.75,3.0,3.5
export PATH="$ROOT/.venv/bin:$PATH" HPCGEN_NO_PROGRESS=${HPCGEN_NO_PROGRESS:-1} OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS -x NUMBA_NUM_THREADS -x HPCGEN_NO_PROGRESS)
mkdir -p "$WORK" "$DEST"
cd "$WORK"

data() {
    SIM=(hpcgen simulate ising --algorithm wolff --L 32 --temperatures "$TEMPS" --no-progress)
    [ -e train.h5 ] || "${SIM[@]}" --n 10000 --seed 1 --out train.h5
    [ -e monitor.h5 ] || "${SIM[@]}" --n 2000 --seed 2 --out monitor.h5
    [ -e reference.h5 ] || "${SIM[@]}" --n 40000 --seed 3 --out reference.h5
}

train() {
    set +e
    "${MPI[@]}" hpcgen train ising --data train.h5 --out run --engine ddp --batch-size "$BATCH" --steps "$STEPS" \
        --seed 11 --eval-data monitor.h5 --eval-every 250 --checkpoint-every 250 --resume auto \
        --time-limit-s "$SITTING_S"
    rc=$?
    set -e
    [ $rc = 0 ] || [ $rc = 75 ] || exit $rc  # 75: the sitting's time limit
    cp run/checkpoint.pt run/metrics.jsonl run/config.json "$DEST/"
    [ -e run/summary.json ] && cp run/summary.json "$DEST/"
    python -c 'import sys; from hpcgen.bench.shipped_gan import plot_training_curve as p; p(sys.argv[1], "ising")' "$DEST"
    echo "sitting done (exit $rc): $DEST"
}

validate() {
    rm -rf gen && mkdir gen
    hpcgen generate --checkpoint run --n 20000 --seed 404 --out gen/gan.h5 --no-progress  # = a reference half
    rm -rf validation
    hpcgen validate ising --ref reference.h5 --test gen/gan.h5 --out validation --classifier-seeds 2 \
        --classifier-resamples 5
    cp validation/metrics.json "$DEST/validation_metrics.json"
    cp validation/report.md validation/*.png "$DEST/"
    python -c 'import sys; from hpcgen.bench.shipped_gan import write_provenance as w; w(*sys.argv[1:])' \
        "$DEST" "$ROOT" "$BATCH"
}

case "${1:-all}" in
    data) data ;;
    train) train ;;
    validate) validate ;;
    all) data; train; validate ;;
    *) echo "usage: $0 data|train|validate|all" >&2; exit 2 ;;
esac
