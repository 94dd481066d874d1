"""Validate generated convergence maps against a reference: metrics.json, PNG plots and report.md.

The CosmoGAN validation (Mustafa et al. 2017, arXiv:1706.02390; shared/REFERENCE.md §3): power spectrum
(:func:`hpcgen.ops.radial_power_spectrum`, the estimator the spectral loss also uses), pixel-intensity histogram,
peak counts and Minkowski functionals V0, V1, V2 (:mod:`hpcgen.physics.map_statistics`), each computed per map and
compared per bin/threshold with a two-sample KS test across maps, plus a χ² of the mean spectra and the separation
power of the pooled pixel and peak-height histograms. Maps are read in slices of ``chunk_size`` (two passes: the
first fixes the histogram range and the threshold scale σ_ref), so h5py datasets larger than memory work.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hpcgen import ops
from hpcgen.jobs.report_common import REF_STYLE, SCHEMA, TEST_STYLE, fmt, json_safe, md
from hpcgen.physics import distances
from hpcgen.physics import map_statistics as ms

DEFAULT_CHUNK = 128
DEFAULT_HIST_BINS = 50
MINKOWSKI = ("V0", "V1", "V2")

PLOTS = {
    "power_spectrum": "power_spectrum.png",
    "pixel_histogram": "pixel_histogram.png",
    "peaks": "peak_counts.png",
    "minkowski": "minkowski_functionals.png",
}

UNITS = {
    "ell": "1 (multipole)",
    "cl": "sr (C_ℓ of the dimensionless κ, flat sky)",
    "pixel_histogram": "fraction of a map's pixels per bin of κ",
    "peaks": "peaks per map above the threshold",
    "V0": "1 (area fraction)",
    "V1": "1/deg",
    "V2": "1/deg²",
}

CONVENTIONS = {
    "power_spectrum": "hpcgen.ops.radial_power_spectrum: κ̃(ℓ) = Δ² Σ_x κ(x) e^{−iℓ·x}, Ĉ(ℓ) = |κ̃(ℓ)|²/L² averaged "
    "over the Fourier modes of each bin (Δ pixel side, L map side in rad); bins log-spaced from 2π/L to the Nyquist "
    "ℓ = πN/L; ell = mean |ℓ| of the modes in a bin. rel_err = test_mean/ref_mean − 1.",
    "chi2": "Σ_b (C̄_test − C̄_ref)²/(σ²_ref/N_ref + σ²_test/N_test), σ² the map-to-map variance per bin; bins "
    "taken as independent (exact for Gaussian fields, approximate for lensing maps).",
    "thresholds": "κ_t = ν·σ_ref with σ_ref the pixel standard deviation of the whole reference sample, the same "
    "absolute levels for both samples (an amplitude change shows up); the map mean is not subtracted.",
    "peaks": "pixels strictly higher than their 8 neighbours (border pixels excluded), counted per map above each "
    "threshold.",
    "minkowski": "gradient estimator of Schmalzing & Gorski 1998 with central differences on the interior pixels "
    "and δ(κ − κ_t) as a top hat of width Δν·σ_ref: V0 area fraction above κ_t, V1 = ¼ contour length per area "
    "[1/deg], V2 = Euler characteristic per area [1/deg²].",
    "ks": "two-sample Kolmogorov–Smirnov (scipy) per bin/threshold on the per-map values across maps.",
    "separation_power": "S = ½ Σ (h1 − h2)²/(h1 + h2) of the pooled, unit-sum histograms: pixel values on the "
    "common bins; peak heights between consecutive thresholds (and above the last).",
}


@dataclass
class _PerMap:
    """Every per-map statistic of one sample: rows are maps."""

    n: int
    cl: np.ndarray  # (n, nb)
    hist: np.ndarray  # (n, nh) pixel fractions
    peaks: np.ndarray  # (n, nt) cumulative counts N(>κ_t)
    mf: dict[str, np.ndarray]  # V0, V1, V2: (n, nt)


def _check_maps(kappa, which: str):
    kappa = kappa if hasattr(kappa, "shape") else np.asarray(kappa)
    shape = tuple(kappa.shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8:
        raise ValueError(f"{which} maps have shape {shape}; expected (N, n, n) square maps with n >= 8")
    if shape[0] < 2:
        raise ValueError(f"{which} sample has {shape[0]} map(s); validation needs at least 2 (for map-to-map spreads)")
    return kappa


def _chunks(kappa, chunk: int):
    for s in range(0, int(kappa.shape[0]), chunk):
        # Slices only, ascending: an h5py dataset reads one contiguous hyperslab.
        yield np.asarray(kappa[s : s + chunk], dtype=np.float64)


def _moments(kappa, chunk: int, which: str) -> tuple[float, float, float, float]:
    """(mean, std, min, max) over all pixels of the sample; NaN/inf is an error naming the sample."""
    total, total2, lo, hi, count = 0.0, 0.0, math.inf, -math.inf, 0
    for block in _chunks(kappa, chunk):
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{which} maps contain NaN or inf values")
        total += float(block.sum())
        total2 += float(np.square(block).sum())
        lo, hi, count = min(lo, float(block.min())), max(hi, float(block.max())), count + block.size
    mean = total / count
    return mean, math.sqrt(max(total2 / count - mean * mean, 0.0)), lo, hi


def _per_map(kappa, pixel_rad: float, spec_bins, hist_edges, nu, sigma: float, chunk: int) -> _PerMap:
    pixel_deg = math.degrees(pixel_rad)
    cls, hists, peaks, mfs = [], [], [], {k: [] for k in MINKOWSKI}
    for block in _chunks(kappa, chunk):
        cls.append(ops.cl_numpy(block, pixel_rad, bins=spec_bins).cl)
        hists.append(ms.pixel_histograms(block, hist_edges))
        peaks.append(ms.peak_counts(block, nu, sigma=sigma))
        for k, v in zip(MINKOWSKI, ms.minkowski_functionals(block, nu, sigma=sigma, pixel_size=pixel_deg)):
            mfs[k].append(v)
    return _PerMap(n=int(kappa.shape[0]), cl=np.concatenate(cls), hist=np.concatenate(hists),
                   peaks=np.concatenate(peaks).astype(np.float64), mf={k: np.concatenate(v) for k, v in mfs.items()})


def _band(x: np.ndarray) -> dict:
    return {"mean": x.mean(axis=0).tolist(), "std": x.std(axis=0, ddof=1).tolist()}


def _pair(ref: np.ndarray, test: np.ndarray) -> dict:
    r, t = _band(ref), _band(test)
    return {"ref_mean": r["mean"], "ref_std": r["std"], "test_mean": t["mean"], "test_std": t["std"]}


def _peak_height_hist(cumulative: np.ndarray) -> np.ndarray:
    """Pooled peaks per threshold interval [κ_j, κ_{j+1}) and above the last, from per-map N(>κ_j)."""
    total = cumulative.sum(axis=0)
    return np.append(total[:-1] - total[1:], total[-1])


def _ks_summary(rows: list[dict]) -> dict:
    p = np.array([r["pvalue"] for r in rows])
    return {"n": int(p.size), "min_pvalue": float(p.min()), "n_pvalue_above_0.05": int((p > 0.05).sum())}


def _compare(ref: _PerMap, test: _PerMap, spectrum, nu, sigma_ref, dnu, hist_edges) -> dict:
    ref_mean, test_mean = ref.cl.mean(axis=0), test.cl.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = test_mean / ref_mean - 1.0
    ks = {
        "pixel_histogram": ms.ks_per_column(ref.hist, test.hist),
        "power_spectrum": ms.ks_per_column(ref.cl, test.cl),
        "peaks": ms.ks_per_column(ref.peaks, test.peaks),
        "minkowski": {k: ms.ks_per_column(ref.mf[k], test.mf[k]) for k in MINKOWSKI},
    }
    summary = {k: _ks_summary(ks[k]) for k in ("pixel_histogram", "power_spectrum", "peaks")}
    summary.update({f"minkowski_{k}": _ks_summary(v) for k, v in ks["minkowski"].items()})
    peak_hist = (_peak_height_hist(ref.peaks), _peak_height_hist(test.peaks))
    return {
        "power_spectrum": {
            "ell": spectrum.ell.tolist(), "edges": spectrum.edges.tolist(), "modes": spectrum.modes.tolist(),
            **_pair(ref.cl, test.cl), "rel_err": rel.tolist(),
        },
        "power_spectrum_rel_err": rel.tolist(),
        "chi2_power_spectrum": ms.chi2_mean_spectra(ref.cl, test.cl),
        "thresholds": {"nu": nu.tolist(), "sigma_ref": sigma_ref, "kappa": (nu * sigma_ref).tolist(), "dnu": dnu},
        "pixel_histogram": {"edges": hist_edges.tolist(), **_pair(ref.hist, test.hist)},
        "peaks": _pair(ref.peaks, test.peaks),
        "minkowski": {k: _pair(ref.mf[k], test.mf[k]) for k in MINKOWSKI},
        "ks": ks,
        "ks_summary": summary,
        "separation_power": {
            "pixel_histogram": distances.separation_power_hist(ref.hist.sum(axis=0), test.hist.sum(axis=0)),
            "peak_heights": distances.separation_power_hist(*peak_hist) if min(h.sum() for h in peak_hist) > 0 else None,
        },
    }


# --- plots ---------------------------------------------------------------------------------------------------------
def _figure(size, **subplots):
    # Figure without pyplot: no global backend switch, no figure registry; savefig renders with Agg.
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(squeeze=False, **subplots)


def _arr(d: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
    return np.array(d[f"{side}_mean"], dtype=float), np.array(d[f"{side}_std"], dtype=float)


def _sides(metrics: dict, labels):
    return (("ref", f"{labels[0]} (N={metrics['ref']['n']})", REF_STYLE),
            ("test", f"{labels[1]} (N={metrics['test']['n']})", TEST_STYLE))


def _plot_power_spectrum(path: Path, metrics: dict, labels) -> None:
    ps = metrics["power_spectrum"]
    fig, ax = _figure((6.4, 5.6), nrows=2, ncols=1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top, bottom = ax[0, 0], ax[1, 0]
    ell = np.array(ps["ell"])
    d = ell * (ell + 1) / (2 * math.pi)
    for side, label, style in _sides(metrics, labels):
        m, s = _arr(ps, side)
        top.plot(ell, d * m, marker="o", ms=3, label=label, **style)
        top.fill_between(ell, d * np.maximum(m - s, m * 1e-3), d * (m + s), alpha=0.2, lw=0, **style)
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_ylabel(r"$\ell(\ell+1)C_\ell/2\pi$")
    chi2 = metrics["chi2_power_spectrum"]
    top.set_title(f"Convergence power spectrum (mean ± 1 std over maps)\n"
                  f"χ² = {chi2['chi2']:.4g} for {chi2['dof']} bins, p = {fmt(chi2['pvalue'])}")
    top.legend()
    top.grid(alpha=0.3, which="both")
    (mr, sr), (mt, st) = _arr(ps, "ref"), _arr(ps, "test")
    nr, nt = metrics["ref"]["n"], metrics["test"]["n"]
    ratio = mt / mr
    err = ratio * np.sqrt((sr / mr) ** 2 / nr + (st / mt) ** 2 / nt)
    bottom.fill_between(ell, 1 - sr / mr, 1 + sr / mr, alpha=0.15, lw=0, label="ref ±1 std (one map)", **REF_STYLE)
    bottom.axhline(1.0, lw=1, **REF_STYLE)
    bottom.errorbar(ell, ratio, yerr=err, fmt="o", ms=3, capsize=2, label="test/ref mean ± error of mean", **TEST_STYLE)
    bottom.set_xlabel(r"multipole $\ell$")
    bottom.set_ylabel("test / ref")
    bottom.legend(fontsize="x-small", ncols=2)
    bottom.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)


def _plot_pixel_histogram(path: Path, metrics: dict, labels) -> None:
    h = metrics["pixel_histogram"]
    edges = np.array(h["edges"])
    width = np.diff(edges)
    fig, ax = _figure((6.4, 4.4))
    ax = ax[0, 0]
    for side, label, style in _sides(metrics, labels):
        m, s = _arr(h, side)
        m, s = m / width, s / width
        ax.stairs(np.where(m > 0, m, np.nan), edges, lw=1.5, baseline=None, label=label, **style)
        ax.fill_between(edges[:-1], np.maximum(m - s, m * 1e-2), m + s, step="post", alpha=0.2, lw=0, **style)
    ax.set_yscale("log")
    ax.set_xlabel(r"convergence $\kappa$")
    ax.set_ylabel("probability density per map (mean ± 1 std)")
    ax.set_title(f"Pixel-intensity histogram\nS = {fmt(metrics['separation_power']['pixel_histogram'])}")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)


def _kappa_axis(ax, sigma: float) -> None:
    from matplotlib.ticker import MaxNLocator

    sec = ax.secondary_xaxis("top", functions=(lambda v: v * sigma, lambda k: k / sigma))
    sec.xaxis.set_major_locator(MaxNLocator(5))
    sec.set_xlabel(r"threshold $\kappa_t$")


def _plot_peaks(path: Path, metrics: dict, labels) -> None:
    nu, sigma = np.array(metrics["thresholds"]["nu"]), metrics["thresholds"]["sigma_ref"]
    fig, ax = _figure((6.4, 4.6))
    ax = ax[0, 0]
    for side, label, style in _sides(metrics, labels):
        m, s = _arr(metrics["peaks"], side)
        ax.plot(nu, np.where(m > 0, m, np.nan), marker="o", ms=3, label=label, **style)
        ax.fill_between(nu, np.maximum(m - s, m * 1e-2), m + s, alpha=0.2, lw=0, **style)
    ax.set_yscale("log")
    ax.set_xlabel(r"threshold $\nu = \kappa_t/\sigma_\mathrm{ref}$")
    ax.set_ylabel("peaks per map above threshold")
    ax.set_title(f"Peak counts (mean ± 1 std over maps), σ_ref = {sigma:.3g}")
    _kappa_axis(ax, sigma)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)


def _plot_minkowski(path: Path, metrics: dict, labels) -> None:
    nu, sigma = np.array(metrics["thresholds"]["nu"]), metrics["thresholds"]["sigma_ref"]
    fig, axes = _figure((13.0, 4.2), nrows=1, ncols=3)
    names = {"V0": "area fraction", "V1": "¼ boundary length per area [1/deg]", "V2": "Euler characteristic per area [1/deg²]"}
    for ax, k in zip(axes[0], MINKOWSKI):
        for side, label, style in _sides(metrics, labels):
            m, s = _arr(metrics["minkowski"][k], side)
            ax.plot(nu, m, lw=1.5, label=label, **style)
            ax.fill_between(nu, m - s, m + s, alpha=0.2, lw=0, **style)
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel(r"threshold $\nu = \kappa_t/\sigma_\mathrm{ref}$")
        ax.set_ylabel(f"{k}: {names[k]}")
        ax.set_title(f"{k} (mean ± 1 std)")
        _kappa_axis(ax, sigma)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"Minkowski functionals: {labels[1]} vs {labels[0]}")
    fig.savefig(path, dpi=100)


def _write_plots(out: Path, metrics: dict, labels) -> None:
    _plot_power_spectrum(out / PLOTS["power_spectrum"], metrics, labels)
    _plot_pixel_histogram(out / PLOTS["pixel_histogram"], metrics, labels)
    _plot_peaks(out / PLOTS["peaks"], metrics, labels)
    _plot_minkowski(out / PLOTS["minkowski"], metrics, labels)


# --- report --------------------------------------------------------------------------------------------------------
def _report(metrics: dict) -> str:
    r, t, mp = metrics["ref"], metrics["test"], metrics["maps"]
    ps, ks, chi2, thr = metrics["power_spectrum"], metrics["ks"], metrics["chi2_power_spectrum"], metrics["thresholds"]
    lines = [
        f"# Convergence-map validation: {md(t['label'])} vs {md(r['label'])}",
        "",
        "| role | label | file | maps |",
        "|---|---|---|---|",
        f"| reference | {md(r['label'])} | {md(r['file'])} | {r['n']} |",
        f"| test | {md(t['label'])} | {md(t['file'])} | {t['n']} |",
        "",
        (f"Maps: {mp['pixels']}² pixels of {mp['pixel_arcmin']:.4g} arcmin ({mp['field_deg']:.4g}° field). "
         f"Thresholds ν from {thr['nu'][0]:g} to {thr['nu'][-1]:g} in units of σ_ref = {thr['sigma_ref']:.4g}."),
        "",
        "## Power spectrum",
        "",
        f"χ² of the mean spectra: {chi2['chi2']:.4g} for {chi2['dof']} bins (p = {fmt(chi2['pvalue'])}).",
        "",
        "| bin | ℓ range | ℓ | modes | C_ℓ ref | C_ℓ test | rel. error | KS D | KS p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    e = ps["edges"]
    for b, ell in enumerate(ps["ell"]):
        k = ks["power_spectrum"][b]
        lines.append(f"| {b} | {e[b]:.0f}–{e[b + 1]:.0f} | {ell:.0f} | {ps['modes'][b]} | {ps['ref_mean'][b]:.4g} | "
                     f"{ps['test_mean'][b]:.4g} | {fmt(ps['rel_err'][b])} | {fmt(k['statistic'])} | {fmt(k['pvalue'])} |")
    lines += [
        "",
        "## KS tests per bin and threshold",
        "",
        "Two-sample KS across maps of each per-map statistic; p > 0.05 is no evidence of a difference.",
        "",
        "| statistic | bins/thresholds | min p | bins with p > 0.05 |",
        "|---|---|---|---|",
    ]
    for name, s in metrics["ks_summary"].items():
        lines.append(f"| {name} | {s['n']} | {fmt(s['min_pvalue'])} | {s['n_pvalue_above_0.05']} |")
    lines += [
        "",
        "| ν | κ_t | peaks ref | peaks test | KS p peaks | KS p V0 | KS p V1 | KS p V2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for j, nu in enumerate(thr["nu"]):
        mf = [fmt(ks["minkowski"][k][j]["pvalue"]) for k in MINKOWSKI]
        lines.append(f"| {nu:g} | {thr['kappa'][j]:.3g} | {metrics['peaks']['ref_mean'][j]:.3g} | "
                     f"{metrics['peaks']['test_mean'][j]:.3g} | {fmt(ks['peaks'][j]['pvalue'])} | " + " | ".join(mf) + " |")
    sp = metrics["separation_power"]
    lines += ["", "## Separation power", "", "| histogram | S |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in sp.items()]
    lines += ["", "## Plots", ""] if metrics["plots"] else [""]
    for name in metrics["plots"]:
        lines += [f"![{name}]({name})", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in metrics["conventions"].items()] + [""]
    return "\n".join(lines)


def validate_cosmo(
    ref_kappa,
    test_kappa,
    pixel_rad: float,
    out_dir: str | Path,
    ref_label: str = "ref",
    test_label: str = "test",
    ref_name: str | None = None,
    test_name: str | None = None,
    *,
    nu=ms.DEFAULT_NU,
    spectrum_bins=None,
    hist_bins: int = DEFAULT_HIST_BINS,
    chunk_size: int = DEFAULT_CHUNK,
    plots: bool = True,
) -> dict:
    """Compare ``test`` maps with ``ref`` maps; write metrics.json, PNG plots and report.md to ``out_dir``.

    ``*_kappa``: (N, n, n) arrays or h5py datasets of convergence, both with the same n×n pixels of side
    ``pixel_rad`` radians (N ≥ 2 each, may differ). Maps are read in slices of ``chunk_size``. ``nu``: thresholds in
    units of σ_ref (peaks and Minkowski functionals; δ-window width = their smallest spacing). ``spectrum_bins``:
    bins of :func:`hpcgen.ops.radial_power_spectrum` (a count or ℓ edges; None = its default). ``hist_bins``: pixel-histogram bins over
    the range of both samples. ``*_name`` is the source file shown in the report. ``plots=False`` skips the PNGs.
    Returns the metrics dict that is written to ``out_dir/metrics.json``.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if int(hist_bins) < 1:
        raise ValueError(f"hist_bins must be >= 1, got {hist_bins}")
    ref_kappa = _check_maps(ref_kappa, f"reference ({ref_label})")
    test_kappa = _check_maps(test_kappa, f"test ({test_label})")
    if tuple(ref_kappa.shape[1:]) != tuple(test_kappa.shape[1:]):
        raise ValueError(f"test maps are {'×'.join(map(str, test_kappa.shape[1:]))} pixels but the reference maps are "
                         f"{'×'.join(map(str, ref_kappa.shape[1:]))}; compare maps of the same size and pixel scale")
    chunk = int(chunk_size)
    nu = np.atleast_1d(np.asarray(nu, dtype=np.float64))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    _, sigma_ref, lo_r, hi_r = _moments(ref_kappa, chunk, f"reference ({ref_label})")
    _, _, lo_t, hi_t = _moments(test_kappa, chunk, f"test ({test_label})")
    if sigma_ref == 0:
        raise ValueError(f"reference ({ref_label}) maps are constant; thresholds in units of their σ are undefined")
    hist_edges = distances.common_edges(np.array([lo_r, hi_r]), np.array([lo_t, hi_t]), int(hist_bins))
    pixels = int(ref_kappa.shape[1])
    # The binning alone (a blank map), fixed once so that every chunk and both samples share the same edges.
    spectrum = ops.cl_numpy(np.zeros((1, pixels, pixels)), pixel_rad, **({} if spectrum_bins is None else {"bins": spectrum_bins}))
    dnu = float(np.diff(nu).min()) if nu.size > 1 else None
    ref = _per_map(ref_kappa, pixel_rad, spectrum.edges, hist_edges, nu, sigma_ref, chunk)
    test = _per_map(test_kappa, pixel_rad, spectrum.edges, hist_edges, nu, sigma_ref, chunk)

    metrics = {
        "schema": SCHEMA,
        "domain": "cosmo",
        "ref": {"file": ref_name, "label": ref_label, "n": ref.n},
        "test": {"file": test_name, "label": test_label, "n": test.n},
        "maps": {"pixels": pixels, "pixel_arcmin": math.degrees(pixel_rad) * 60.0,
                 "field_deg": math.degrees(pixel_rad) * pixels},
        **_compare(ref, test, spectrum, nu, sigma_ref, dnu, hist_edges),
        "units": UNITS,
        "plots": list(PLOTS.values()) if plots else [],
        "conventions": CONVENTIONS,
    }
    metrics = json_safe(metrics)
    if plots:
        _write_plots(out, metrics, (ref_label, test_label))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(_report(metrics))
    return metrics
