"""Validate generated calorimeter showers against a reference to the CaloChallenge standard: metrics.json, PNG plots
and report.md, which opens with a one-screen verdict table (metric, value, floor p50 / p95, within floor p95).

The metrics and their floors are computed by :func:`hpcgen.fidelity.calo.evaluate` (see its module for every
convention); this job reads the samples slice by slice (h5py datasets larger than memory work), writes the files
and draws the plots.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpcgen.fidelity.calo import VERDICT_METRICS, CaloSample, FidelityConfig, evaluate, spectrum_edges_log10, summarise
from hpcgen.jobs.report_common import REF_STYLE, SCHEMA, TEST_STYLE, fmt, json_safe, md
from hpcgen.physics.calo_geometry import SamplingCalorimeter
from hpcgen.physics.shower_features import hit_threshold_gev

DEFAULT_CHUNK = 1000

PLOTS = {
    "verdict": "verdict.png",
    "longitudinal": "longitudinal_profile.png",
    "transverse": "transverse_profiles.png",
    "response": "response_vs_energy.png",
    "features": "feature_histograms.png",
    "spectrum": "cell_energy_spectrum.png",
}

DESCRIPTIONS = {
    "AUC_high_level": "DNN classifier AUC on the 34 high-level features (0.5 = indistinguishable)",
    "AUC_high_level_gbdt": "gradient-boosted classifier AUC, same features (cross-check)",
    "AUC_low_level": "DNN classifier AUC on the voxels (log10 E_p, 100·cell/E_p)",
    "JSD_high_level": "Jensen–Shannon divergence from the calibrated DNN (0 = indistinguishable)",
    "JSD_high_level_gbdt": "JSD from the calibrated gradient-boosted classifier",
    "JSD_low_level": "JSD from the calibrated voxel DNN",
    "S_e_vis_over_e_p": "separation power of E_vis/E_p",
    "S_layer_energy_median": "median over layers of S(visible energy in the layer)",
    "S_layer_energy_max": "largest per-layer S",
    "S_cell_energy_spectrum": "S of the cell-energy spectrum (cells above threshold)",
    "S_hit_count": "S of the number of cells above threshold",
    "FPD": "Fréchet physics distance, high-level features (JetNet)",
    "KPD": "kernel physics distance, high-level features (JetNet)",
}

CONVENTIONS = {
    "separation_power": "S = ½ Σ (h1 − h2)²/(h1 + h2) on unit-sum histograms, bins = the reference half's quantiles "
    "(`bins` equal-count bins) plus under- and overflow bins; never the union of both samples.",
    "floor": "every metric is computed for `resamples` splits of the reference into disjoint halves A, B of "
    "`half_size` showers: floor = metric(A, B), value = metric(A, T) for `half_size` test showers. Value: median over "
    "resamples (± std); floor: p50 and p95. Within floor p95 = value <= floor p95.",
    "classifier": "CaloChallenge DNN (Linear–LeakyReLU, hidden layers × width as in `classifier`), Adam, BCE; "
    "k folds (one tests, the next validates and calibrates by isotonic regression, the rest trains); AUC and "
    "JSD = (ln 2 − BCE)/ln 2 on the out-of-fold calibrated probabilities; value: mean ± std over seeds.",
    "high_level_features": "log10 E_p, E_vis/E_p, the 25 layer fractions, energy-weighted centroid and width along "
    "x, y, depth (mm), hit count above threshold.",
    "fpd_kpd": "JetNet (arXiv:2211.10295): features / the reference's max |value|; FPD extrapolated to 1/N → 0 over "
    "batch sizes N/5..N; KPD = unbiased MMD² with kernel (x·y/d + 1)^4, median over 10 batches of half the sample.",
    "cell_energy_spectrum": "cells above the hit threshold of all showers, log10(E/GeV) in fixed bins of 0.05 decade.",
    "moments": "energy-weighted mean and standard deviation of cell-centre positions; x = y = 0 is the beam axis, "
    "depth from the front face at active-layer centres; empty showers give 0.",
}


def _figure(nrows: int = 1, ncols: int = 1, size=(6.4, 4.4)):
    # Figure without pyplot: no global backend switch, no figure registry; savefig renders with Agg.
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _pooled(metrics: dict) -> dict:
    return metrics["groups"][-1]


def _plot_verdict(path: Path, metrics: dict) -> None:
    """Every verdict metric of the pooled group: value (± spread) beside its floor p50–p95 band, on one axis each."""
    rows = [r for r in _pooled(metrics)["verdict"] if r["value"] is not None]
    fig, axes = _figure(len(rows), 1, size=(7.0, 0.55 * len(rows) + 0.8))
    for ax, r in zip(axes[:, 0], rows):
        lo = min(r["floor_p50"], r["value"]) if r["floor_p50"] is not None else r["value"]
        hi = max(r["floor_p95"] or r["value"], r["value"])
        ax.axvspan(r["floor_p50"], r["floor_p95"], color="0.8", lw=0)
        ax.errorbar([r["value"]], [0], xerr=[[r["spread"] or 0], [r["spread"] or 0]], fmt="o",
                    color="tab:green" if r["within_floor_p95"] else "tab:red")
        pad = 0.15 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-6)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_yticks([])
        ax.set_ylabel(r["metric"], rotation=0, ha="right", va="center", fontsize="small")
        ax.tick_params(axis="x", labelsize="small")
    fig.suptitle("Verdict (pooled): value vs reference floor p50–p95 (grey)", fontsize="medium")
    fig.savefig(path, dpi=100)


def _plot_longitudinal(path, ref: CaloSample, test: CaloSample, geometry, labels) -> None:
    fig, ax = _figure()
    ax = ax[0, 0]
    z = geometry.layer_centres_mm()
    nl = geometry.n_layers
    for s, label, style in ((ref, labels[0], REF_STYLE), (test, labels[1], TEST_STYLE)):
        frac = s.high_level[:, 2:2 + nl]
        m, sd = frac.mean(axis=0), frac.std(axis=0)
        ax.plot(z, m, marker="o", ms=3, label=f"{label} (N={len(s)})", **style)
        ax.fill_between(z, np.maximum(m - sd, 0), m + sd, alpha=0.2, lw=0, **style)
    ax.set_xlabel("depth of active layer [mm]")
    ax.set_ylabel("fraction of visible energy per layer")
    ax.set_title("Longitudinal profile (mean ± 1 std over showers)")
    sec = ax.secondary_xaxis("top", functions=(lambda d: d / geometry.x0_eff_mm, lambda t: t * geometry.x0_eff_mm))
    sec.set_xlabel(r"depth [$X_0$]")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _plot_transverse(path, ref: CaloSample, test: CaloSample, geometry, labels) -> None:
    fig, axes = _figure(1, 2, size=(10.0, 4.2))
    c = geometry.cell_centres_mm()
    edges = np.append(c - 0.5 * geometry.cell_size_mm, c[-1] + 0.5 * geometry.cell_size_mm)
    for ax, axis, key in ((axes[0, 0], "x", "x_profile_sum"), (axes[0, 1], "y", "y_profile_sum")):
        for s, label, style in ((ref, labels[0], REF_STYLE), (test, labels[1], TEST_STYLE)):
            prof = getattr(s, key) / max(s.n_nonempty, 1)
            ax.stairs(np.where(prof > 0, prof, np.nan), edges, lw=1.5, label=f"{label} (N={len(s)})", **style)
        ax.set_yscale("log")
        ax.set_xlabel(f"{axis} [mm]")
        ax.set_ylabel("mean fraction of visible energy per column")
        ax.set_title(f"Transverse {axis} profile")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _plot_response(path, metrics: dict, labels) -> None:
    groups = [g for g in metrics["groups"] if g["energy_gev"] is not None]
    fig, axes = _figure(1, 2, size=(10.0, 4.2))
    for side, label, style, shift in (("ref", labels[0], REF_STYLE, 0.985), ("test", labels[1], TEST_STYLE, 1.015)):
        e = np.array([g["energy_gev"] for g in groups]) * shift
        mean = [g["response"][side]["mean"] for g in groups]
        err = [g["response"][side]["mean_err"] for g in groups]
        width = [g["response"][side]["rel_width"] for g in groups]
        werr = [g["response"][side]["rel_width_err"] for g in groups]
        axes[0, 0].errorbar(e, mean, yerr=err, fmt="o", ms=4, capsize=3, label=label, **style)
        axes[0, 1].errorbar(e, width, yerr=werr, fmt="o", ms=4, capsize=3, label=label, **style)
    for ax, ylabel in ((axes[0, 0], r"mean $E_\mathrm{vis}/E_p$"), (axes[0, 1], r"relative width $\sigma/\mu$")):
        if groups:
            ax.set_xscale("log")
        ax.set_xlabel(r"primary energy $E_p$ [GeV]")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.suptitle("Response and resolution per primary energy (± standard error)")
    fig.savefig(path, dpi=110)


def _plot_features(path, ref: CaloSample, test: CaloSample, labels, pooled_rows) -> None:
    names = ["e_vis_over_e_p", "x_mean_mm", "y_mean_mm", "depth_mean_mm", "x_std_mm", "y_std_mm", "depth_std_mm",
             "hit_count", "layer_energy_05", "layer_energy_10", "layer_energy_15", "layer_energy_20"]
    hr, ht = ref.histogram_features(), test.histogram_features()
    names = [n for n in names if n in hr]
    ncols = 4
    nrows = -(-len(names) // ncols)
    fig, axes = _figure(nrows, ncols, size=(15.0, 3.2 * nrows))
    for ax, k in zip(axes.ravel(), names):
        a, b = hr[k], ht[k]
        lo, hi = np.percentile(a, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        pad = 0.1 * (hi - lo)
        edges = np.linspace(lo - pad, hi + pad, 41)
        ax.hist(np.clip(a, edges[0], edges[-1]), bins=edges, density=True, histtype="stepfilled", alpha=0.25, **REF_STYLE)
        ax.hist(np.clip(a, edges[0], edges[-1]), bins=edges, density=True, histtype="step", lw=1.5, label=labels[0],
                **REF_STYLE)
        ax.hist(np.clip(b, edges[0], edges[-1]), bins=edges, density=True, histtype="step", lw=1.5, label=labels[1],
                **TEST_STYLE)
        ax.set_xlabel(k + " (edge bins hold the overflow)")
        row = pooled_rows.get(f"S_{k}")
        if row:
            ax.set_title(f"S = {fmt(row['value'])} (floor p95 {fmt(row['floor_p95'])})", fontsize="medium")
        ax.legend(fontsize="small")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"Per-shower features: {labels[1]} (N={len(test)}) vs {labels[0]} (N={len(ref)})")
    fig.savefig(path, dpi=100)


def _plot_spectrum(path, ref: CaloSample, test: CaloSample, labels, thr: float) -> None:
    fig, ax = _figure()
    ax = ax[0, 0]
    edges = spectrum_edges_log10()
    hr, ht = ref.spectrum.sum(axis=0), test.spectrum.sum(axis=0)
    occupied = np.flatnonzero((hr + ht) > 0)
    if occupied.size:
        lo, hi = max(occupied[0] - 1, 0), min(occupied[-1] + 2, edges.size - 1)
        e = 10.0 ** edges[lo:hi + 1]
        for h, n, label, style in ((hr, len(ref), labels[0], REF_STYLE), (ht, len(test), labels[1], TEST_STYLE)):
            density = h[lo:hi] / n / (edges[1] - edges[0])  # cells per shower per decade
            ax.stairs(np.where(density > 0, density, np.nan), e, label=f"{label} (N={n})", lw=1.5, **style)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.axvline(thr, ls="--", color="tab:blue", lw=1, label=f"hit threshold {thr * 1e6:.3g} keV")
    ax.set_xlabel("cell energy [GeV]")
    ax.set_ylabel("cells per shower per decade")
    ax.set_title("Cell-energy spectrum (cells above threshold)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.savefig(path, dpi=110)


def _yes_no(v) -> str:
    return "–" if v is None else ("yes" if v else "**no**")


def _value(r: dict) -> str:
    return fmt(r["value"]) + ("" if not r.get("spread") else f" ± {fmt(r['spread'])}")


def _report(metrics: dict) -> str:
    r, t = metrics["ref"], metrics["test"]
    pooled = _pooled(metrics)
    lines = [
        f"# Calorimeter validation: {md(t['label'])} vs {md(r['label'])}",
        "",
        f"## Verdict ({md(pooled['label'])}: {pooled['half_size']} showers per side, "
        f"{metrics['config']['resamples']} reference-vs-reference resamples)",
        "",
        "| metric | value | floor p50 | floor p95 | within floor p95 |",
        "|---|---|---|---|---|",
    ]
    for row in pooled["verdict"]:
        lines.append(f"| {row['metric']} | {_value(row)} | {fmt(row['floor_p50'])} | {fmt(row['floor_p95'])} | "
                     f"{_yes_no(row['within_floor_p95'])} |")
    n_in = sum(bool(x["within_floor_p95"]) for x in pooled["verdict"])
    lines += ["", f"{n_in} of {len(pooled['verdict'])} metrics within the reference's floor p95.", "",
              "| role | label | file | showers |", "|---|---|---|---|",
              f"| reference | {md(r['label'])} | {md(r['file'])} | {r['n']} |",
              f"| test | {md(t['label'])} | {md(t['file'])} | {t['n']} |", ""]
    per_energy = [g for g in metrics["groups"] if g["energy_gev"] is not None]
    if per_energy:
        keys = [k for k in ("AUC_high_level", "S_e_vis_over_e_p", "S_layer_energy_median", "FPD")
                if any(k in g["metrics"] for g in per_energy)]
        lines += ["## Per primary energy", "",
                  "Each cell: value (floor p95), ✓ within the floor. Response: mean E_vis/E_p and σ/μ, test vs "
                  "reference.", "",
                  "| E_p [GeV] | half size | " + " | ".join(keys) + " | E_vis/E_p test / ref | σ/μ test / ref |",
                  "|---" * (len(keys) + 4) + "|"]
        for g in per_energy:
            cells = []
            for k in keys:
                row = g["metrics"].get(k)
                cells.append("–" if row is None else f"{fmt(row['value'])} ({fmt(row['floor_p95'])})"
                             + (" ✓" if row["within_floor_p95"] else ""))
            rs, ts = g["response"]["ref"], g["response"]["test"]
            lines.append(f"| {g['energy_gev']:g} | {g['half_size']} | " + " | ".join(cells)
                         + f" | {fmt(ts['mean'])} / {fmt(rs['mean'])} | {fmt(ts['rel_width'])} / {fmt(rs['rel_width'])} |")
        lines.append("")
    lines += ["## Every metric (pooled)", "", "| metric | value | floor p50 | floor p95 | within |", "|---|---|---|---|---|"]
    for name, row in pooled["metrics"].items():
        lines.append(f"| {name} | {_value(row)} | {fmt(row['floor_p50'])} | {fmt(row['floor_p95'])} | "
                     f"{_yes_no(row['within_floor_p95'])} |")
    lines += ["", "## Metrics", ""] + [f"- **{k}**: {v}" for k, v in DESCRIPTIONS.items()] + [""]
    lines += ["## Plots", ""] if metrics["plots"] else []
    for name in metrics["plots"]:
        lines += [f"![{name}]({name})", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in metrics["conventions"].items()] + [""]
    return "\n".join(lines)


def _add_verdicts(groups: list[dict]) -> None:
    for g in groups:
        g["verdict"] = [{k: v for k, v in g["metrics"][m].items() if k not in ("values", "floor_values")}
                        for m in VERDICT_METRICS if m in g["metrics"]]


def validate_calo(
    ref_ecal,
    ref_energy,
    test_ecal,
    test_energy,
    geometry: SamplingCalorimeter,
    out_dir: str | Path | None,
    ref_label: str = "ref",
    test_label: str = "test",
    ref_name: str | None = None,
    test_name: str | None = None,
    *,
    config: FidelityConfig = FidelityConfig(),
    threshold_gev: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    plots: bool = True,
    warn=None,
) -> dict:
    """Compare ``test`` showers with ``ref`` showers; write metrics.json, PNG plots and report.md to ``out_dir``
    (nothing is written when ``out_dir`` is None, e.g. inside a benchmark).

    ``*_ecal``: (N, nx, ny, nz) arrays or h5py datasets of visible energy in GeV, matching ``geometry.shape``;
    ``*_energy``: (N,) primary energies in GeV (> 0). ``config``: bins, resamples, classifiers
    (:class:`hpcgen.fidelity.calo.FidelityConfig`). ``threshold_gev``: hit threshold (default 0.1 MIP). ``warn``
    receives one-line warnings (floors too wide). Returns the metrics dict written to ``out_dir/metrics.json``.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if threshold_gev is not None and not float(threshold_gev) >= 0:
        raise ValueError(f"threshold_gev must be >= 0, got {threshold_gev}")
    thr = hit_threshold_gev(geometry) if threshold_gev is None else float(threshold_gev)
    ref = summarise(ref_ecal, ref_energy, geometry, thr, int(chunk_size), f"reference ({ref_label})", config.low_level)
    test = summarise(test_ecal, test_energy, geometry, thr, int(chunk_size), f"test ({test_label})", config.low_level)
    result = evaluate(ref, {test_label: test}, config, warn=warn)[test_label]
    if not result["groups"]:
        raise ValueError(f"reference ({ref_label}) and test ({test_label}) share no primary energy with enough "
                         "showers for a floor")
    _add_verdicts(result["groups"])
    metrics = json_safe({
        "schema": SCHEMA,
        "domain": "calo",
        "ref": {"file": ref_name, "label": ref_label, "n": len(ref)},
        "test": {"file": test_name, "label": test_label, "n": len(test)},
        "geometry": geometry.to_dict(),
        "hit_threshold_gev": thr,
        **result,
        "plots": list(PLOTS.values()) if plots and out_dir is not None else [],
        "conventions": CONVENTIONS,
    })
    if out_dir is None:
        return metrics
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        labels = (ref_label, test_label)
        _plot_verdict(out / PLOTS["verdict"], metrics)
        _plot_longitudinal(out / PLOTS["longitudinal"], ref, test, geometry, labels)
        _plot_transverse(out / PLOTS["transverse"], ref, test, geometry, labels)
        _plot_response(out / PLOTS["response"], metrics, labels)
        _plot_features(out / PLOTS["features"], ref, test, labels, _pooled(metrics)["metrics"])
        _plot_spectrum(out / PLOTS["spectrum"], ref, test, labels, thr)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(_report(metrics))
    return metrics
