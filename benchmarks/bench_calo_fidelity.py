"""Fidelity of the calorimeter Monte Carlos against the detailed cascade, to the CaloChallenge standard.

For each energy: a reference of 2N cascade showers (so that its floor halves hold N each), an independent cascade
sample of N (what a perfect generator scores: the reference-vs-reference check that the floors are honest), and N
GFlash showers of the tune fitted to the cascade. Each test sample goes through ``hpcgen validate calo``'s
evaluation (:func:`hpcgen.jobs.validate_calo.validate_calo`: separation powers, FPD/KPD, high-level classifier AUC
with the gradient-boosted cross-check, every metric beside its floor), whose report.md and plots land in
``--reports``. Samples are cached in ``--cache`` (HDF5 per generator and energy), so a change to one generator
re-simulates only that one. Writes benchmarks/results/calo_fidelity.json (schema hpcgen.bench/1, kind "fidelity").

    python benchmarks/bench_calo_fidelity.py [--energies 10,50,100,200] [--n 1000] [--resamples 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import h5py
import numpy as np

from bench_common import summarise, write_result
from hpcgen.fidelity.calo import VERDICT_METRICS, FidelityConfig
from hpcgen.fidelity.classifier import ClassifierConfig
from hpcgen.jobs.validate_calo import validate_calo
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
from hpcgen.seeding import stream
from hpcgen.sim import calo_simulator

HERE = Path(__file__).resolve().parent


def _simulate(name: str, energy: float, n: int, seed: int, cache: Path) -> np.ndarray:
    """(n, 25, 25, 25) showers of generator ``name`` at ``energy``, from the cache when it holds them."""
    path = cache / f"{name}_{energy:g}GeV_n{n}_seed{seed}.h5"
    if path.exists():
        with h5py.File(path, "r") as f:
            return f["ECAL"][...]
    kwargs = {"gflash_tune": "cascade"} if name == "gflash" else {}
    t0 = time.perf_counter()
    ecal = calo_simulator(name, **kwargs)(np.full(n, energy), DEFAULT_GEOMETRY, stream(seed, int(energy))).ecal_gev
    print(f"  simulated {n} {name} showers at {energy:g} GeV in {time.perf_counter() - t0:.0f} s")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.create_dataset("ECAL", data=ecal, compression="lzf")
    tmp.replace(path)
    return ecal


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--energies", default="10,50,100,200", help="primary energies in GeV, comma-separated")
    ap.add_argument("--n", type=int, default=1000, help="test showers per energy (the reference gets 2n)")
    ap.add_argument("--resamples", type=int, default=20, help="reference-vs-reference resamples of every floor")
    ap.add_argument("--classifier-seeds", type=int, default=5)
    ap.add_argument("--generators", default="cascade,gflash", help="test generators (cascade = independent sample)")
    ap.add_argument("--cache", type=Path, default=HERE.parent / ".cache" / "calo_fidelity")
    ap.add_argument("--reports", type=Path, default=HERE / "results" / "calo_fidelity")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "calo_fidelity.json")
    ap.add_argument("--samples-from", default=None,
                    help="the commit whose generators made the cached samples, when not this one (recorded in the "
                         "result; e.g. a 'before' table from samples simulated in a worktree of an older commit)")
    args = ap.parse_args(argv)
    energies = [float(e) for e in args.energies.split(",")]
    generators = args.generators.split(",")
    cfg = FidelityConfig(resamples=args.resamples, classifier_resamples=args.resamples,
                         classifier=ClassifierConfig(seeds=args.classifier_seeds))
    print(f"# calo fidelity vs cascade | energies {energies} GeV | reference 2×{args.n}, tests {args.n} per energy | "
          f"{args.resamples} resamples")
    ref = np.concatenate([_simulate("cascade", e, 2 * args.n, 1, args.cache) for e in energies])
    e_ref = np.repeat(energies, 2 * args.n)
    rows, walls = [], {}
    for gen in generators:
        test = np.concatenate([_simulate(gen, e, args.n, 2, args.cache) for e in energies])
        e_test = np.repeat(energies, args.n)
        t0 = time.perf_counter()
        m = validate_calo(ref, e_ref, test, e_test, DEFAULT_GEOMETRY, args.reports / gen, "cascade", gen,
                          config=cfg, warn=lambda w: print(f"  warning: {w}"))
        walls[gen] = time.perf_counter() - t0
        for g in m["groups"]:
            for name in VERDICT_METRICS:
                row = g["metrics"].get(name)
                if row is None:
                    continue
                rows.append({"generator": gen, "energy_gev": g["energy_gev"], "group": g["label"], "metric": name,
                             "value": summarise(row["values"]), "floor_p50": row["floor_p50"],
                             "floor_p95": row["floor_p95"], "within_floor_p95": row["within_floor_p95"],
                             "half_size": g["half_size"]})
            rows.append({"generator": gen, "energy_gev": g["energy_gev"], "group": g["label"], "metric": "response",
                         "value": summarise([g["response"]["test"]["mean"]]),
                         "rel_width": g["response"]["test"]["rel_width"],
                         "reference": g["response"]["ref"], "half_size": g["half_size"]})
        pooled = {r["metric"]: r for r in m["groups"][-1]["verdict"]}
        print(f"  {gen:>8}: AUC {pooled['AUC_high_level']['value']:.3f} ± {pooled['AUC_high_level']['spread']:.3f} "
              f"(floor p95 {pooled['AUC_high_level']['floor_p95']:.3f}), S(E_vis/E_p) "
              f"{pooled['S_e_vis_over_e_p']['value']:.4f} (p95 {pooled['S_e_vis_over_e_p']['floor_p95']:.4f}), "
              f"median layer S {pooled['S_layer_energy_median']['value']:.4f} "
              f"(p95 {pooled['S_layer_energy_median']['floor_p95']:.4f}) [{walls[gen]:.0f} s]")
    config = {"energies_gev": energies, "n_test_per_energy": args.n, "n_ref_per_energy": 2 * args.n,
              "generators": generators, "reference": "cascade", "gflash_tune": "cascade",
              "fidelity": m["config"], "reports": str(args.reports.relative_to(HERE.parent))
              if args.reports.is_relative_to(HERE.parent) else args.reports.name,
              "evaluation_wall_s": walls, "samples_from_commit": args.samples_from or "this commit"}
    write_result(args.out, "fidelity", config, rows)


if __name__ == "__main__":
    main()
