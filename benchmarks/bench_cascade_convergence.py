"""Convergence of the detailed EM cascade in its cuts and step limits: sampling fraction, resolution and profiles.

Each setting changes one field of :class:`hpcgen.sim.calo_cascade.CascadeCuts` from the default (``SETTINGS``),
except ``brems_kc_0.02+gamma_cut_0.02`` (k_c below the photon cut would only deposit the photons on the spot) and
``steps_x*``, which scale all three step limits together (the convergence test of a condensed-history step). Per
setting and primary energy (e−, default 10 and 50 GeV) it simulates N showers with its own random stream
(``stream(seed, setting number, energy in MeV)``, so settings are statistically independent) on one pinned core and
records, with the project's observables (:func:`hpcgen.physics.shower_features.high_level_features`: sampling
fraction, per-layer fractions, centroids and widths from one :func:`~hpcgen.ops.ecal_moments` pass):

* sampling fraction ΣE_cells/E0: mean ± standard error;
* relative resolution σ/μ of the visible energy ± its standard error (delta method with the sample skewness and
  kurtosis, so leakage tails are not assumed Gaussian);
* mean longitudinal profile (fraction of the visible energy per layer, ± standard error per layer) and the depth
  centroid (``depth_mean_mm``) ± error;
* lateral width, the per-shower mean of ``x_std_mm`` and ``y_std_mm``, ± error;
* CPU seconds per shower (process time over ``--chunks`` batches: median, min, max) and tracking steps per shower;
* the pull of each observable against the default setting, (x − x_default) / √(σ² + σ_default²), and for the
  profile the largest per-layer pull and a diagonal χ²/ndf (layers are correlated: indicative only).

N defaults to 900 showers at 10 GeV and 210 at 50 GeV: σ/μ is measured 6.0 % and 2.9 % there, so the standard
error of the mean sampling fraction is ≈ 0.2 % at both. The default run takes ~12 min of CPU on one core (half of
it in the two smallest ``steps_x*`` settings). Writes
benchmarks/results/cascade_convergence.json (schema hpcgen.bench/1); docs/cascade_convergence.md discusses it.

    python benchmarks/bench_cascade_convergence.py [--energies 10 50] [--n 900 210] [--settings default e_cut_0.25]
                                                   [--chunks 3] [--seed 13013] [--out PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy/numba load their thread pools

import argparse
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from bench_common import pin_to_one_core, summarise, write_result

# name -> the CascadeCuts fields it changes (an empty dict is the default). The order fixes each setting's
# random stream: append new settings at the end.
SETTINGS: dict[str, dict] = {
    "default": {},
    "e_cut_0.25": {"electron_cut_mev": 0.25},
    "e_cut_0.1": {"electron_cut_mev": 0.1},
    "gamma_cut_0.02": {"photon_cut_mev": 0.02},
    "gamma_cut_0.01": {"photon_cut_mev": 0.01},  # the smallest allowed (photoelectric tables start at 10 keV)
    "brems_kc_0.1": {"brems_threshold_mev": 0.1},
    "brems_kc_0.5": {"brems_threshold_mev": 0.5},  # the pre-study default
    "brems_kc_0.02+gamma_cut_0.02": {"brems_threshold_mev": 0.02, "photon_cut_mev": 0.02},  # kc below γ cut is moot
    "soft_brems_to_absorber": {"active_soft_brems_local": False},
    "max_step_x0_0.15": {"max_step_x0": 0.15},
    "max_step_x0_0.075": {"max_step_x0": 0.075},
    "range_fraction_0.15": {"range_fraction": 0.15},
    "range_fraction_0.075": {"range_fraction": 0.075},
    "min_step_mm_0.025": {"min_step_mm": 0.025},
    "min_step_mm_0.0125": {"min_step_mm": 0.0125},
    # all three step limits scaled together: the convergence test of a condensed-history step
    **{f"steps_x{f:g}": {"max_step_x0": round(0.3 * f, 9), "range_fraction": round(0.3 * f, 9),
                        "min_step_mm": round(0.05 * f, 9)}
       for f in (0.5, 0.25, 0.1, 0.05)},
}
DEFAULT_N = {10.0: 900, 50.0: 210}


def mean_and_error(x) -> tuple[float, float]:
    """Sample mean and its standard error s/√N."""
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def relative_width_and_error(x) -> tuple[float, float]:
    """σ/μ of a sample and its standard error (delta method, valid for any distribution with four moments):

    Var(σ̂/μ̂) ≈ (r²/N) · [(κ − 1)/4 − r·γ₁ + r²], r = σ/μ, γ₁ = m₃/σ³, κ = m₄/σ⁴; a Gaussian gives r²(1 + 2r²)/(2N).
    """
    x = np.asarray(x, dtype=np.float64)
    n, mu, sd = x.size, x.mean(), x.std(ddof=1)
    r = sd / mu
    d = x - mu
    m2 = np.mean(d**2)
    g1, kurt = np.mean(d**3) / m2**1.5, np.mean(d**4) / m2**2
    var = r * r / n * max((kurt - 1) / 4 - r * g1 + r * r, 0.0)
    return float(r), float(math.sqrt(var))


def pull(value: float, error: float, ref_value: float, ref_error: float) -> float:
    """(value − ref) in units of the combined standard error of two independent estimates."""
    return float((value - ref_value) / math.hypot(error, ref_error))


def observe(showers, geometry) -> dict:
    """The per-setting observables (means ± standard errors) of one batch of showers."""
    from hpcgen.physics.shower_features import high_level_features, high_level_names

    hl = high_level_features(showers.ecal_gev, showers.energy_gev, geometry)
    f = dict(zip(high_level_names(geometry.n_layers), hl.T))
    sf = f["sampling_fraction"]
    width = 0.5 * (f["x_std_mm"] + f["y_std_mm"])
    frac = np.stack([f[f"layer_fraction_{k:02d}"] for k in range(geometry.n_layers)], axis=1)
    out = {"n_showers": int(sf.size)}
    for key, sample, fn in (("sampling_fraction", sf, mean_and_error),
                            ("resolution", sf, relative_width_and_error),
                            ("depth_centroid_mm", f["depth_mean_mm"], mean_and_error),
                            ("lateral_width_mm", width, mean_and_error)):
        v, e = fn(sample)
        out[key] = {"value": v, "error": e}
    out["longitudinal_profile"] = {"fraction": frac.mean(axis=0).tolist(),
                                   "error": (frac.std(axis=0, ddof=1) / math.sqrt(frac.shape[0])).tolist()}
    return out


SCALARS = ("sampling_fraction", "resolution", "depth_centroid_mm", "lateral_width_mm")


def pulls_against(row: dict, ref: dict) -> dict:
    """Pull of each scalar observable of ``row`` against ``ref``; the profile's largest per-layer |pull| and
    diagonal χ²/ndf; and the relative shift of each scalar."""
    out = {}
    for key in SCALARS:
        a, b = row[key], ref[key]
        out[key] = pull(a["value"], a["error"], b["value"], b["error"])
        out[f"{key}_relative_shift"] = float(a["value"] / b["value"] - 1)
    p, pr = row["longitudinal_profile"], ref["longitudinal_profile"]
    layer_pulls = [pull(v, e, rv, re) for v, e, rv, re in zip(p["fraction"], p["error"], pr["fraction"], pr["error"])
                   if math.hypot(e, re) > 0]
    out["profile_max_abs_layer_pull"] = float(max(abs(x) for x in layer_pulls))
    out["profile_chi2_per_layer"] = float(np.mean(np.square(layer_pulls)))
    return out


def run_setting(name: str, energy_gev: float, n: int, chunks: int, seed: int, geometry) -> dict:
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_cascade import CascadeCuts, simulate_cascade

    cuts = CascadeCuts(**SETTINGS[name])
    rng = stream(seed, list(SETTINGS).index(name), int(round(energy_gev * 1e3)))
    simulate_cascade(np.full(1, energy_gev), geometry, stream(seed, 10**6), cuts)  # JIT cache load + table build
    sizes = [n // chunks + (1 if i < n % chunks else 0) for i in range(chunks)]
    parts, cpu = [], []
    for size in sizes:
        t0 = time.process_time()
        parts.append(simulate_cascade(np.full(size, energy_gev), geometry, rng, cuts))
        cpu.append((time.process_time() - t0) / size)
    from hpcgen.sim.showers import CaloShowers

    showers = CaloShowers(ecal_gev=np.concatenate([p.ecal_gev for p in parts]),
                          energy_gev=np.concatenate([p.energy_gev for p in parts]))
    steps = np.concatenate([p.tallies["n_steps"] for p in parts])
    row = {"setting": name, "changed": SETTINGS[name], "energy_gev": energy_gev, **observe(showers, geometry),
           "cpu_s_per_shower": summarise(cpu), "steps_per_shower": float(steps.mean())}
    return row


def _fmt(v: dict, scale: float = 1.0, digits: int = 4) -> str:
    return f"{v['value'] * scale:.{digits}f} ± {v['error'] * scale:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--energies", type=float, nargs="+", default=list(DEFAULT_N), help="primary e− energies, GeV")
    ap.add_argument("--n", type=int, nargs="+", default=None,
                    help="showers per energy (one value for all, or one per energy); default 900 at 10 GeV, 210 at "
                         "50 GeV, else 9000/E")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS), metavar="SETTING",
                    help=f"settings to run ('default' is always added); known: {', '.join(SETTINGS)}")
    ap.add_argument("--chunks", type=int, default=3, help="timed batches per setting and energy")
    ap.add_argument("--seed", type=int, default=13013)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cascade_convergence.json")
    args = ap.parse_args()
    if args.n is None:
        ns = [DEFAULT_N.get(e, max(20, int(round(9000 / e)))) for e in args.energies]
    elif len(args.n) in (1, len(args.energies)):
        ns = args.n * len(args.energies) if len(args.n) == 1 else args.n
    else:
        ap.error(f"--n takes one value or one per energy ({len(args.energies)}), got {len(args.n)}")
    if min(ns) < 2 * args.chunks:
        ap.error(f"--n must be at least 2 × --chunks = {2 * args.chunks}")
    settings = ["default"] + [s for s in args.settings if s != "default"]

    from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY as geo
    from hpcgen.sim.calo_cascade import CascadeCuts

    core = pin_to_one_core()
    config = {"geometry": geo.to_dict(), "particle": "e-",
              "energies_gev": args.energies, "n_showers": dict(zip(map(str, args.energies), ns)),
              "default_cuts": dataclasses.asdict(CascadeCuts()),
              "settings": {s: SETTINGS[s] for s in settings}, "seed": args.seed, "chunks": args.chunks,
              "pinned_core": core, "omp_num_threads": os.environ["OMP_NUM_THREADS"],
              "numba_num_threads": os.environ["NUMBA_NUM_THREADS"],
              "observables": "hpcgen.physics.shower_features.high_level_features: sampling_fraction, "
                             "layer_fraction_*, depth_mean_mm; width = (x_std_mm + y_std_mm)/2"}
    print(f"config: {geo.name}, e- at {args.energies} GeV, N = {ns}, {len(settings)} settings, seed {args.seed}, "
          f"1 core (#{core})")
    rows, t_start = [], time.perf_counter()
    for e, n in zip(args.energies, ns):
        ref = None
        for name in settings:
            row = run_setting(name, e, n, args.chunks, args.seed, geo)
            if ref is None:
                ref = row
            row["pull_vs_default"] = pulls_against(row, ref) if name != "default" else None
            rows.append(row)
            p = row["pull_vs_default"] or {k: 0.0 for k in SCALARS}
            print(f"  {e:5.0f} GeV {name:22s} SF {_fmt(row['sampling_fraction'], 1, 5)} "
                  f"({p['sampling_fraction']:+5.1f})  σ/μ {_fmt(row['resolution'], 100, 2)} % ({p['resolution']:+5.1f})"
                  f"  depth {_fmt(row['depth_centroid_mm'], 1, 2)} mm ({p['depth_centroid_mm']:+5.1f})"
                  f"  width {_fmt(row['lateral_width_mm'], 1, 3)} mm ({p['lateral_width_mm']:+5.1f})"
                  f"  {row['cpu_s_per_shower']['median'] * 1e3:7.1f} ms/shower", flush=True)
    wall = time.perf_counter() - t_start
    print(f"  total {wall:.0f} s wall")
    write_result(args.out, "cascade_convergence", config, rows, wall_s=wall,
                 note="CPU seconds are process time on one pinned core of a shared host (niced run)")


if __name__ == "__main__":
    main()
