# Sourced by benchmarks/{calo,cosmo,ising}_gan.sh, the scripts that reproduce a shipped GAN: what they share.
# The sourcing script sets ROOT, WORK and DEST first and defines data, train and validate.
export PATH="$ROOT/.venv/bin:$PATH" HPCGEN_NO_PROGRESS=${HPCGEN_NO_PROGRESS:-1} OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS -x NUMBA_NUM_THREADS -x HPCGEN_NO_PROGRESS)
mkdir -p "$WORK" "$DEST"
cd "$WORK"

# train_sitting DOMAIN RUN ARGS...: one resumable sitting of `hpcgen train DOMAIN` on 2 ranks (DDP) into RUN, then
# its checkpoint, metrics and monitor curve copied to $DEST. Exit 75 is the sitting's time limit: run it again.
train_sitting() {
    local domain=$1 run=$2 rc
    shift 2
    set +e
    "${MPI[@]}" hpcgen train "$domain" --out "$run" --engine ddp --seed 11 --resume auto "$@"
    rc=$?
    set -e
    [ $rc = 0 ] || [ $rc = 75 ] || exit $rc
    cp "$run"/checkpoint.pt "$run"/metrics.jsonl "$run"/config.json "$DEST/"
    [ -e "$run"/summary.json ] && cp "$run"/summary.json "$DEST/"
    python -c 'import sys; from hpcgen.bench.shipped_gan import plot_training_curve as p; p(*sys.argv[1:])' \
        "$DEST" "$domain"
    echo "sitting done (exit $rc): $DEST"
}

# publish_validation DIR BATCH: the validation report of DIR and PROVENANCE.txt (batch BATCH per rank) into $DEST
publish_validation() {
    cp "$1"/metrics.json "$DEST/validation_metrics.json"
    cp "$1"/report.md "$1"/*.png "$DEST/"
    python -c 'import sys; from hpcgen.bench.shipped_gan import write_provenance as w; w(*sys.argv[1:])' \
        "$DEST" "$ROOT" "$2"
}

dispatch() {
    case "${1:-all}" in
        data) data ;;
        train) train ;;
        validate) validate ;;
        all) data; train; validate ;;
        *) echo "usage: $0 data|train|validate|all" >&2; exit 2 ;;
    esac
}
