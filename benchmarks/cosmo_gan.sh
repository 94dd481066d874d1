#!/usr/bin/env bash
# The shipped CosmoGAN, reproduced by one script: lognormal training/monitor/reference maps, training on 2 ranks
# (DDP, one core each) in resumable sittings, then generation, the full validation and the provenance.
#
#   benchmarks/cosmo_gan.sh data        # simulate the three lognormal files into $WORK (a minute)
#   benchmarks/cosmo_gan.sh train       # one sitting: train until $SITTING_S seconds or $STEPS steps, checkpoint
#                                       # (run it again to continue; --resume auto), then copy the run to $DEST
#   benchmarks/cosmo_gan.sh validate    # generate 2000 maps, `hpcgen validate cosmo` against the held-out
#                                       # reference, write PROVENANCE.txt
#   benchmarks/cosmo_gan.sh all         # the three in order (one long sitting)
#
# Defaults: WORK=.cache/cosmo14 STEPS=20000 BATCH=16 (per rank) SITTING_S=0 (no limit) PIXELS=128
#           SPECTRAL=1 (--spectral-loss; 0 trains without it, the ablation's other arm, into $WORK/run_nospec)
#           DEST=benchmarks/results/cosmo_gan (cosmo_gan_nospec without the spectral loss)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-$ROOT/.cache/cosmo14}
STEPS=${STEPS:-20000}
BATCH=${BATCH:-16}
SITTING_S=${SITTING_S:-0}
PIXELS=${PIXELS:-128}
SPECTRAL=${SPECTRAL:-1}
if [ "$SPECTRAL" = 1 ]; then RUN=run; FLAGS=(--spectral-loss); SUFFIX=""; else RUN=run_nospec; FLAGS=(); SUFFIX=_nospec; fi
DEST=${DEST:-$ROOT/benchmarks/results/cosmo_gan$SUFFIX}
source "$ROOT/benchmarks/shipped_gan_lib.sh"

data() {
    SIM=(hpcgen simulate cosmo --generator lognormal --pixels "$PIXELS")
    [ -e train.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 8000 --seed 101 --out train.h5
    [ -e monitor.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 512 --seed 303 --out monitor.h5
    [ -e heldout.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 2000 --seed 202 --out heldout.h5
}

train() {
    train_sitting cosmo "$RUN" --data train.h5 --batch-size "$BATCH" --steps "$STEPS" "${FLAGS[@]}" \
        --eval-data monitor.h5 --eval-every 250 --checkpoint-every 250 --time-limit-s "$SITTING_S"
}

validate() {
    rm -rf "gen$SUFFIX" && mkdir "gen$SUFFIX"
    "${MPI[@]}" hpcgen generate --checkpoint "$RUN" --n 2000 --seed 404 --out "gen$SUFFIX/gan.h5"
    rm -rf "validation$SUFFIX"
    hpcgen validate cosmo --ref heldout.h5 --test "gen$SUFFIX/gan.h5" --out "validation$SUFFIX"
    publish_validation "validation$SUFFIX" "$BATCH"
}

dispatch "$@"
