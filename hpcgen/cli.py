"""The command line: the only place that parses argv. Each verb is a thin call into hpcgen.jobs.

Bad input ends with one line on stderr naming the flag/file and what is allowed, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hpcgen import __version__
from hpcgen.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        raise UserError(f"{self.prog}: {message}")


def _add_simulate(sub) -> None:
    p = sub.add_parser("simulate", help="run a Monte Carlo generator over MPI ranks into HDF5")
    dom = p.add_subparsers(dest="domain", required=True, parser_class=_Parser)
    c = dom.add_parser("calo", help="calorimeter showers (hpcgen.calo/1)")
    c.add_argument("--generator", required=True, help="cascade | gflash")
    c.add_argument("--n", type=int, required=True, help="total number of showers over all ranks")
    c.add_argument("--energy-gev", default="10:500",
                   help="primary energy: A:B uniform, log:A:B log-uniform, or E1,E2,... (default 10:500)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, required=True, help="output file NAME.h5 (shards NAME.r<k>.h5 beside it)")
    c.add_argument("--chunk", type=int, default=0, help="showers per chunk and rank (0 = generator default)")
    c.add_argument("--impact-jitter-mm", type=float, default=0.0, help="Gaussian σ of the impact point (mm)")
    c.add_argument("--gflash-tune", default=None,
                   help="GFlash parameter set: literature (paper values, default) or cascade (tuned to the detailed cascade)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing output and its shards")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_validate(sub) -> None:
    p = sub.add_parser("validate", help="compare a test data set with a reference: report.md, plots, metrics.json")
    dom = p.add_subparsers(dest="domain", required=True, parser_class=_Parser)
    c = dom.add_parser("calo", help="calorimeter showers")
    c.add_argument("--ref", type=Path, required=True)
    c.add_argument("--test", type=Path, required=True)
    c.add_argument("--out", type=Path, required=True, help="output directory (created)")
    c.add_argument("--max-showers", type=int, default=0, help="use at most this many showers of each file (0 = all)")


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="convert a data set to another community layout")
    fmt = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    c = fmt.add_parser("calochallenge", help="CaloChallenge layout: incident_energies (N,1) MeV, showers (N,voxels) MeV")
    c.add_argument("src", type=Path)
    c.add_argument("dst", type=Path)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hpcgen", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"hpcgen {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    sub.add_parser("info", help="versions, MPI library, Horovod, fused ops, GPU, Slurm tools")
    _add_simulate(sub)
    _add_validate(sub)
    _add_export(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.verb == "info":
        from hpcgen.info import collect_info, format_info

        print(format_info(collect_info()))
        return 0
    if args.verb == "simulate":
        from hpcgen.config import EnergySpec, SimulateCaloConfig
        from hpcgen.physics.calo_geometry import SamplingCalorimeter

        try:
            geometry = SamplingCalorimeter(impact_jitter_mm=args.impact_jitter_mm)
        except ValueError as exc:
            raise UserError(f"--impact-jitter-mm: {exc}") from None
        cfg = SimulateCaloConfig(
            generator=args.generator, n=args.n, energy=EnergySpec.parse(args.energy_gev), seed=args.seed,
            out=args.out, chunk=args.chunk, overwrite=args.overwrite, progress=not (args.no_progress or os.environ.get("HPCGEN_NO_PROGRESS")), gflash_tune=args.gflash_tune,
            geometry=geometry)
        from hpcgen.dist.world import world
        from hpcgen.jobs.simulate_calo import simulate_calo

        w = world()
        out = simulate_calo(cfg, w)
        if w.rank == 0:
            print(f"wrote {out} ({cfg.n} {cfg.generator} showers over {w.size} ranks)")
        return 0
    if args.verb == "validate":
        if args.max_showers < 0:
            raise UserError(f"--max-showers: expected >= 0, got {args.max_showers}")
        from hpcgen.jobs.validate_files import validate_calo_files

        metrics = validate_calo_files(args.ref, args.test, args.out, max_showers=args.max_showers)
        print(f"wrote {args.out / 'report.md'} and metrics.json; separation powers: "
              + ", ".join(f"{k} {v:.3g}" for k, v in list(metrics["separation_power"].items())[:3]))
        return 0
    if args.verb == "export":
        from hpcgen.data.calo_file import export_calochallenge

        print(f"wrote {export_calochallenge(args.src, args.dst)}")
        return 0
    raise AssertionError(args.verb)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except UserError as exc:
        # Under MPI every rank sees the same bad input; one line from rank 0 is enough.
        rank = os.environ.get("OMPI_COMM_WORLD_RANK") or os.environ.get("PMI_RANK") or os.environ.get("PMIX_RANK") or "0"
        if rank == "0":
            print(f"hpcgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hpcgen: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from hpcgen.jobs.sharded_run import GenerationFailed

        if isinstance(exc, GenerationFailed):
            print(f"hpcgen: error: {exc}", file=sys.stderr)
            return 1
        _abort_peers_on_crash()
        raise


def _abort_peers_on_crash() -> None:
    """An unexpected exception on one MPI rank must not leave the others waiting in a collective forever."""
    import traceback

    if "mpi4py.MPI" in sys.modules:
        from mpi4py import MPI

        if MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
            traceback.print_exc()
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(1)


if __name__ == "__main__":
    sys.exit(main())
