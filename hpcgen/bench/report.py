"""Markdown report and PNG plots made from ``hpcgen.bench/1`` results files alone (nothing is re-run).

``render_report(paths, out_dir)`` writes ``out_dir/report.md`` and one or more PNGs per file. Renderers by kind:
``mc_throughput``/``throughput`` (samples/s vs energy per generator, speed-up at fidelity against
``config["reference"]``; an Ising result, ``config["domain"] == "ising"``: independent samples/s, τ_int and
fidelity per L and temperature, and the GAN's speed-up over each Monte Carlo), ``fused_ops`` (kernel speed-ups), ``scaling`` (efficiency vs ranks,
measured points and model predictions), ``fidelity`` (verdict tables per generator: value [floor p95] per metric and
energy), ``ising_mc`` (benchmarks/bench_ising_mc.py: the Ising Monte Carlo's exact checks with pulls, the Binder
crossing, τ_int against L at T_c with the fitted z, and a two-panel figure); any other kind gets a generic table of
its rows. Measured rows, model
predictions and literature anchors are always shown in separate, labelled tables. Numbers: 3 significant digits;
a summary reads ``median [min–max], n=N``; ``—`` is null (none, or not recorded).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hpcgen.bench.results import load_result

_STANDARD_KEYS = ("schema", "kind", "host", "config", "rows", "predictions", "literature", "created")
_RATE_KEYS = ("samples_per_s", "showers_per_s")  # the per-row rate summary of the throughput kinds


def fmt(x) -> str:
    """Floats to 3 significant digits (plain notation between 1e-3 and 1e6); ints, strings as they are."""
    if x is None:
        return "—"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int) or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e6:
        r = float(f"{x:.3g}")
        return f"{r:.{max(0, 2 - math.floor(math.log10(abs(r))))}f}"
    return f"{x:.3g}"


def _is_summary(v) -> bool:
    return isinstance(v, dict) and "median" in v


def _cell(v) -> str:
    if _is_summary(v):
        text = f"{fmt(v['median'])} [{fmt(v['min'])}–{fmt(v['max'])}], n={v['n']}"
    elif isinstance(v, (list, dict)):
        text = json.dumps(v)
        text = text if len(text) <= 40 else text[:39] + "…"
    else:
        text = fmt(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v and not _is_summary(v):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _table(rows: list[dict], columns: list[str] | None = None, headers: list[str] | None = None) -> list[str]:
    """A markdown table of ``rows`` (nested dicts flattened to ``a.b`` columns unless ``columns`` is given)."""
    if columns is None:
        rows = [_flatten(r) for r in rows]
        columns = list(dict.fromkeys(k for r in rows for k in r))
    headers = headers or columns
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines + [""]


def _new_figure(title: str):
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    return fig, ax


def _save(fig, out_dir: Path, name: str, caption: str) -> list[str]:
    fig.savefig(out_dir / name, dpi=110)
    return [f"![{caption}]({name})", ""]


def _rate(row: dict) -> dict | None:
    return next((row[k] for k in _RATE_KEYS if _is_summary(row.get(k))), None)


def _errorbar(ax, xs, summaries, **kw) -> None:
    med = [s["median"] for s in summaries]
    err = [[m - s["min"] for m, s in zip(med, summaries)], [s["max"] - m for m, s in zip(med, summaries)]]
    ax.errorbar(xs, med, yerr=err, capsize=3, **kw)


def _fidelity_cell(row: dict, key: str):
    """A fidelity entry of a throughput row: a number as it is, a metric with a floor as "value [floor p95]"."""
    v = (row.get("fidelity") or {}).get(key)
    if isinstance(v, dict):
        spread = f" ± {fmt(v['spread'])}" if v.get("spread") else ""
        return f"{fmt(v['value'])}{spread} [{fmt(v['floor_p95'])}]" + (" ✓" if v.get("within_floor_p95") else "")
    return v


def _speed_vs_fidelity(result: dict, stem: str, out_dir: Path) -> list[str]:
    """Samples/s against classifier AUC, one panel per energy, one point per generator and precision (the
    CaloChallenge's timing-against-AUC figure); the AUC floor p95 as a dotted line. Empty without AUCs."""
    rows = [r for r in result["rows"] if not r.get("scan") and isinstance((r.get("fidelity") or {}).get("AUC_high_level"), dict)
            and r.get("energy_gev") is not None]
    if not rows:
        return []
    energies = sorted({r["energy_gev"] for r in rows})
    fig = Figure(figsize=(3.2 * len(energies), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(energies), squeeze=False)[0]
    markers = dict(zip(sorted({(r["generator"], r.get("precision")) for r in rows}), "osD^v<>ph*"))
    for ax, e in zip(axes, energies):
        for r in (r for r in rows if r["energy_gev"] == e):
            auc = r["fidelity"]["AUC_high_level"]
            key = (r["generator"], r.get("precision"))
            ax.errorbar(auc["value"], r["samples_per_s"]["median"], xerr=auc.get("spread") or 0, fmt=markers[key],
                        capsize=2, label=" ".join(str(k) for k in key if k))
            ax.axvline(auc["floor_p95"], color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlim(0.45, 1.02)
        ax.set_xlabel("high-level classifier AUC")
        ax.set_title(f"{fmt(e)} GeV", fontsize=10)
    axes[0].set_ylabel(f"samples/s on {result['config'].get('cores_per_generator', '?')} core(s)")
    axes[-1].legend(fontsize=7)
    fig.suptitle("speed against fidelity (dotted: reference-vs-reference AUC floor p95)", fontsize=10)
    return ["### Speed against fidelity", ""] + _save(fig, out_dir, f"{stem}_speed_vs_fidelity.png",
                                                      "samples/s against classifier AUC per energy")


def ising_rate_figure(result: dict, path: Path) -> None:
    """Independent samples/s against T (log scale), one line per (generator, precision, L) of an Ising throughput
    result (main rows), T_c dotted; error bars: the rate's propagated relative error."""
    rows = [r for r in result["rows"] if not r.get("scan")]
    fig, ax = _new_figure("independent samples/s vs temperature (Ising)")
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        series.setdefault((r["generator"], r.get("precision"), r["L"]), []).append(r)
    for (gen, precision, L), rs in sorted(series.items(), key=lambda kv: (kv[0][2], str(kv[0][0]))):
        rs = sorted(rs, key=lambda r: r["temperature"])
        y = [r["independent_samples_per_s"] for r in rs]
        err = [v * min(r["independent_samples_per_s_rel_error"], 0.99) for v, r in zip(y, rs)]
        label = f"{gen} L={L}" + (f" {precision}" if rs[0].get("kind_of_generator") == "gan" else "")
        ax.errorbar([r["temperature"] for r in rs], y, yerr=err, marker="o", capsize=3, label=label)
    if result["config"].get("critical_temperature"):
        ax.axvline(result["config"]["critical_temperature"], color="grey", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("temperature T [J/k_B] (dotted: T_c)")
    ax.set_ylabel(f"independent samples/s on {result['config'].get('cores_per_generator', '?')} core(s)")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)


_ISING_FIDELITY = ("E", "absM", "Cv", "chi", "U4", "AUC")


def _render_ising_throughput(result: dict, stem: str, out_dir: Path) -> list[str]:
    """An Ising throughput result: per (L, T, generator) the raw rate, τ_int used, independent samples/s with its
    error and the fidelity against the row's reference; then the GAN's speed-up over each Monte Carlo."""
    config = result["config"]
    rows = [r for r in result["rows"] if not r.get("scan")]
    table = []
    for r in sorted(rows, key=lambda r: (r["L"], r["temperature"], r["kind_of_generator"] != "mc", r["generator"])):
        f = r.get("fidelity") or {}
        table.append({"L": r["L"], "T": r["temperature"], "generator": r["generator"],
                      "precision": r.get("precision"), "cores": r.get("cores"), "batch": r.get("batch"),
                      "rate": _rate(r), "tau_used": r.get("tau_used"), "tau": r.get("tau_int_used_sweeps"),
                      "indep": r["independent_samples_per_s"],
                      "indep_err": 100 * r["independent_samples_per_s_rel_error"],
                      "reference": f.get("reference"),
                      **{k: _fidelity_cell(r, k) for k in _ISING_FIDELITY}})
    cols = ["L", "T", "generator", "precision", "cores", "batch", "rate", "tau_used", "tau", "indep", "indep_err",
            "reference", *_ISING_FIDELITY]
    heads = ["L", "T [J/k_B]", "generator", "precision", "cores", "batch (sweeps or configs)",
             "sweeps/s or configs/s", "τ_int used", "τ_int [sweeps]", "independent samples/s", "± %",
             "fidelity vs", "E: abs. rel. diff [floor p95]", "abs M [p95]", "C_v [p95]", "χ [p95]", "U4 [p95]",
             "AUC [p95]"]
    lines = [(f"Every generator on the same {config.get('cores_per_generator')} core(s), one thread per rank. "
              "Independent samples/s = sweeps/s ÷ (2 τ_int), τ_int = max(τ_int(abs M), τ_int(E)) of the timed chain; "
              "the GAN's samples are independent (τ_int = 1/2). Fidelity per observable: abs(rel. diff) "
              "[reference-vs-reference floor p95], ✓ within it; the GAN against "
              f"`{config.get('reference')}`, each Monte Carlo against the other."), ""]
    lines += _table(table, cols, heads)
    png = f"{stem}_independent_rate.png"
    ising_rate_figure(result, out_dir / png)
    lines += [f"![independent samples/s vs T]({png})", ""]
    speed = result.get("speed_up") or []
    if speed:
        mcs = config.get("mc_generators", ["metropolis", "wolff"])
        scols = ["L", "temperature", "generator", "precision"]
        for m in mcs:
            scols += [f"speed_up_vs_{m}", f"gan_wins_vs_{m}"]
        table = [{**s, **{f"gan_wins_vs_{m}": ("wins" if s[f"gan_wins_vs_{m}"] else "loses")
                          for m in mcs if f"gan_wins_vs_{m}" in s}} for s in speed]
        lines += ["### Speed-up of the GAN in independent samples/s (per L and T)", ""] + _table(table, scols)
    return lines


def _render_throughput(result: dict, stem: str, out_dir: Path) -> list[str]:
    if result["config"].get("domain") == "ising":
        return _render_ising_throughput(result, stem, out_dir)
    rows, ref = result["rows"], result["config"].get("reference")
    lead = _speed_vs_fidelity(result, stem, out_dir)
    rate_key = next(k for k in _RATE_KEYS if any(_is_summary(r.get(k)) for r in rows))
    fid_keys = list(dict.fromkeys(k for r in rows for k, v in (r.get("fidelity") or {}).items()
                                  if isinstance(v, (dict, int, float))))
    flat = [{**r, **{f"fidelity.{k}": _fidelity_cell(r, k) for k in fid_keys}} for r in rows]
    ident = [c for c in ("generator", "kind_of_generator", "precision", "device", "cores", "energy_gev", "batch")
             if any(c in r for r in rows)]
    cols = ident + [rate_key] + [f"fidelity.{k}" for k in fid_keys]
    lines = lead + ["Measured throughput (median [min–max] over repeats):", ""] + _table(flat, cols)

    fig, ax = _new_figure(f"{rate_key} vs energy ({stem})")
    energies = sorted({r["energy_gev"] for r in rows if r.get("energy_gev") is not None})
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("energy_gev") is None:  # energy-independent rate (a GAN batch): a flat line
            label = " ".join(str(x) for x in (r["generator"], r.get("device"), f"batch {r.get('batch')}") if x)
            ax.axhline(_rate(r)["median"], linestyle="--", label=label)
        else:
            gan_batch = r.get("batch") if r.get("kind_of_generator") == "gan" else None
            series.setdefault((r["generator"], r.get("device"), gan_batch), []).append(r)
    for (gen, device, batch), rs in series.items():
        rs = sorted(rs, key=lambda r: r["energy_gev"])
        label = " ".join(str(x) for x in (gen, device, f"batch {batch}" if batch else None) if x)
        _errorbar(ax, [r["energy_gev"] for r in rs], [_rate(r) for r in rs], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*(energies[0] / 1.5, energies[-1] * 1.5) if energies else (1, 1000))
    if energies:
        ax.set_xticks(energies, [fmt(e) for e in energies])
        ax.minorticks_off()
    ax.set_xlabel("energy_gev")
    ax.set_ylabel(f"{rate_key} (median, min–max bars)")
    ax.legend(fontsize=8)
    lines += _save(fig, out_dir, f"{stem}_throughput.png", f"{rate_key} vs energy")

    if ref is not None:
        ref_rate = {r["energy_gev"]: _rate(r) for r in rows if r["generator"] == ref and _rate(r)}
        speed = []
        for r in rows:
            if r["generator"] == ref:
                continue
            for e in [r["energy_gev"]] if r.get("energy_gev") is not None else sorted(ref_rate):
                if e in ref_rate:
                    speed.append({**{c: r.get(c) for c in ident}, "energy_gev": e, "rate": _rate(r)["median"],
                                  "reference": ref_rate[e]["median"],
                                  "speed_up": _rate(r)["median"] / ref_rate[e]["median"],
                                  **{f"fidelity.{k}": _fidelity_cell(r, k) for k in fid_keys}})
        cols = ident + ["rate", "reference", "speed_up"] + [f"fidelity.{k}" for k in fid_keys]
        heads = ident + [f"{rate_key} median", f"{ref} {rate_key} median", f"speed-up vs {ref}"] + cols[len(ident) + 3:]
        lines += [f"### Speed-up at fidelity (reference: `{ref}`; medians at the same energy; fidelity as value "
                  "[reference-vs-reference floor p95], ✓ within it)", ""]
        lines += _table(speed, cols, heads) if speed else [f"No rows to compare with `{ref}`.", ""]
    return lines


def _render_fused_ops(result: dict, stem: str, out_dir: Path) -> list[str]:
    rows = result["rows"]
    table, labels, vs_eager, vs_compile = [], [], [], []
    for r in rows:
        t = r.get("time_ms", {})
        med = {k: (t.get(k) or {}).get("median") for k in ("fused", "eager", "torch.compile")}
        ratio = {k: med[k] / med["fused"] if med[k] and med["fused"] else None for k in ("eager", "torch.compile")}
        e, c = r.get("speedup_vs_eager", ratio["eager"]), r.get("speedup_vs_compile", ratio["torch.compile"])
        table.append({"op": r.get("op"), "variant": r.get("variant"), "batch": r.get("batch"), **med,
                      "vs_eager": e, "vs_compile": c})
        labels.append(f"{r.get('op')} {r.get('variant')} B={r.get('batch')}")
        vs_eager.append(math.nan if e is None else e)
        vs_compile.append(math.nan if c is None else c)
    cols = ["op", "variant", "batch", "fused", "eager", "torch.compile", "vs_eager", "vs_compile"]
    heads = ["op", "variant", "batch", "fused ms (median)", "eager ms (median)", "torch.compile ms (median)",
             "speed-up vs eager", "speed-up vs torch.compile"]
    lines = ["Measured times (medians; full spread in the file):", ""] + _table(table, cols, heads)
    fig, ax = _new_figure(f"fused op speed-ups ({stem})")
    fig.set_size_inches(max(7, 0.5 * len(rows)), 6)
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], vs_eager, width=0.4, label="vs eager")
    ax.bar([i + 0.2 for i in x], vs_compile, width=0.4, label="vs torch.compile")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xticks(list(x), labels, fontsize=7, rotation=60, ha="right")
    ax.set_ylabel("speed-up of the fused op (×)")
    ax.legend(fontsize=8)
    return lines + _save(fig, out_dir, f"{stem}_speedups.png", "fused op speed-ups")


def _mode(row: dict, config: dict) -> str:
    mode = row.get("mode") or str(config.get("mode", "")).split(" ")[0]
    return mode if mode in ("weak", "strong") else ""


def _render_scaling(result: dict, stem: str, out_dir: Path) -> list[str]:
    rows, config = result["rows"], result["config"]
    table = [{**r, "mode": _mode(r, config)} for r in rows]
    cols = [c for c in ("model", "engine", "mode", "ranks", "batch_per_rank") if any(t.get(c) for t in table)]
    cols += ["samples_per_s_total", "efficiency"]
    lines = ["Measured rows:", ""] + _table(table, cols)
    fig, ax = _new_figure(f"parallel efficiency vs ranks ({stem})")
    measured: dict[tuple, list[dict]] = {}
    for t in table:
        if t.get("efficiency") is not None:
            measured.setdefault((t.get("model"), t.get("engine"), t["mode"]), []).append(t)
    for key, ts in measured.items():
        ts = sorted(ts, key=lambda t: t["ranks"])
        ax.plot([t["ranks"] for t in ts], [t["efficiency"] for t in ts], marker="o", linestyle="none",
                label="measured " + " ".join(k for k in key if k))
    predicted: dict[tuple, list[dict]] = {}
    for p in result.get("predictions", []):
        if p.get("efficiency") is not None and p.get("ranks") is not None:
            key = (p.get("network"), p.get("model"), p.get("engine"), p.get("mode"))
            predicted.setdefault(key, []).append(p)
    for (network, *rest), ps in predicted.items():
        ps = sorted(ps, key=lambda p: p["ranks"])
        suffix = " ".join(str(k) for k in rest if k)
        ax.plot([p["ranks"] for p in ps], [p["efficiency"] for p in ps], linestyle="-",
                label=f"prediction ({network})" + (f" {suffix}" if suffix else ""))
    ax.set_xscale("log", base=2)
    ranks = sorted({t["ranks"] for ts in measured.values() for t in ts}
                   | {p["ranks"] for ps in predicted.values() for p in ps})
    if ranks:
        ax.set_xticks(ranks, [str(r) for r in ranks])
        ax.set_xlim(ranks[0] / 1.3, ranks[-1] * 1.3)
    ax.set_xlabel("ranks")
    ax.set_ylabel("efficiency")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return lines + _save(fig, out_dir, f"{stem}_efficiency.png", "efficiency vs ranks")


def _render_fidelity(result: dict, stem: str, out_dir: Path) -> list[str]:
    """Verdict tables of a ``fidelity`` result: per generator, metric rows × groups (energies, pooled), each cell
    "value [floor p95]" and ✓ where the value is within the reference-vs-reference floor p95."""
    rows = [r for r in result["rows"] if r["metric"] != "response"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    lines = [f"Reference: `{result['config'].get('reference')}`; each cell: median over resamples (classifiers: mean "
             "over seeds) [floor p95]; ✓ within the floor p95.", ""]
    for gen in dict.fromkeys(r["generator"] for r in rows):
        mine = [r for r in rows if r["generator"] == gen]
        table = []
        for metric in dict.fromkeys(r["metric"] for r in mine):
            cells = {r["group"]: r for r in mine if r["metric"] == metric}
            table.append({"metric": metric, **{g: (f"{fmt(cells[g]['value']['median'])} [{fmt(cells[g]['floor_p95'])}]"
                                                   + (" ✓" if cells[g]["within_floor_p95"] else ""))
                                               if g in cells else None for g in groups}})
        lines += [f"### `{gen}` vs `{result['config'].get('reference')}`", ""] + _table(table, ["metric", *groups])
        resp = [r for r in result["rows"] if r["generator"] == gen and r["metric"] == "response"]
        if resp:
            lines += ["E_vis/E_p mean and relative width, test / reference:", ""] + _table(
                [{"group": r["group"], "mean": f"{fmt(r['value']['median'])} / {fmt(r['reference']['mean'])}",
                  "rel_width": f"{fmt(r['rel_width'])} / {fmt(r['reference']['rel_width'])}"} for r in resp])
    return lines


def _pm(value: float, error: float) -> str:
    """"value ± error" with the error to two significant digits and the value to the same decimals."""
    if not (error and math.isfinite(error)):
        return f"{fmt(value)} ± {fmt(error)}"
    decimals = max(0, 1 - math.floor(math.log10(abs(error))))
    return f"{value:.{decimals}f} ± {error:.{decimals}f}"


_OBSERVABLE_LABELS = {"e": "e", "abs_m": "|m|", "C_v": "C_v", "chi": "χ", "U4": "U4"}


def _ising_label(r: dict) -> str:
    return f"{r['algorithm'][:4]} {_OBSERVABLE_LABELS.get(r['observable'], r['observable'])} L={r['L']} " \
           f"T={r['temperature']:.3g} ({r['check']})"


def ising_mc_figure(result: dict, path: Path) -> None:
    """Two panels from an ``ising_mc`` result: τ_int(|m|) against L at T_c (log-log, both algorithms, the fitted
    power laws with z in the legend: solid over L ≥ 16, dotted over all L) and the pulls (MC − exact)/σ of the
    exact-check rows with the ±3σ band."""
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.1])
    colours = {"metropolis": "C0", "wolff": "C3"}
    tau = [r for r in result["rows"] if r.get("section") == "tau" and r["observable"] == "abs_m"]
    fits = {(f["algorithm"], f["L_min"]): f for f in result.get("fits", [])
            if f["observable"] == "abs_m" and f.get("z") is not None}
    for alg in dict.fromkeys(r["algorithm"] for r in tau):
        rs = sorted((r for r in tau if r["algorithm"] == alg), key=lambda r: r["L"])
        Ls = [r["L"] for r in rs]
        left.errorbar(Ls, [r["tau"] for r in rs], yerr=[r["error"] for r in rs], fmt="o", capsize=3,
                      color=colours.get(alg), label=f"{alg} (measured)")
        for L_min, style in ((16, "-"), (min(Ls), ":")):
            f = fits.get((alg, L_min))
            if f is None or (L_min == min(Ls) and L_min == 16):
                continue
            x = [min(f["L"]), max(f["L"])]
            left.plot(x, [f["amplitude"] * v ** f["z"] for v in x], style, color=colours.get(alg),
                      label=f"{alg} fit L ≥ {L_min}: z = {f['z']:.2f} ± {f['z_err_scaled']:.2f}")
    left.set_xscale("log", base=2)
    left.set_yscale("log")
    Ls = sorted({r["L"] for r in tau})
    if Ls:
        left.set_xticks(Ls, [str(v) for v in Ls])
        left.minorticks_off()
    left.set_xlabel("L")
    left.set_ylabel("τ_int(|m|) at T_c [sweeps; Wolff: Wolff sweeps]")
    left.set_title("critical slowing down: τ_int ∝ L^z", fontsize=10)
    left.legend(fontsize=7)

    exact = [r for r in result["rows"] if r.get("section") == "exact"]
    y = list(range(len(exact)))[::-1]
    right.axvspan(-3, 3, color="0.9", label="±3σ")
    right.axvline(0, color="grey", lw=0.8)
    for alg in dict.fromkeys(r["algorithm"] for r in exact):
        sel = [(yy, r) for yy, r in zip(y, exact) if r["algorithm"] == alg]
        right.plot([r["pull"] for _, r in sel], [yy for yy, _ in sel], "o", color=colours.get(alg), label=alg)
    right.set_yticks(y, [_ising_label(r) for r in exact], fontsize=6)
    lim = max([3.5] + [abs(r["pull"]) + 0.5 for r in exact])
    right.set_xlim(-lim, lim)
    right.set_xlabel("pull (MC − exact)/σ")
    right.set_title("Monte Carlo against exact results", fontsize=10)
    right.legend(fontsize=7, loc="lower right")
    fig.savefig(path, dpi=110)


def _render_ising_mc(result: dict, stem: str, out_dir: Path) -> list[str]:
    """An ``ising_mc`` result (benchmarks/bench_ising_mc.py): the exact checks with pulls, the Binder crossing,
    τ_int against L at T_c and the fitted dynamic exponents z, then the figure."""
    rows = result["rows"]
    exact = [r for r in rows if r.get("section") == "exact"]
    table = [{"check": r["check"], "algorithm": r["algorithm"], "L": r["L"], "T": f"{r['temperature']:.4f}",
              "observable": _OBSERVABLE_LABELS.get(r["observable"], r["observable"]),
              "mc": _pm(r["value"], r["error"]), "exact": f"{r['exact']:.6f}", "pull": f"{r['pull']:+.2f}",
              "ok": "✓" if r["within_3sigma"] else "✗", "method": r["error_method"]} for r in exact]
    cols = ["check", "algorithm", "L", "T", "observable", "mc", "exact", "pull", "ok", "method"]
    heads = ["check", "algorithm", "L", "T [J/k_B]", "observable", "MC ± σ", "exact", "pull (MC − exact)/σ",
             "within 3σ", "σ from"]
    n_ok = sum(r["within_3sigma"] for r in exact)
    lines = [f"### Exact checks: {n_ok} of {len(exact)} within 3σ", ""] + _table(table, cols, heads)
    shifts = [r for r in exact if r.get("kaufman_minus_onsager_over_sigma") is not None]
    if shifts:
        worst = max(abs(r["kaufman_minus_onsager_over_sigma"]) for r in shifts)
        lines += [(f"Kaufman's exact finite-L energy differs from Onsager's L → ∞ value by at most "
                   f"{fmt(worst)} σ in the Onsager rows (negligible)."), ""]
    binder = [r for r in rows if r.get("section") == "binder"]
    if binder:
        table = [{"T": f"T_c {r['T_minus_Tc']:+.2f}", "small": _pm(**r["U4_small"]), "large": _pm(**r["U4_large"]),
                  "diff": _pm(r["difference"], r["difference_error"]), "pull": f"{r['pull']:+.1f}",
                  "expected": r["expected_sign"], "ok": "✓" if r["passes"] else "✗"} for r in binder]
        s, g = binder[0]["L_small"], binder[0]["L_large"]
        lines += [f"### Binder crossing ({binder[0]['algorithm']})", ""] + _table(
            table, ["T", "small", "large", "diff", "pull", "expected", "ok"],
            ["T", f"U4(L={s})", f"U4(L={g})", f"U4({g}) − U4({s})", "difference/σ", "expected", "passes (3σ)"])
    tau = [r for r in rows if r.get("section") == "tau"]
    if tau:
        table = []
        for r in tau:
            table.append({"algorithm": r["algorithm"], "L": r["L"],
                          "observable": _OBSERVABLE_LABELS.get(r["observable"], r["observable"]),
                          "tau": _pm(r["tau"], r["error"]), "from": r["error_used"], "chains": r["n_chains"],
                          "sweeps": "/".join(str(n) for n in dict.fromkeys(r["sweeps"])),
                          "windows": ", ".join(str(w) for w in r["windows"]),
                          "n_over_tau": f"{r['min_n_over_tau']:.0f}", "reliable": "yes" if r["reliable"] else "no",
                          "ns": fmt(r["ns_per_update"]["median"])})
        cols = ["algorithm", "L", "observable", "tau", "from", "chains", "sweeps", "windows", "n_over_tau",
                "reliable", "ns"]
        heads = ["algorithm", "L", "observable", "τ_int [sweeps] ± σ", "σ from", "chains", "sweeps per chain",
                 "windows W", "min N/τ", "reliable", "ns per update (Metropolis) / flipped spin (Wolff)"]
        lines += [f"### τ_int at T_c = {result['config'].get('critical_temperature', 2.269185):.6f}", ""]
        lines += _table(table, cols, heads)
    fits = [f for f in result.get("fits", []) if f.get("z") is not None]
    if fits:
        table = [{"algorithm": f["algorithm"], "observable": _OBSERVABLE_LABELS.get(f["observable"], f["observable"]),
                  "L": ", ".join(str(v) for v in f["L"]), "z": _pm(f["z"], f["z_err"]),
                  "chi2": f"{f['chi2']:.1f}/{f['dof']}", "z_scaled": _pm(f["z"], f["z_err_scaled"])} for f in fits]
        lines += ["### Dynamic exponent z: weighted least squares of ln τ_int on ln L", ""] + _table(
            table, ["algorithm", "observable", "L", "z", "chi2", "z_scaled"],
            ["algorithm", "observable", "sizes L", "z ± σ (weights)", "χ²/dof", "z ± σ·√max(1, χ²/dof)"])
    png = f"{stem}_ising_mc.png"
    ising_mc_figure(result, out_dir / png)
    return lines + [f"![τ_int against L and exact-check pulls]({png})", ""]


def _render_generic(result: dict, stem: str, out_dir: Path) -> list[str]:
    return ["Measured rows:", ""] + _table(result["rows"])


RENDERERS = {"mc_throughput": _render_throughput, "throughput": _render_throughput, "fused_ops": _render_fused_ops,
             "scaling": _render_scaling, "fidelity": _render_fidelity, "ising_mc": _render_ising_mc}
# top-level keys a renderer shows itself (not repeated as "Derived" tables after it)
RENDERED_KEYS = {"ising_mc": ("fits",)}


def _section(path: Path, result: dict, stem: str, out_dir: Path) -> list[str]:
    host, kind = result["host"], result["kind"]
    lines = [f"## {path.name}", "",
             (f"File `{path}`; kind `{kind}`; host: cpu {host['cpu']}, {host['cores']} cores, gpu {fmt(host['gpu'])}, "
              f"torch {fmt(host['torch'])}, mpi {fmt(host['mpi_library'])}, engine {fmt(host['engine'])}; "
              f"created {result['created']}."), ""]
    renderer = RENDERERS.get(kind, _render_generic)
    shown = RENDERED_KEYS.get(kind, ())
    try:
        lines += renderer(result, stem, out_dir)
    except (KeyError, TypeError, ValueError, StopIteration) as e:  # an odd file still gets its rows shown
        lines += [f"(could not draw the `{kind}` view: {type(e).__name__}: {e}; generic table instead)", ""]
        lines += _render_generic(result, stem, out_dir)
        shown = ()
    for key in (k for k in result if k not in _STANDARD_KEYS and k not in shown):  # derived values and notes
        v = result[key]
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            lines += [f"Derived `{key}`:", ""] + _table(v)
        else:
            lines += [f"`{key}`: {_cell(v) if not isinstance(v, str) else v}", ""]
    if result.get("predictions"):
        lines += ["### Predictions (model output, not measured)", ""] + _table(result["predictions"])
    if result.get("literature"):
        lines += ["### Literature anchors (published figures, not measured here)", ""] + _table(result["literature"])
    return lines


def render_report(paths: list[Path], out_dir: Path) -> Path:
    """Write ``out_dir/report.md`` and its PNG plots from the results files ``paths``; return the report path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = [(Path(p), load_result(p)) for p in paths]
    listing = ", ".join(f"{p.name} ({r['kind']})" for p, r in loaded) or "none"
    lines = [f"Benchmark report from {len(loaded)} results file(s), read only (nothing re-run): {listing}.", "",
             ("Summaries read `median [min–max], n=repeats`; 3 significant digits; "
              "`—` = null (none or not recorded)."),
             ""]
    stems: set[str] = set()
    for i, (path, result) in enumerate(loaded):
        stem = path.stem if path.stem not in stems else f"{path.stem}_{i}"
        stems.add(stem)
        lines += _section(path, result, stem, out_dir)
    report = out_dir / "report.md"
    report.write_text("\n".join(lines).rstrip("\n") + "\n")
    return report
