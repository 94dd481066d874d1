"""``hpcgen validate ising``: the 2D Ising fidelity of :mod:`hpcgen.fidelity.ising` written out as metrics.json, PNG
plots and report.md, which opens with the verdict table (metric, value, floor p50 / p95, within floor p95).

Plots against T: E, |M|, C_v, χ, U4 of both samples with bootstrap error bars and the exact curves (Kaufman's
finite-L E and C_v at the files' L as solid lines, the L = 4 enumeration's |M|, χ, U4 when L = 4, Onsager's E and
Yang's |M| for L → ∞ dashed and labelled so); G(r) at up to four temperatures; every verdict metric against T with
its floor band. docs/ising.md, "Validation".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hpcgen.fidelity.ising import (
    CONVENTIONS,
    LABELS,
    OBSERVABLES,
    UNITS,
    IsingFidelityConfig,
    evaluate,
    exact_curves,
    summarise,
)
from hpcgen.jobs.report_common import REF_STYLE, SCHEMA, TEST_STYLE, fmt, json_safe, md
from hpcgen.physics.ising_exact import T_C

PLOTS = {
    "observables": "observables_vs_T.png",
    "correlation": "correlation_function.png",
    "verdict": "verdict_vs_T.png",
}
CURVE_POINTS = 200
MAX_G_PANELS = 4
AXIS_LABELS = {"E": "energy per site E [J]", "absM": r"$\langle|m|\rangle$ per site", "Cv": r"$C_v$ per site [$k_B$]",
               "chi": r"$\chi$ per site [1/J]", "U4": r"Binder cumulant $U_4$"}


# --- plots ---------------------------------------------------------------------------------------------------------
def _figure(size, **subplots):
    # Figure without pyplot: no global backend switch, no figure registry; savefig renders with Agg.
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(squeeze=False, **subplots)


def _sides(metrics: dict):
    return (("ref", f"{metrics['ref']['label']} (ref)", REF_STYLE, -1), ("test", f"{metrics['test']['label']} (test)",
                                                                          TEST_STYLE, 1))


def _plot_observables(path: Path, metrics: dict) -> None:
    per_t, curves, L = metrics["per_temperature"], metrics["exact_curves"], metrics["L"]
    temps = np.array([e["temperature"] for e in per_t])
    grid = np.array(curves["temperature"])
    dx = 0.004 * (grid[-1] - grid[0])  # the two samples side by side at each T
    fig, axes = _figure((13.5, 7.6), nrows=2, ncols=3)
    for ax, k in zip(axes.ravel(), [k for k in OBSERVABLES if k != "G"]):
        for side, label, style, shift in _sides(metrics):
            y = [e["observables"][k][side] for e in per_t]
            err = [e["observables"][k][f"{side}_err"] for e in per_t]
            ax.errorbar(temps + shift * dx, y, yerr=err, fmt="o", ms=4, capsize=3, label=label, **style)
        if k in curves["kaufman"]:
            ax.plot(grid, curves["kaufman"][k], color="tab:blue", lw=1.2, label=f"exact, L = {L} (Kaufman)")
        if curves["enumeration"] and k in curves["enumeration"]:
            ax.plot(grid, curves["enumeration"][k], color="tab:blue", lw=1.2, label=f"exact, L = {L} (enumeration)")
        if k == "E":
            ax.plot(grid, curves["onsager_E"], color="tab:green", ls="--", lw=1.2, label="L → ∞ (Onsager)")
        if k == "absM":
            ax.plot(grid, curves["yang_absM"], color="tab:green", ls="--", lw=1.2, label="L → ∞ (Yang)")
        ax.axvline(T_C, color="0.6", ls=":", lw=1)
        ax.set_xlabel(r"temperature $T$ [$J/k_B$] (dotted: $T_c$)")
        ax.set_ylabel(AXIS_LABELS[k])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    axes[1, 2].set_visible(False)
    fig.suptitle(f"{L}×{L} Ising observables (± bootstrap standard error): {metrics['test']['label']} vs "
                 f"{metrics['ref']['label']}")
    fig.savefig(path, dpi=100)


def _g_temperatures(per_t: list[dict]) -> list[int]:
    n = len(per_t)
    return sorted({round(float(i)) for i in np.linspace(0, n - 1, min(n, MAX_G_PANELS))})


def _plot_correlation(path: Path, metrics: dict) -> None:
    per_t = metrics["per_temperature"]
    chosen = _g_temperatures(per_t)
    fig, axes = _figure((3.6 * len(chosen) + 0.6, 3.8), nrows=1, ncols=len(chosen))
    for ax, i in zip(axes[0], chosen):
        e = per_t[i]
        g = e["observables"]["G"]
        r = np.array(g["r"], dtype=float)
        for side, label, style, shift in _sides(metrics):
            ax.errorbar(r + 0.06 * shift, g[side], yerr=g[f"{side}_err"], fmt="o-", ms=3, lw=1, capsize=2,
                        label=label, **style)
        row = next((x for x in metrics["verdict"] if x["key"] == "G" and x["temperature"] == e["temperature"]), None)
        extra = "" if row is None else f"\n|rel. diff| {fmt(row['value'])} (floor p95 {fmt(row['floor_p95'])})"
        ax.set_title(f"T = {e['temperature']:.4g}{extra}", fontsize="medium")
        ax.set_xlabel("distance r [lattice spacings]")
        ax.set_ylabel(r"$G(r) = \langle s_x s_{x+r}\rangle$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle("Spin–spin correlation along the axes (not connected), ± bootstrap standard error")
    fig.savefig(path, dpi=100)


def _plot_verdict(path: Path, metrics: dict) -> None:
    """Each verdict metric against T: value (± spread) and the floor p50–p95 band."""
    keys = [*[k for k in OBSERVABLES], "AUC"]
    fig, axes = _figure((14.0, 6.6), nrows=2, ncols=4)
    for ax, k in zip(axes.ravel(), keys):
        rows = [r for r in metrics["verdict"] if r["key"] == k and r["temperature"] is not None
                and r["value"] is not None and r["floor_p50"] is not None]
        if not rows:
            ax.set_visible(False)
            continue
        t = np.array([r["temperature"] for r in rows])
        p50, p95 = [r["floor_p50"] for r in rows], [r["floor_p95"] for r in rows]
        ax.vlines(t, p50, p95, color="0.75", lw=8, label="floor p50–p95")
        for ok, color in ((True, "tab:green"), (False, "tab:red")):
            sel = [i for i, r in enumerate(rows) if bool(r["within_floor_p95"]) == ok]
            if sel:
                ax.errorbar(t[sel], [rows[i]["value"] for i in sel], yerr=[rows[i]["spread"] or 0 for i in sel],
                            fmt="o", ms=4, capsize=2, color=color,
                            label="within floor p95" if ok else "above floor p95")
        if k == "AUC":
            ax.axhline(0.5, color="0.4", lw=0.8, ls=":")
        ax.set_xlabel(r"$T$ [$J/k_B$]")
        ax.set_ylabel("classifier AUC" if k == "AUC" else f"{LABELS[k]}: |rel. diff|")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    axes[1, 3].set_visible(False)
    fig.suptitle("Verdict per temperature: test value vs the reference-vs-reference floor")
    fig.savefig(path, dpi=100)


def _write_plots(out: Path, metrics: dict) -> None:
    _plot_observables(out / PLOTS["observables"], metrics)
    _plot_correlation(out / PLOTS["correlation"], metrics)
    _plot_verdict(out / PLOTS["verdict"], metrics)


# --- report --------------------------------------------------------------------------------------------------------
def _yes_no(v) -> str:
    return "–" if v is None else ("yes" if v else "**no**")


def _value(row: dict) -> str:
    return fmt(row["value"]) + ("" if not row.get("spread") else f" ± {row['spread']:.2g}")


def _pm(v, err) -> str:
    return f"{fmt(v)} ± {err:.2g}" if err is not None else fmt(v)


def _report(metrics: dict) -> str:
    r, t, cfg = metrics["ref"], metrics["test"], metrics["config"]
    lines = [
        f"# Ising validation: {md(t['label'])} vs {md(r['label'])} ({metrics['L']}×{metrics['L']})",
        "",
        "| metric | value | floor p50 | floor p95 | within floor p95 |",
        "|---|---|---|---|---|",
    ]
    for row in metrics["verdict"]:
        lines.append(f"| {md(row['metric'])} | {_value(row)} | {fmt(row['floor_p50'])} | {fmt(row['floor_p95'])} | "
                     f"{_yes_no(row['within_floor_p95'])} |")
    n_in = sum(bool(x["within_floor_p95"]) for x in metrics["verdict"])
    lines += ["", f"{n_in} of {len(metrics['verdict'])} verdict rows within the reference's floor p95. Floors: the "
              f"reference against itself on {cfg['resamples']} random pairs of disjoint halves per temperature "
              f"(classifier: {cfg['classifier_resamples']}); smaller is closer.", ""]
    lines += [f"**Warning:** {md(w)}" for w in metrics["warnings"]]
    lines += ["", "| role | label | file | algorithm | configurations | temperatures |", "|---|---|---|---|---|---|"]
    for role, s in (("reference", r), ("test", t)):
        lines.append(f"| {role} | {md(s['label'])} | {md(s['file'])} | {md(s['algorithm'])} | {s['n']} | "
                     f"{len(s['temperatures'])} |")
    lines += ["", f"Compared at {len(metrics['temperatures'])} shared temperature(s): "
              + ", ".join(f"{x:.6g}" for x in metrics["temperatures"]) + ".", "",
              "## Observables (whole samples, ± bootstrap standard error)", "",
              "| T | observable | ref | test | rel. diff | |rel. diff| (median over resamples) | floor p95 |",
              "|---|---|---|---|---|---|---|"]
    for e in metrics["per_temperature"]:
        for k in OBSERVABLES:
            o = e["observables"][k]
            if k == "G":
                ref, test, rel = "see plot", "see plot", "–"
            else:
                ref, test = _pm(o["ref"], o["ref_err"]), _pm(o["test"], o["test_err"])
                rel = _pm(o["rel_diff"], o["rel_diff_err"])
            fl = o["floor"]
            lines.append(f"| {e['temperature']:.6g} | {md(LABELS[k])} | {ref} | {test} | {rel} | {fmt(o['value'])} | "
                         f"{fmt(None if fl is None else fl['p95'])} |")
    lines += ["", "## Exact values at this L", "",
              "Pull = (sample − exact)/bootstrap error; a correct Monte Carlo sample has |pull| of order 1.", "",
              "| T | observable | exact | source | ref pull | test pull |", "|---|---|---|---|---|---|"]
    for e in metrics["per_temperature"]:
        for k, x in e["exact"].items():
            lines.append(f"| {e['temperature']:.6g} | {md(LABELS[k])} | {fmt(x['value'])} | {md(x['source'])} | "
                         f"{fmt(x['ref_pull'])} | {fmt(x['test_pull'])} |")
    if metrics["L"] != 4:
        lines += ["", f"|M|, χ and U4 have no exact finite-L values at L = {metrics['L']} (enumeration: L = 4 only)."]
    lines += ["", "## Classifier", ""]
    if not cfg["classifier_enabled"]:
        lines.append("Not run (--no-classifier).")
    else:
        c = cfg["classifier"]
        lines += [f"DNN ({c['hidden_layers']} hidden layers of {c['hidden']}), {c['folds']}-fold, "
                  f"{c['seeds']} seed(s) per value; features: {CONVENTIONS['classifier'].split('; k-fold')[0]}; at "
                  f"most {cfg['max_configs'] or 'all'} configurations per temperature and sample.", "",
                  "| T | configurations per class | AUC | floor p50 | floor p95 |", "|---|---|---|---|---|"]
        entries = [(f"{e['temperature']:.6g}", e["classifier"]) for e in metrics["per_temperature"]]
        entries.append(("pooled", metrics["classifier_pooled"]))
        for label, c in entries:
            if c is not None:
                lines.append(f"| {label} | {c['n_per_class']} | {fmt(c['value'])} ± {c['spread']:.2g} | "
                             f"{fmt(c['floor']['p50'])} | {fmt(c['floor']['p95'])} |")
    lines += ["", "## Plots", ""] if metrics["plots"] else [""]
    for name in metrics["plots"]:
        lines += [f"![{name}]({name})", ""]
    lines += ["## Conventions", ""] + [f"- **{k}**: {v}" for k, v in metrics["conventions"].items()] + [""]
    return "\n".join(lines)


def _curve_grid(temperatures: list[float]) -> np.ndarray:
    lo, hi = min(temperatures), max(temperatures)
    pad = 0.08 * (hi - lo) if hi > lo else 0.25 * lo
    return np.linspace(max(lo - pad, 0.05 * lo), hi + pad, CURVE_POINTS)


def validate_ising(
    ref_spins,
    ref_temperature,
    test_spins,
    test_temperature,
    out_dir: str | Path | None,
    ref_label: str = "ref",
    test_label: str = "test",
    ref_name: str | None = None,
    test_name: str | None = None,
    *,
    ref_algorithm: str | None = None,
    test_algorithm: str | None = None,
    config: IsingFidelityConfig = IsingFidelityConfig(),
    plots: bool = True,
    warn=None,
    floor_cache: dict | None = None,
) -> dict:
    """Compare ``test`` configurations with ``ref`` configurations; write metrics.json, PNG plots and report.md to
    ``out_dir`` (nothing is written when it is None).

    ``*_spins``: (N, L, L) ±1 arrays or h5py datasets (read slice by slice), one L for both; ``*_temperature``: (N,)
    the temperature of each configuration in J/k_B, matched exactly between the samples. ``config``: resamples,
    bootstrap, classifier (:class:`hpcgen.fidelity.ising.IsingFidelityConfig`). ``warn`` receives one-line warnings.
    ``floor_cache``: shared by calls with one reference and config, the classifier floors are trained once. Returns the metrics dict written to ``out_dir/metrics.json``.
    """
    ref = summarise(ref_spins, ref_temperature, f"reference ({ref_label})", config.max_configs, config.seed)
    test = summarise(test_spins, test_temperature, f"test ({test_label})", config.max_configs, config.seed)
    result = evaluate(ref, test, config, warn=warn, floor_cache=floor_cache)
    metrics = json_safe({
        "schema": SCHEMA,
        "domain": "ising",
        "ref": {"file": ref_name, "label": ref_label, "algorithm": ref_algorithm, "n": len(ref),
                "temperatures": np.unique(ref.temperature).tolist()},
        "test": {"file": test_name, "label": test_label, "algorithm": test_algorithm, "n": len(test),
                 "temperatures": np.unique(test.temperature).tolist()},
        **result,
        "exact_curves": exact_curves(_curve_grid(result["temperatures"]), result["L"]),
        "plots": list(PLOTS.values()) if plots and out_dir is not None else [],
        "units": UNITS,
        "conventions": CONVENTIONS,
    })
    if out_dir is None:
        return metrics
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        _write_plots(out, metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out / "report.md").write_text(_report(metrics))
    return metrics
