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
source "$ROOT/benchmarks/shipped_gan_lib.sh"

data() {
    SIM=(hpcgen simulate calo --generator cascade)
    [ -e train.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 30000 --energy-gev log:10:500 --seed 101 --out train.h5
    [ -e monitor.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 1000 --energy-gev 10,50,100,200,500 --seed 303 --out monitor.h5
    [ -e heldout.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 5000 --energy-gev 10,50,100,200,500 --seed 202 --out heldout.h5
}

train() {
    train_sitting calo run --data train.h5 --batch-size "$BATCH" --steps "$STEPS" --eval-data monitor.h5 \
        --eval-every 500 --checkpoint-every 250 --time-limit-s "$SITTING_S"
}

validate() {
    rm -rf gen && mkdir gen
    "${MPI[@]}" hpcgen generate --checkpoint run --n 5000 --energy-gev 10,50,100,200,500 --seed 404 --out gen/gan.h5
    rm -rf validation
    hpcgen validate calo --ref heldout.h5 --test gen/gan.h5 --out validation --per-energy-classifier
    publish_validation validation "$BATCH"
}

dispatch "$@"
