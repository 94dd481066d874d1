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
export PATH="$ROOT/.venv/bin:$PATH" HPCGEN_NO_PROGRESS=${HPCGEN_NO_PROGRESS:-1}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x HPCGEN_NO_PROGRESS)
mkdir -p "$WORK" "$DEST"
cd "$WORK"

data() {
    SIM=(hpcgen simulate cosmo --generator lognormal --pixels "$PIXELS")
    [ -e train.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 8000 --seed 101 --out train.h5
    [ -e monitor.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 512 --seed 303 --out monitor.h5
    [ -e heldout.h5 ] || "${MPI[@]}" "${SIM[@]}" --n 2000 --seed 202 --out heldout.h5
}

train() {
    set +e
    "${MPI[@]}" hpcgen train cosmo --data train.h5 --out "$RUN" --engine ddp --batch-size "$BATCH" --steps "$STEPS" \
        --seed 11 "${FLAGS[@]}" --eval-data monitor.h5 --eval-every 250 --checkpoint-every 250 --resume auto \
        --time-limit-s "$SITTING_S"
    rc=$?
    set -e
    [ $rc = 0 ] || [ $rc = 75 ] || exit $rc  # 75: the sitting's time limit; run `train` again to continue
    cp "$RUN"/checkpoint.pt "$RUN"/metrics.jsonl "$RUN"/config.json "$DEST/"
    [ -e "$RUN"/summary.json ] && cp "$RUN"/summary.json "$DEST/"
    python -c 'import sys; from hpcgen.bench.shipped_gan import plot_training_curve as p; p(sys.argv[1], "cosmo")' "$DEST"
    echo "sitting done (exit $rc): $DEST"
}

validate() {
    rm -rf "gen$SUFFIX" && mkdir "gen$SUFFIX"
    "${MPI[@]}" hpcgen generate --checkpoint "$RUN" --n 2000 --seed 404 --out "gen$SUFFIX/gan.h5"
    rm -rf "validation$SUFFIX"
    hpcgen validate cosmo --ref heldout.h5 --test "gen$SUFFIX/gan.h5" --out "validation$SUFFIX"
    cp "validation$SUFFIX/metrics.json" "$DEST/validation_metrics.json"
    cp "validation$SUFFIX"/report.md "validation$SUFFIX"/*.png "$DEST/"
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
