"""Validate generated calorimeter showers against a reference: metrics.json, PNG plots and report.md.

Computes the observables of :mod:`hpcgen.physics.shower_features` for both samples, streaming over chunks of
showers so that h5py datasets larger than memory work, and compares them with the distances of
:mod:`hpcgen.physics.distances` — separation power and Wasserstein-1 per feature, as in the CaloChallenge
evaluation (Krause et al. 2024, arXiv:2410.21611), plus a two-sample KS test for the per-shower scalars.

Conventions (also written into metrics.json under ``conventions``):

- Scalar features (sampling fraction, moments, hit count, occupancy): one value per shower; S on ``bins``
  equal-width bins over the union range of both samples, W1 in the feature's unit, KS two-sided.
- Longitudinal and transverse profiles: each shower's profile is normalised to unit sum (fraction of its visible
  energy per layer / column), averaged over the non-empty showers, and S is the separation power of the two
  mean profiles treated as histograms over layers — the mean-profile version of CaloChallenge's per-layer energy
  comparison. W1 is between the mean profiles as energy distributions over depth (or x, y), in mm.
- Cell-energy spectrum: cells above the hit threshold from all showers, histogrammed in log10(E/GeV) with
  fixed decade-aligned bins (20 per decade) so that it streams in one pass; S on those bins, W1 in decades from
  bin centres. No KS: cells of one shower are correlated, so an i.i.d. p-value would be meaningless.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcgen.physics import distances
from hpcgen.physics.calo_geometry import SamplingCalorimeter
from hpcgen.jobs.report_common import REF_STYLE, SCHEMA, TEST_STYLE, fmt, json_safe, md
from hpcgen.physics.shower_features import (
    SCALAR_FEATURES,
    energy_moments,
    hit_threshold_gev,
    shower_features,
)

DEFAULT_CHUNK = 1000
# Fixed log grid for the cell spectrum: 1e-8 GeV (10 eV) to 1e4 GeV, so one pass suffices for both samples.
SPECTRUM_LOG10_RANGE = (-8.0, 4.0)
SPECTRUM_BINS_PER_DECADE = 20
# Up to this many distinct primary energies (e.g. 3DGAN's fixed-energy sets) are treated as discrete points.
MAX_DISCRETE_ENERGIES = 32
N_ENERGY_BINS = 10

UNITS = {
    "sampling_fraction": "1",
    "x_mean_mm": "mm",
    "y_mean_mm": "mm",
    "depth_mean_mm": "mm",
    "x_std_mm": "mm",
    "y_std_mm": "mm",
    "depth_std_mm": "mm",
    "hit_count": "cells",
    "sparsity": "1",
    "longitudinal_profile": "mm",
    "x_profile": "mm",
    "y_profile": "mm",
    "cell_energy_spectrum": "log10(GeV)",
}

TITLES = {
    "sampling_fraction": r"sampling fraction $\Sigma E_\mathrm{cells}/E_p$",
    "x_mean_mm": r"$\langle x\rangle$ [mm]",
    "y_mean_mm": r"$\langle y\rangle$ [mm]",
    "depth_mean_mm": r"$\langle z\rangle$ (depth) [mm]",
    "x_std_mm": r"$\sigma_x$ [mm]",
    "y_std_mm": r"$\sigma_y$ [mm]",
    "depth_std_mm": r"$\sigma_z$ (depth) [mm]",
    "hit_count": "hits above threshold [cells]",
    "sparsity": "occupancy (fraction of cells hit)",
}

PLOTS = {
    "longitudinal": "longitudinal_profile.png",
    "transverse": "transverse_profiles.png",
    "sf_energy": "sampling_fraction_vs_energy.png",
    "features": "feature_histograms.png",
    "spectrum": "cell_energy_spectrum.png",
}



@dataclass
class _Summary:
    """Everything the comparison needs from one sample, accumulated chunk by chunk."""

    n: int
    energy_gev: np.ndarray
    features: dict[str, np.ndarray]
    n_nonempty: int
    long_sum: np.ndarray  # Σ over non-empty showers of the unit-sum longitudinal profile
    long_sqsum: np.ndarray
    x_sum: np.ndarray
    y_sum: np.ndarray
    spectrum_counts: np.ndarray

    def mean(self, s: np.ndarray) -> np.ndarray:
        return s / self.n_nonempty if self.n_nonempty else np.zeros_like(s)

    @property
    def long_mean(self) -> np.ndarray:
        return self.mean(self.long_sum)

    @property
    def long_std(self) -> np.ndarray:
        m = self.long_mean
        return np.sqrt(np.maximum(self.mean(self.long_sqsum) - m * m, 0.0))


def _spectrum_edges_log10() -> np.ndarray:
    lo, hi = SPECTRUM_LOG10_RANGE
    return np.linspace(lo, hi, int(round((hi - lo) * SPECTRUM_BINS_PER_DECADE)) + 1)


def _unit_rows(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``profile`` (N, n) with positive sum, each normalised to unit sum, and the keep mask."""
    tot = profile.sum(axis=1)
    keep = tot > 0
    return profile[keep] / tot[keep, None], keep


def _summarise(ecal, energy, geometry: SamplingCalorimeter, thr: float, chunk: int, which: str) -> _Summary:
    # Arrays and h5py datasets pass through untouched (no full read); lists become arrays.
    ecal = ecal if hasattr(ecal, "shape") else np.asarray(ecal)
    energy = energy if hasattr(energy, "shape") else np.asarray(energy)
    if len(ecal.shape) != 4 or tuple(ecal.shape[1:]) != tuple(geometry.shape):
        raise ValueError(f"{which} ECAL has shape {tuple(ecal.shape)}; expected (N, {', '.join(map(str, geometry.shape))})")
    n = int(ecal.shape[0])
    if tuple(energy.shape) != (n,):
        raise ValueError(f"{which} energy has shape {tuple(energy.shape)}; expected ({n},) to match its ECAL")
    if n == 0:
        raise ValueError(f"{which} sample is empty; validation needs at least one shower")
    nx, ny, nz = geometry.shape
    spec_edges = _spectrum_edges_log10()
    feats: dict[str, list[np.ndarray]] = {k: [] for k in SCALAR_FEATURES}
    energies = []
    long_sum, long_sqsum = np.zeros(nz), np.zeros(nz)
    x_sum, y_sum = np.zeros(nx), np.zeros(ny)
    counts = np.zeros(spec_edges.size - 1, dtype=np.int64)
    n_nonempty = 0
    for s in range(0, n, chunk):
        # Slices only, ascending: h5py datasets read a contiguous hyperslab.
        block = np.asarray(ecal[s : s + chunk])
        e = np.asarray(energy[s : s + chunk], dtype=np.float64)
        energies.append(e)
        try:
            m = energy_moments(block)
            f = shower_features(block, e, geometry, thr, moments_=m)
        except ValueError as err:
            raise ValueError(f"{which} showers {s}..{s + len(e) - 1}: {err}") from None
        for k in SCALAR_FEATURES:
            feats[k].append(f[k])
        xp, yp, zp = m.profile_x, m.profile_y, m.profile_z
        lp, keep = _unit_rows(zp)
        long_sum += lp.sum(axis=0)
        long_sqsum += (lp * lp).sum(axis=0)
        n_nonempty += int(keep.sum())
        x_sum += _unit_rows(xp)[0].sum(axis=0)
        y_sum += _unit_rows(yp)[0].sum(axis=0)
        hits = block[block > thr].astype(np.float64)
        # Clip into the grid so no hit is lost; the grid spans far beyond any physical cell energy.
        counts += np.histogram(np.clip(np.log10(hits), spec_edges[0], spec_edges[-1]), bins=spec_edges)[0]
    return _Summary(
        n=n,
        energy_gev=np.concatenate(energies),
        features={k: np.concatenate(v) for k, v in feats.items()},
        n_nonempty=n_nonempty,
        long_sum=long_sum,
        long_sqsum=long_sqsum,
        x_sum=x_sum,
        y_sum=y_sum,
        spectrum_counts=counts,
    )


def _energy_bins(e_ref: np.ndarray, e_test: np.ndarray) -> tuple[bool, np.ndarray]:
    """(discrete, values or edges): the distinct energies if there are few, else log-spaced edges."""
    values = np.unique(np.concatenate([e_ref, e_test]))
    if values.size <= MAX_DISCRETE_ENERGIES:
        return True, values
    lo, hi = values[0], values[-1]
    return False, np.geomspace(lo, hi, N_ENERGY_BINS + 1)


def _stats(x: np.ndarray) -> dict:
    return {"n": int(x.size), "mean": float(x.mean()) if x.size else None, "std": float(x.std()) if x.size else None}


def _sf_by_energy(ref: _Summary, test: _Summary) -> tuple[bool, list[dict]]:
    discrete, grid = _energy_bins(ref.energy_gev, test.energy_gev)

    def bin_index(e: np.ndarray) -> np.ndarray:
        if discrete:
            return np.searchsorted(grid, e)
        # Right-open bins except the last, which also holds the maximum energy.
        return np.clip(np.searchsorted(grid, e, side="right") - 1, 0, grid.size - 2)

    if discrete:
        heads = [{"energy_gev": float(v)} for v in grid]
    else:
        heads = [
            {"energy_gev": float(math.sqrt(lo * hi)), "energy_lo_gev": float(lo), "energy_hi_gev": float(hi)}
            for lo, hi in zip(grid[:-1], grid[1:])
        ]
    idx = {"ref": bin_index(ref.energy_gev), "test": bin_index(test.energy_gev)}
    sf = {"ref": ref.features["sampling_fraction"], "test": test.features["sampling_fraction"]}
    rows = [{**h, **{side: _stats(sf[side][idx[side] == i]) for side in ("ref", "test")}} for i, h in enumerate(heads)]
    return discrete, rows


def _profile_distances(p_ref: np.ndarray, p_test: np.ndarray, centres: np.ndarray) -> tuple[float | None, float | None]:
    if p_ref.sum() <= 0 or p_test.sum() <= 0:
        return None, None
    return (
        distances.separation_power_hist(p_ref, p_test),
        distances.wasserstein1(centres, centres, p_ref, p_test),
    )


def _compare(ref: _Summary, test: _Summary, geometry: SamplingCalorimeter, bins: int) -> dict:
    sep, w1, ks = {}, {}, {}
    for k in SCALAR_FEATURES:
        a, b = ref.features[k], test.features[k]
        sep[k] = distances.separation_power(a, b, bins)
        w1[k] = distances.wasserstein1(a, b)
        d, p = distances.ks_2samp(a, b)
        ks[k] = {"statistic": d, "pvalue": p}
    xy = geometry.cell_centres_mm()
    for name, r, t, c in (
        ("longitudinal_profile", ref.long_mean, test.long_mean, geometry.layer_centres_mm()),
        ("x_profile", ref.mean(ref.x_sum), test.mean(test.x_sum), xy),
        ("y_profile", ref.mean(ref.y_sum), test.mean(test.y_sum), xy),
    ):
        sep[name], w1[name] = _profile_distances(r, t, c)
    edges = _spectrum_edges_log10()
    sep["cell_energy_spectrum"], w1["cell_energy_spectrum"] = _profile_distances(
        ref.spectrum_counts.astype(np.float64), test.spectrum_counts.astype(np.float64), 0.5 * (edges[1:] + edges[:-1])
    )
    return {"separation_power": sep, "wasserstein1": w1, "ks": ks}


# --- plots ---------------------------------------------------------------------------------------------------------
def _figure(nrows: int = 1, ncols: int = 1, size=(6.4, 4.4)):
    # Figure without pyplot: no global backend switch, no figure registry; savefig renders with Agg.
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _plot_longitudinal(path: Path, ref: _Summary, test: _Summary, geometry, labels, s_value) -> None:
    fig, ax = _figure()
    ax = ax[0, 0]
    z = geometry.layer_centres_mm()
    for summ, label, style in ((ref, labels[0], REF_STYLE), (test, labels[1], TEST_STYLE)):
        m, sd = summ.long_mean, summ.long_std
        ax.plot(z, m, marker="o", ms=3, label=f"{label} (N={summ.n})", **style)
        ax.fill_between(z, np.maximum(m - sd, 0), m + sd, alpha=0.2, lw=0, **style)
    ax.set_xlabel("depth of active layer [mm]")
    ax.set_ylabel("fraction of visible energy per layer")
    ax.set_title("Longitudinal profile (mean ± 1 std over showers)" + _s_suffix(s_value))
    sec = ax.secondary_xaxis("top", functions=(lambda d: d / geometry.x0_eff_mm, lambda t: t * geometry.x0_eff_mm))
    sec.set_xlabel(r"depth [$X_0$]")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _s_suffix(s) -> str:
    return "" if s is None else f"\nS = {s:.3g}"


def _plot_transverse(path: Path, ref: _Summary, test: _Summary, geometry, labels, sep) -> None:
    fig, axes = _figure(1, 2, size=(10.0, 4.2))
    c = geometry.cell_centres_mm()
    edges = np.append(c - 0.5 * geometry.cell_size_mm, c[-1] + 0.5 * geometry.cell_size_mm)
    for ax, axis, key in ((axes[0, 0], "x", "x_sum"), (axes[0, 1], "y", "y_sum")):
        for summ, label, style in ((ref, labels[0], REF_STYLE), (test, labels[1], TEST_STYLE)):
            prof = summ.mean(getattr(summ, key))
            ax.stairs(np.where(prof > 0, prof, np.nan), edges, lw=1.5, label=f"{label} (N={summ.n})", **style)
        ax.set_yscale("log")
        ax.set_xlabel(f"{axis} [mm]")
        ax.set_ylabel("mean fraction of visible energy per column")
        ax.set_title(f"Transverse {axis} profile" + _s_suffix(sep.get(f"{axis}_profile")))
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _plot_sf_energy(path: Path, rows: list[dict], discrete: bool, labels, ns) -> None:
    fig, ax = _figure()
    ax = ax[0, 0]
    energies = np.array([r["energy_gev"] for r in rows])
    for side, label, style, shift, n in (("ref", labels[0], REF_STYLE, 0.985, ns[0]), ("test", labels[1], TEST_STYLE, 1.015, ns[1])):
        keep = [i for i, r in enumerate(rows) if r[side]["n"] > 0]
        e = energies[keep] * shift  # small offset so overlapping error bars stay readable
        m = np.array([rows[i][side]["mean"] for i in keep])
        sd = np.array([rows[i][side]["std"] for i in keep])
        ax.errorbar(e, m, yerr=sd, fmt="o" if discrete else "s", ms=4, capsize=3, label=f"{label} (N={n})", **style)
    if energies.size and energies.max() >= 5 * energies.min():
        ax.set_xscale("log")
    ax.set_xlabel(r"primary energy $E_p$ [GeV]")
    ax.set_ylabel(r"sampling fraction $\Sigma E_\mathrm{cells}/E_p$")
    ax.set_title("Sampling fraction vs primary energy (mean ± 1 std" + (")" if discrete else ", log energy bins)"))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.savefig(path, dpi=110)


def _plot_features(path: Path, ref: _Summary, test: _Summary, labels, sep, w1, bins) -> None:
    n = len(SCALAR_FEATURES)
    ncols = 3
    nrows = -(-n // ncols)
    fig, axes = _figure(nrows, ncols, size=(13.0, 3.4 * nrows))
    for ax, k in zip(axes.ravel(), SCALAR_FEATURES):
        a, b = ref.features[k], test.features[k]
        edges = distances.common_edges(a, b, bins)
        ax.hist(a, bins=edges, density=True, histtype="stepfilled", alpha=0.25, **REF_STYLE)
        ax.hist(a, bins=edges, density=True, histtype="step", lw=1.5, label=labels[0], **REF_STYLE)
        ax.hist(b, bins=edges, density=True, histtype="step", lw=1.5, label=labels[1], **TEST_STYLE)
        ax.set_xlabel(TITLES[k])
        ax.set_ylabel("probability density")
        ax.set_title(f"S = {sep[k]:.3g},  W1 = {w1[k]:.3g} {UNITS[k] if UNITS[k] != '1' else ''}".rstrip(), fontsize="medium")
        ax.legend(fontsize="small")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Per-shower features: {labels[1]} (N={test.n}) vs {labels[0]} (N={ref.n})")
    fig.savefig(path, dpi=100)


def _plot_spectrum(path: Path, ref: _Summary, test: _Summary, labels, thr: float, s_value) -> None:
    fig, ax = _figure()
    ax = ax[0, 0]
    edges = _spectrum_edges_log10()
    occupied = np.flatnonzero((ref.spectrum_counts + test.spectrum_counts) > 0)
    if occupied.size:
        lo, hi = max(occupied[0] - 1, 0), min(occupied[-1] + 2, edges.size - 1)
        e = 10.0 ** edges[lo : hi + 1]
        for summ, label, style in ((ref, labels[0], REF_STYLE), (test, labels[1], TEST_STYLE)):
            # Cells per shower per decade: comparable across different N and bin widths.
            density = summ.spectrum_counts[lo:hi] / summ.n / (edges[1] - edges[0])
            ax.stairs(np.where(density > 0, density, np.nan), e, label=f"{label} (N={summ.n})", lw=1.5, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.axvline(thr, ls="--", color="tab:blue", lw=1, label=f"hit threshold {thr * 1e6:.3g} keV")
    ax.set_xlabel("cell energy [GeV]")
    ax.set_ylabel("cells per shower per decade")
    ax.set_title("Cell-energy spectrum (cells above threshold)" + _s_suffix(s_value))
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.savefig(path, dpi=110)


def _write_plots(out: Path, ref: _Summary, test: _Summary, geometry, labels, metrics, sf_rows, discrete, thr) -> None:
    sep, bins = metrics["separation_power"], metrics["bins"]
    _plot_longitudinal(out / PLOTS["longitudinal"], ref, test, geometry, labels, sep["longitudinal_profile"])
    _plot_transverse(out / PLOTS["transverse"], ref, test, geometry, labels, sep)
    _plot_sf_energy(out / PLOTS["sf_energy"], sf_rows, discrete, labels, (ref.n, test.n))
    _plot_features(out / PLOTS["features"], ref, test, labels, sep, metrics["wasserstein1"], bins)
    _plot_spectrum(out / PLOTS["spectrum"], ref, test, labels, thr, sep["cell_energy_spectrum"])


# --- report ------------------------------------------------------------------------------------------------------
def _report(metrics: dict) -> str:
    r, t = metrics["ref"], metrics["test"]
    sep, w1, ks = metrics["separation_power"], metrics["wasserstein1"], metrics["ks"]
    lines = [
        f"# Calorimeter validation: {md(t['label'])} vs {md(r['label'])}",
        "",
        "| role | label | file | showers |",
        "|---|---|---|---|",
        f"| reference | {md(r['label'])} | {md(r['file'])} | {r['n']} |",
        f"| test | {md(t['label'])} | {md(t['file'])} | {t['n']} |",
        "",
        f"Geometry: {md(metrics['geometry']['name'])} {metrics['geometry_shape']}; hit threshold "
        f"{metrics['hit_threshold_gev']:.3g} GeV; {metrics['bins']} bins for scalar features.",
        "",
        "## Distances per feature",
        "",
        "S: separation power (0 identical, 1 disjoint). W1: Wasserstein-1 in the unit given. "
        "KS: two-sample Kolmogorov–Smirnov (per-shower scalars only).",
        "",
        "| feature | S | W1 | W1 unit | KS D | KS p |",
        "|---|---|---|---|---|---|",
    ]
    for k in sep:
        d = ks.get(k, {})
        lines.append(
            f"| {k} | {fmt(sep[k])} | {fmt(w1[k])} | {UNITS[k]} | {fmt(d.get('statistic'))} | {fmt(d.get('pvalue'))} |"
        )
    lines += [
        "",
        "## Sampling fraction per primary energy",
        "",
        f"| E_p [GeV] | N {md(r['label'])} | mean ± std {md(r['label'])} | N {md(t['label'])} | mean ± std {md(t['label'])} |",
        "|---|---|---|---|---|",
    ]
    for row in metrics["sampling_fraction_by_energy"]["bins"]:
        e = row["energy_gev"] if "energy_lo_gev" not in row else f"{row['energy_lo_gev']:.3g}–{row['energy_hi_gev']:.3g}"
        cells = []
        for side in ("ref", "test"):
            st = row[side]
            cells += [str(st["n"]), "–" if st["mean"] is None else f"{st['mean']:.4g} ± {st['std']:.2g}"]
        lines.append(f"| {fmt(e)} | " + " | ".join(cells) + " |")
    lines += ["", "## Plots", ""] if metrics["plots"] else [""]
    for name in metrics["plots"]:
        lines += [f"![{name}]({name})", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in metrics["conventions"].items()] + [""]
    return "\n".join(lines)


CONVENTIONS = {
    "scalar_features": "one value per shower; S on `bins` equal-width bins over the union range of both samples, "
    "histograms normalised to unit sum; W1 in the feature's unit; KS two-sided (scipy).",
    "profiles": "each shower's longitudinal / x / y profile normalised to unit sum, averaged over non-empty "
    "showers; S of the two mean profiles as histograms over layers (columns); W1 between the mean profiles as "
    "energy distributions over depth (x, y) in mm.",
    "cell_energy_spectrum": "cells above the hit threshold from all showers, log10(E/GeV) in fixed bins of 0.05 "
    "decade; S on those bins; W1 in decades from bin centres; no KS (cells within a shower are correlated).",
    "moments": "energy-weighted mean and standard deviation of cell-centre positions; x = y = 0 is the beam axis, "
    "depth from the front face at active-layer centres; empty showers give 0.",
    "sparsity": "fraction of cells above the hit threshold (occupancy).",
}


def validate_calo(
    ref_ecal,
    ref_energy,
    test_ecal,
    test_energy,
    geometry: SamplingCalorimeter,
    out_dir: str | Path,
    ref_label: str = "ref",
    test_label: str = "test",
    ref_name: str | None = None,
    test_name: str | None = None,
    *,
    threshold_gev: float | None = None,
    bins: int = distances.DEFAULT_BINS,
    chunk_size: int = DEFAULT_CHUNK,
    plots: bool = True,
) -> dict:
    """Compare ``test`` showers with ``ref`` showers; write metrics.json, PNG plots and report.md to ``out_dir``.

    ``*_ecal``: (N, nx, ny, nz) arrays or h5py datasets of visible energy in GeV, matching ``geometry.shape``;
    ``*_energy``: (N,) primary energies in GeV (> 0). N may differ between the two. Showers are read in slices of
    ``chunk_size``. ``*_name`` is the source file shown in the report (None if the data came from memory).
    ``threshold_gev`` is the hit threshold (default 0.1 MIP of the active layer, see ``hit_threshold_gev``).
    ``plots=False`` skips the PNGs (metrics.json and report.md are still written), e.g. for monitoring in training.
    Returns the metrics dict that is written to ``out_dir/metrics.json``.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if threshold_gev is not None and not float(threshold_gev) >= 0:
        raise ValueError(f"threshold_gev must be >= 0, got {threshold_gev}")
    thr = hit_threshold_gev(geometry) if threshold_gev is None else float(threshold_gev)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = _summarise(ref_ecal, ref_energy, geometry, thr, int(chunk_size), f"reference ({ref_label})")
    test = _summarise(test_ecal, test_energy, geometry, thr, int(chunk_size), f"test ({test_label})")

    dist = _compare(ref, test, geometry, bins)
    discrete, sf_rows = _sf_by_energy(ref, test)
    metrics = {
        "schema": SCHEMA,
        "domain": "calo",
        "ref": {"file": ref_name, "label": ref_label, "n": ref.n},
        "test": {"file": test_name, "label": test_label, "n": test.n},
        "geometry": geometry.to_dict(),
        "geometry_shape": list(geometry.shape),
        "hit_threshold_gev": thr,
        "bins": int(bins),
        **dist,
        "units": {k: UNITS[k] for k in dist["separation_power"]},
        "sampling_fraction_by_energy": {"discrete": discrete, "bins": sf_rows},
        "means": {
            k: {"ref": float(ref.features[k].mean()), "test": float(test.features[k].mean())} for k in SCALAR_FEATURES
        },
        "plots": list(PLOTS.values()) if plots else [],
        "conventions": CONVENTIONS,
    }
    metrics = json_safe(metrics)

    if plots:
        _write_plots(out, ref, test, geometry, (ref_label, test_label), metrics, sf_rows, discrete, thr)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(_report(metrics))
    return metrics

