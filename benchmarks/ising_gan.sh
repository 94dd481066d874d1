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
source "$ROOT/benchmarks/shipped_gan_lib.sh"

data() {
    SIM=(hpcgen simulate ising --algorithm wolff --L 32 --temperatures "$TEMPS" --no-progress)
    [ -e train.h5 ] || "${SIM[@]}" --n 10000 --seed 1 --out train.h5
    [ -e monitor.h5 ] || "${SIM[@]}" --n 2000 --seed 2 --out monitor.h5
    [ -e reference.h5 ] || "${SIM[@]}" --n 40000 --seed 3 --out reference.h5
}

train() {
    train_sitting ising run --data train.h5 --batch-size "$BATCH" --steps "$STEPS" --eval-data monitor.h5 \
        --eval-every 250 --checkpoint-every 250 --time-limit-s "$SITTING_S"
}

validate() {
    rm -rf gen && mkdir gen
    hpcgen generate --checkpoint run --n 20000 --seed 404 --out gen/gan.h5 --no-progress  # = a reference half
    rm -rf validation
    hpcgen validate ising --ref reference.h5 --test gen/gan.h5 --out validation --classifier-seeds 2 \
        --classifier-resamples 5
    publish_validation validation "$BATCH"
}

dispatch "$@"
