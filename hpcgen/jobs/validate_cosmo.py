"""``hpcgen validate cosmo``: the convergence-map fidelity of :mod:`hpcgen.fidelity.cosmo` written out as
metrics.json, PNG plots and report.md (CosmoGAN's validation, Mustafa et al. 2017, arXiv:1706.02390;
docs/cosmo_validation.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from hpcgen.fidelity.cosmo import (
    MINKOWSKI,
    ell_range_text,
    evaluate,
)
from hpcgen.jobs.report_common import REF_STYLE, SCHEMA, TEST_STYLE, fmt, json_safe, md

PLOTS = {
    "power_spectrum": "power_spectrum.png",
    "pixel_histogram": "pixel_histogram.png",
    "peaks": "peak_counts.png",
    "minkowski": "minkowski_functionals.png",
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


def _shade_invalid(ax, metrics: dict) -> None:
    ps, rng = metrics["power_spectrum"], metrics["ell_valid_range"]
    lo, hi = ps["edges"][0], ps["edges"][-1]
    spans = [(lo, hi)] if rng is None else [(lo, rng[0]), (rng[1], hi)]
    for a, b in spans:
        if b > a:
            ax.axvspan(a, b, color="0.85", lw=0, zorder=0)


def _plot_power_spectrum(path: Path, metrics: dict, labels) -> None:
    ps = metrics["power_spectrum"]
    fig, ax = _figure((6.4, 6.0), nrows=2, ncols=1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top, bottom = ax[0, 0], ax[1, 0]
    ell = np.array(ps["ell"])
    d = ell * (ell + 1) / (2 * math.pi)
    for side, label, style in _sides(metrics, labels):
        m, s = _arr(ps, side)
        top.plot(ell, d * m, marker="o", ms=3, label=label, **style)
        top.fill_between(ell, d * np.maximum(m - s, m * 1e-3), d * (m + s), alpha=0.2, lw=0, **style)
        if side in ps["noise"]:
            n = np.array(ps["noise"][side]["cl"], dtype=float)
            top.plot(ell, d * n, ls="--", lw=1.2, label=f"{label.split(' (')[0]} shot noise (uniform particles)",
                     **style)
    for side, lim in metrics["ell_valid"]["declared"].items():
        if lim.get("ell_max"):
            top.axvline(lim["ell_max"], ls=":", lw=1, color="0.4")
    _shade_invalid(top, metrics)
    top.set_xscale("log")
    top.set_yscale("log")
    top.set_ylabel(r"$\ell(\ell+1)C_\ell/2\pi$")
    pv = metrics["power_spectrum_valid"]
    chi2 = pv["chi2"]
    title = "Convergence power spectrum (mean ± 1 std over maps)\n"
    title += (f"valid ℓ {ell_range_text(metrics['ell_valid_range'])} (unshaded): χ² = {chi2['chi2']:.4g} for "
              f"{chi2['dof']} bins" if chi2 else "no valid ℓ bin (all shaded)")
    top.set_title(title)
    top.legend(fontsize="small")
    top.grid(alpha=0.3, which="both")
    (mr, sr), (mt, st) = _arr(ps, "ref"), _arr(ps, "test")
    nr, nt = metrics["ref"]["n"], metrics["test"]["n"]
    ratio = mt / mr
    err = ratio * np.sqrt((sr / mr) ** 2 / nr + (st / mt) ** 2 / nt)
    bottom.fill_between(ell, 1 - sr / mr, 1 + sr / mr, alpha=0.15, lw=0, label="ref ±1 std (one map)", **REF_STYLE)
    bottom.axhline(1.0, lw=1, **REF_STYLE)
    bottom.errorbar(ell, ratio, yerr=err, fmt="o", ms=3, capsize=2, label="test/ref mean ± error of mean", **TEST_STYLE)
    _shade_invalid(bottom, metrics)
    bottom.set_xlabel(r"multipole $\ell$ (shaded: outside the valid range; dotted: resolution limit)")
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
    ax.set_xlabel(r"convergence $\kappa$ (unsmoothed)")
    ax.set_ylabel("probability density per map (mean ± 1 std)")
    ax.set_title(f"Pixel-intensity histogram\nS = {fmt(metrics['separation_power']['pixel_histogram'])} "
                 f"(with under/overflow: {h['underflow']['test_mean'][0]:.2g}/{h['overflow']['test_mean'][0]:.2g} of "
                 "test pixels)")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.savefig(path, dpi=110)


def _kappa_axis(ax, sigma: float) -> None:
    from matplotlib.ticker import MaxNLocator

    sec = ax.secondary_xaxis("top", functions=(lambda v: v * sigma, lambda k: k / sigma))
    sec.xaxis.set_major_locator(MaxNLocator(5))
    sec.set_xlabel(r"threshold $\kappa_t$ (smoothed maps)")


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
    ax.set_title(f"Peak counts (mean ± 1 std over maps), Gaussian σ = {metrics['smoothing']['sigma_arcmin']:g}′, "
                 f"σ_ref = {sigma:.3g}")
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
    fig.suptitle(f"Minkowski functionals: {labels[1]} vs {labels[0]}, Gaussian σ = "
                 f"{metrics['smoothing']['sigma_arcmin']:g}′")
    fig.savefig(path, dpi=100)


def _write_plots(out: Path, metrics: dict, labels) -> None:
    _plot_power_spectrum(out / PLOTS["power_spectrum"], metrics, labels)
    _plot_pixel_histogram(out / PLOTS["pixel_histogram"], metrics, labels)
    _plot_peaks(out / PLOTS["peaks"], metrics, labels)
    _plot_minkowski(out / PLOTS["minkowski"], metrics, labels)


# --- report --------------------------------------------------------------------------------------------------------
def _value_text(row: dict) -> str:
    if row["value"] is None:
        return "–"
    return fmt(row["value"]) + (f" ± {row['spread']:.2g}" if row["spread"] else "")


def _report(metrics: dict) -> str:
    r, t, mp = metrics["ref"], metrics["test"], metrics["maps"]
    ps, ks, chi2, thr = metrics["power_spectrum"], metrics["ks"], metrics["chi2_power_spectrum"], metrics["thresholds"]
    fl, sm, ev = metrics["floors"], metrics["smoothing"], metrics["ell_valid"]
    yes = {True: "yes", False: "**no**", None: "–"}
    lines = [
        f"# Convergence-map validation: {md(t['label'])} vs {md(r['label'])}",
        "",
        "| metric | value | floor p50 | floor p95 | within floor p95 |",
        "|---|---|---|---|---|",
    ]
    for row in metrics["verdict"]:
        lines.append(f"| {md(row['metric'])} | {_value_text(row)} | {fmt(row['floor_p50'])} | "
                     f"{fmt(row['floor_p95'])} | {yes[row['within_floor_p95']]} |")
    lines.append("")
    if fl:
        lines.append(f"Floors: {metrics['ref']['label']} vs itself on {fl['n_resamples']} random pairs of disjoint "
                     f"halves of {fl['half_size']} maps; values: median (± half the 16–84 % range) over the same "
                     f"resamples of {fl['half_size']} test maps against the first half. Smaller is closer.")
    lines += [f"**Warning:** {md(w)}" for w in metrics["warnings"]]
    lines += [
        "",
        f"Valid ℓ range: **{ell_range_text(metrics['ell_valid_range'])}** ({len(ev['bins'])} of {len(ps['ell'])} bins): "
        f"{ev['criterion']}",
        "",
        "| role | label | file | maps |",
        "|---|---|---|---|",
        f"| reference | {md(r['label'])} | {md(r['file'])} | {r['n']} |",
        f"| test | {md(t['label'])} | {md(t['file'])} | {t['n']} |",
        "",
        (f"Maps: {mp['pixels']}² pixels of {mp['pixel_arcmin']:.4g} arcmin ({mp['field_deg']:.4g}° field). "
         f"Peaks and Minkowski functionals on maps smoothed with a Gaussian of σ = {sm['sigma_arcmin']:g} arcmin "
         f"(FWHM {sm['fwhm_arcmin']:.3g} arcmin), {sm['border_pixels']} border pixels dropped; thresholds ν from "
         f"{thr['nu'][0]:g} to {thr['nu'][-1]:g} in units of the smoothed reference's σ_ref = {thr['sigma_ref']:.4g} "
         f"(unsmoothed {thr['sigma_ref_unsmoothed']:.4g})."),
        "",
    ]
    for side, lim in ev["declared"].items():
        lines.append(f"- {side} ({md(metrics[side]['label'])}) resolves ℓ {fmt(lim['ell_min'])}–{fmt(lim['ell_max'])}: "
                     f"{md(lim['criterion'])}.")
    for side, n in ps["noise"].items():
        lines.append(f"- {side} shot noise: {fmt(n['n_maps'])} maps of uniformly random particles through the same "
                     f"lens planes ({n['how']}); analytic Poisson level C = {fmt(n['cl_poisson'])} sr, noise pixel rms "
                     f"{fmt(n['pixel_std'])} (pixel rms of the reference {thr['sigma_ref_unsmoothed']:.3g}, noise "
                     "included).")
    pv = metrics["power_spectrum_valid"]
    lines += [
        "",
        "## Power spectrum",
        "",
        (f"All maps, valid ℓ {ell_range_text(pv['ell_range'])}: max |rel. error| {fmt(pv['max_abs_rel_err'])}, χ² "
         f"{pv['chi2']['chi2']:.4g} for {pv['chi2']['dof']} bins (p = {fmt(pv['chi2']['pvalue'])})."
         if pv["chi2"] else "All maps: no valid ℓ bin."),
        f"All maps, full ℓ range (labelled, beyond what the reference resolves where outside the valid range): χ² "
        f"{chi2['chi2']:.4g} for {chi2['dof']} bins (p = {fmt(chi2['pvalue'])}).",
        "",
        "| bin | ℓ range | ℓ | modes | valid | C_ℓ ref | C_ℓ test | rel. error | noise/signal | KS D | KS p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    e = ps["edges"]
    ns = ev["noise_to_signal"]
    for b, ell in enumerate(ps["ell"]):
        k = ks["power_spectrum"][b]
        lines.append(f"| {b} | {e[b]:.0f}–{e[b + 1]:.0f} | {ell:.0f} | {ps['modes'][b]} | "
                     f"{'yes' if ps['valid'][b] else 'no'} | {ps['ref_mean'][b]:.4g} | {ps['test_mean'][b]:.4g} | "
                     f"{fmt(ps['rel_err'][b])} | {fmt(ns[b]) if ns else '–'} | {fmt(k['statistic'])} | "
                     f"{fmt(k['pvalue'])} |")
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
    lines += ["", "## Separation power (all maps)", "", "| histogram | S |", "|---|---|"]
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
    plots: bool = True,
    **options,
) -> dict:
    """Compare ``test`` maps with ``ref`` maps by :func:`hpcgen.fidelity.cosmo.evaluate` (``options``: its keyword
    arguments — limits, smoothing, resamples, seed, thresholds, binning, chunk size); write metrics.json, PNG plots
    (unless ``plots=False``) and report.md to ``out_dir``. ``*_name`` is the source file shown in the report.
    Returns the metrics dict written to ``out_dir/metrics.json``."""
    metrics = evaluate(ref_kappa, test_kappa, pixel_rad, ref_label, test_label, **options)
    metrics["ref"]["file"], metrics["test"]["file"] = ref_name, test_name
    metrics = json_safe({"schema": SCHEMA, **metrics, "plots": list(PLOTS.values()) if plots else []})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        _write_plots(out, metrics, (ref_label, test_label))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(_report(metrics))
    return metrics
