"""The convergence-map fidelity estimators, one per observable, of ``hpcgen validate cosmo`` and the training monitor.

The CosmoGAN validation (Mustafa et al. 2017, arXiv:1706.02390; docs/cosmo_validation.md): power spectrum
(:func:`hpcgen.ops.radial_power_spectrum`, the estimator the spectral loss also uses), pixel-intensity histogram,
peak counts and Minkowski functionals V0, V1, V2 (:mod:`hpcgen.physics.map_statistics`), each computed per map and
compared per bin/threshold with a two-sample KS test, plus a χ² of the mean spectra and the separation power of the
pooled pixel and peak-height histograms. Maps are read in slices of ``chunk_size`` (two passes over the reference:
the first fixes the histogram range and the threshold scale σ_ref), so h5py datasets larger than memory work.

What makes the numbers honest (docs/cosmo_validation.md):

- Valid ℓ range. A generator may declare what it resolves (:class:`GeneratorLimits`; a PM file carries them, see
  ``hpcgen.data.cosmo_file``): its particle shot-noise C_ℓ and the ℓ range of its box and mesh. A C_ℓ bin is valid
  when it lies inside every declared ℓ range and each sample's noise is below ``NOISE_FRACTION`` of the reference's
  signal (its mean C_ℓ minus its own noise). ``ell_valid_range`` is the contiguous run of valid bins from the lowest
  one; the C_ℓ verdict is computed over it, the full-range numbers are kept and labelled.
- Smoothing. Peaks and Minkowski functionals are measured on maps smoothed with a Gaussian of standard deviation
  ``smoothing_arcmin`` (FWHM = 2.355σ), with a border of ceil(3σ/pixel) pixels dropped.
- Floors. Every verdict metric is also computed reference-vs-reference on ``n_resamples`` random pairs of disjoint
  reference halves of ``size`` maps (:mod:`hpcgen.fidelity.floors`); the test value is the median, over the same
  resamples, of ``size`` random test maps against the first half, so value and floor share their finite-sample bias.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hpcgen import ops
from hpcgen.fidelity.floors import MIN_RESAMPLES, Floor, disjoint_halves, verdict_row
from hpcgen.physics import distances
from hpcgen.physics import map_statistics as ms

DEFAULT_CHUNK = 128
DEFAULT_HIST_BINS = 50
DEFAULT_SMOOTHING_ARCMIN = 2.0  # Gaussian σ (FWHM 4.7′); docs/cosmo_validation.md
DEFAULT_RESAMPLES = MIN_RESAMPLES
NOISE_FRACTION = 0.10  # a C_ℓ bin is valid while each sample's shot noise is below this fraction of the signal
# Below this many maps per reference half the floors are wide (a bin with M modes has a half-sample C_ℓ error of
# ≈ √(2/(M·n)), 6–9 % for the first bins' 4–10 modes at n = 50); validate warns with the floors' width.
MIN_HALF_MAPS = 50
MINKOWSKI = ("V0", "V1", "V2")

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
    "ℓ = πN/L; ell = mean |ℓ| of the modes in a bin. rel_err = test_mean/ref_mean − 1. Unsmoothed maps.",
    "chi2": "Σ_b (C̄_test − C̄_ref)²/(σ²_ref/N_ref + σ²_test/N_test), σ² the map-to-map variance per bin; bins "
    "taken as independent (exact for Gaussian fields, approximate for lensing maps).",
    "ell_valid": f"a bin is valid when its edges lie inside every sample's declared ℓ range (box and particle/mesh "
    f"resolution) and each sample's shot-noise C_ℓ is < {NOISE_FRACTION:g} × the reference signal (reference mean "
    "C_ℓ minus its own noise); ell_valid_range = the contiguous valid bins from the lowest one.",
    "smoothing": "peaks and Minkowski functionals: maps convolved with a Gaussian of standard deviation σ "
    "(multiplying each FFT mode by exp(−ℓ²σ²/2), periodic), then ceil(3σ/pixel) border pixels dropped; the pixel "
    "histogram and C_ℓ use the unsmoothed maps.",
    "thresholds": "κ_t = ν·σ_ref with σ_ref the pixel standard deviation of the whole smoothed reference sample, the "
    "same absolute levels for both samples (an amplitude change shows up); the map mean is not subtracted.",
    "peaks": "pixels strictly higher than their 8 neighbours (border pixels excluded), counted per smoothed map above "
    "each threshold.",
    "minkowski": "gradient estimator of Schmalzing & Gorski 1998 with central differences on the interior pixels "
    "and δ(κ − κ_t) as a top hat of width Δν·σ_ref: V0 area fraction above κ_t, V1 = ¼ contour length per area "
    "[1/deg], V2 = Euler characteristic per area [1/deg²]. Distance D_Vi = mean over thresholds of "
    "|V̄i_test − V̄i_ref|/σ_ref,i, σ_ref,i the map-to-map std of the whole reference at that threshold (thresholds "
    "where it is 0 are skipped).",
    "pixel_histogram": "equal-width bins over the reference's range plus an underflow and an overflow bin; S on "
    "the pooled counts of all bins.",
    "ks": "two-sample Kolmogorov–Smirnov (scipy) per bin/threshold on the per-map values across maps.",
    "separation_power": "S = ½ Σ (h1 − h2)²/(h1 + h2) of the pooled, unit-sum histograms: pixel values on the "
    "common bins; peak heights between consecutive thresholds (and above the last).",
    "floors": "reference vs reference on disjoint random halves of `half_size` maps, `n_resamples` times: p50, p95. "
    "Test value: median over the same resamples of `half_size` random test maps against the first half (± half the "
    "16–84 % range). Every metric is oriented so that smaller is closer; within floor = value ≤ floor p95.",
}

# Verdict metrics: key → (label, unit). Labels with {valid}/{full} get the ℓ ranges.
VERDICT = {
    "cl_max_abs_rel_err_valid": ("C_ℓ max |rel. err.|, valid ℓ {valid}", "1"),
    "cl_chi2_per_bin_valid": ("C_ℓ χ²/bin, valid ℓ {valid}", "1"),
    "S_pixel_histogram": ("pixel histogram S (unsmoothed)", "1"),
    "S_peak_heights": ("peak heights S (smoothed)", "1"),
    "D_V0": ("V0 distance ⟨|ΔV0|/σ_ref⟩ (smoothed)", "σ_ref"),
    "D_V1": ("V1 distance ⟨|ΔV1|/σ_ref⟩ (smoothed)", "σ_ref"),
    "D_V2": ("V2 distance ⟨|ΔV2|/σ_ref⟩ (smoothed)", "σ_ref"),
    "cl_max_abs_rel_err_full": ("C_ℓ max |rel. err.|, full ℓ {full}", "1"),
    "cl_chi2_per_bin_full": ("C_ℓ χ²/bin, full ℓ {full}", "1"),
}


@dataclass(frozen=True)
class GeneratorLimits:
    """What one sample's generator resolves; every field may be None (no limit of that kind).

    noise_*: its shot-noise C_ℓ (sr) with standard error on the ℓ binning ``noise_edges`` (bin means
    ``noise_ell``), measured from ``noise_n_maps`` maps, with the analytic flat level ``noise_cl_poisson`` and the
    noise maps' pixel rms ``noise_pixel_std``. ell_min/ell_max: the ℓ range it resolves, ``criterion`` in words.
    A PM run's come from :func:`hpcgen.sim.cosmo_pm.shot_noise` and :func:`~hpcgen.sim.cosmo_pm.resolution_ell`
    (:meth:`from_pm`; stored in a PM file, ``hpcgen.data.cosmo_file.read_pm_limits``).
    """

    noise_edges: np.ndarray | None = None
    noise_ell: np.ndarray | None = None
    noise_cl: np.ndarray | None = None
    noise_cl_err: np.ndarray | None = None
    noise_n_maps: int | None = None
    noise_cl_poisson: float | None = None
    noise_pixel_std: float | None = None
    ell_min: float | None = None
    ell_max: float | None = None
    criterion: str = ""

    @classmethod
    def from_pm(cls, spec, config, rng: np.random.Generator, n_noise_maps: int = 16) -> GeneratorLimits:
        """Measure a PM configuration's shot noise (on the default binning of ``spec``'s maps) and ℓ range."""
        from hpcgen.sim.cosmo_pm import RESOLUTION_CRITERION, resolution_ell, shot_noise

        noise = shot_noise(spec, config, rng, n_maps=n_noise_maps)
        lo, hi = resolution_ell(spec, config)
        return cls(noise_edges=noise.edges, noise_ell=noise.ell, noise_cl=noise.cl, noise_cl_err=noise.cl_err,
                   noise_n_maps=noise.n_maps, noise_cl_poisson=noise.cl_poisson, noise_pixel_std=noise.pixel_std,
                   ell_min=lo, ell_max=hi, criterion=RESOLUTION_CRITERION)

    def noise_on(self, edges: np.ndarray, ell: np.ndarray) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(C_noise, its error, how) on the bins ``edges``: as measured when the binning is the same, else
        interpolated log-log in ℓ from the measured bins (flat beyond them)."""
        if self.noise_cl is None:
            return None
        cl, err = np.asarray(self.noise_cl, float), np.asarray(self.noise_cl_err, float)
        own = np.asarray(self.noise_edges, float)
        if own.shape == edges.shape and np.allclose(own, edges, rtol=1e-6, atol=0):
            return cl, err, "measured on these bins"
        x, keep = np.log(np.asarray(self.noise_ell, float)), cl > 0
        if keep.sum() < 1:
            return np.zeros_like(ell), np.zeros_like(ell), "measured noise is zero"
        log_cl = np.interp(np.log(ell), x[keep], np.log(cl[keep]))
        rel = np.interp(np.log(ell), x[keep], err[keep] / cl[keep])
        return np.exp(log_cl), np.exp(log_cl) * rel, "interpolated (log-log) from the measured bins"


@dataclass
class _PerMap:
    """Every per-map statistic of one sample: rows are maps."""

    n: int
    cl: np.ndarray  # (n, nb), unsmoothed
    hist: np.ndarray  # (n, nh + 2) pixel fractions: underflow, the nh bins, overflow; unsmoothed
    peaks: np.ndarray  # (n, nt) cumulative counts N(>κ_t), smoothed
    mf: dict[str, np.ndarray]  # V0, V1, V2: (n, nt), smoothed

    def take(self, idx: np.ndarray) -> _PerMap:
        return _PerMap(n=len(idx), cl=self.cl[idx], hist=self.hist[idx], peaks=self.peaks[idx],
                       mf={k: v[idx] for k, v in self.mf.items()})


@dataclass(frozen=True)
class _Smoothing:
    sigma_rad: float
    border: int

    def apply(self, block: np.ndarray, pixel_rad: float) -> np.ndarray:
        s = ms.gaussian_smooth(block, pixel_rad, self.sigma_rad)
        b = self.border
        return s[:, b : s.shape[1] - b, b : s.shape[2] - b] if b else s


def _check_maps(kappa, which: str):
    kappa = kappa if hasattr(kappa, "shape") else np.asarray(kappa)
    shape = tuple(kappa.shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 8:
        raise ValueError(f"{which} maps have shape {shape}; expected (N, n, n) square maps with n >= 8")
    if shape[0] < 2:
        raise ValueError(f"{which} sample has {shape[0]} map(s); validation needs at least 2 (for map-to-map spreads)")
    return kappa


def _chunks(kappa, chunk: int, which: str):
    for s in range(0, int(kappa.shape[0]), chunk):
        # Slices only, ascending: an h5py dataset reads one contiguous hyperslab.
        block = np.asarray(kappa[s : s + chunk], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"{which} maps contain NaN or inf values")
        yield block


def _reference_scales(kappa, chunk: int, which: str, pixel_rad: float, sm: _Smoothing):
    """(min, max, pixel std, pixel std of the smoothed and cropped maps) over the whole reference sample."""
    lo, hi = math.inf, -math.inf
    sums = np.zeros((2, 3))  # rows: raw, smoothed; columns: count, Σx, Σx²
    for block in _chunks(kappa, chunk, which):
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        for row, x in enumerate((block, sm.apply(block, pixel_rad))):
            sums[row] += (x.size, float(x.sum()), float(np.square(x).sum()))
    std = [math.sqrt(max(s2 / c - (s1 / c) ** 2, 0.0)) for c, s1, s2 in sums]
    return lo, hi, std[0], std[1]


def _per_map(kappa, which: str, pixel_rad: float, spec_edges, hist_edges, nu, sigma: float, chunk: int,
             sm: _Smoothing) -> _PerMap:
    pixel_deg = math.degrees(pixel_rad)
    open_edges = np.concatenate([[-np.inf], hist_edges, [np.inf]])
    cls, hists, peaks, mfs = [], [], [], {k: [] for k in MINKOWSKI}
    for block in _chunks(kappa, chunk, which):
        cls.append(ops.cl_numpy(block, pixel_rad, bins=spec_edges).cl)
        hists.append(ms.pixel_histograms(block, open_edges))
        smooth = sm.apply(block, pixel_rad)
        peaks.append(ms.peak_counts(smooth, nu, sigma=sigma))
        for k, v in zip(MINKOWSKI, ms.minkowski_functionals(smooth, nu, sigma=sigma, pixel_size=pixel_deg)):
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


# --- valid ℓ range -------------------------------------------------------------------------------------------------
def _valid_range(edges: np.ndarray, ell: np.ndarray, ref_mean: np.ndarray, limits: dict) -> dict:
    """The valid bins (module docstring) and everything that decided them."""
    nb = ell.size
    ok = np.ones(nb, dtype=bool)
    noise, declared = {}, {}
    for side, lim in limits.items():
        if lim is None:
            continue
        declared[side] = {"ell_min": lim.ell_min, "ell_max": lim.ell_max, "criterion": lim.criterion}
        if lim.ell_min is not None:
            ok &= edges[:-1] >= lim.ell_min * (1 - 1e-9)
        if lim.ell_max is not None:
            ok &= edges[1:] <= lim.ell_max * (1 + 1e-9)
        on = lim.noise_on(edges, ell)
        if on is not None:
            noise[side] = {"cl": on[0], "cl_err": on[1], "how": on[2], "n_maps": lim.noise_n_maps,
                           "cl_poisson": lim.noise_cl_poisson, "pixel_std": lim.noise_pixel_std}
    signal = ref_mean - (noise["ref"]["cl"] if "ref" in noise else 0.0)
    ratio = np.zeros(nb)
    for v in noise.values():
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(signal > 0, v["cl"] / np.where(signal > 0, signal, 1.0), np.inf)
        v["noise_to_signal"] = r
        ratio = np.maximum(ratio, r)
    ok &= ratio < NOISE_FRACTION
    valid = np.zeros(nb, dtype=bool)
    if ok.any():
        first = int(np.argmax(ok))
        last = first
        while last + 1 < nb and ok[last + 1]:
            last += 1
        valid[first : last + 1] = True
    rng = [float(edges[np.argmax(valid)]), float(edges[nb - np.argmax(valid[::-1])])] if valid.any() else None
    return {"range": rng, "bins": np.flatnonzero(valid).tolist(), "mask": valid, "noise": noise,
            "declared": declared, "noise_to_signal": ratio if noise else None}


# --- metrics of two samples (also on subsets, for the floors) ------------------------------------------------------
def _pair_metrics(r: _PerMap, t: _PerMap, valid: np.ndarray, mf_scale: dict) -> dict:
    """Every verdict metric of ``t`` against ``r`` (smaller is closer); None where undefined."""
    out: dict[str, float | None] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(t.cl.mean(axis=0) / r.cl.mean(axis=0) - 1.0)
    for suffix, sel in (("valid", valid), ("full", np.ones_like(valid))):
        fin = sel & np.isfinite(rel)
        out[f"cl_max_abs_rel_err_{suffix}"] = float(rel[fin].max()) if fin.any() else None
        if sel.any() and min(r.n, t.n) >= 2:
            c = ms.chi2_mean_spectra(r.cl[:, sel], t.cl[:, sel])
            out[f"cl_chi2_per_bin_{suffix}"] = c["chi2"] / c["dof"] if c["dof"] else None
        else:
            out[f"cl_chi2_per_bin_{suffix}"] = None
    out["S_pixel_histogram"] = distances.separation_power_hist(r.hist.sum(axis=0), t.hist.sum(axis=0))
    ph = (_peak_height_hist(r.peaks), _peak_height_hist(t.peaks))
    out["S_peak_heights"] = distances.separation_power_hist(*ph) if min(h.sum() for h in ph) > 0 else None
    for k in MINKOWSKI:
        keep = mf_scale[k] > 0
        d = np.abs(t.mf[k].mean(axis=0) - r.mf[k].mean(axis=0))
        out[f"D_{k}"] = float(np.mean(d[keep] / mf_scale[k][keep])) if keep.any() else None
    return out


def _floors(ref: _PerMap, test: _PerMap, valid, mf_scale, n_resamples: int, seed: int) -> dict | None:
    """Floors and paired test values of every verdict metric (module docstring); None with < 2 maps per half."""
    size = min(ref.n // 2, test.n)
    if size < 2:
        return None
    rng = np.random.default_rng(seed)
    floor_vals = {k: [] for k in VERDICT}
    test_vals = {k: [] for k in VERDICT}
    for _ in range(n_resamples):
        a, b = disjoint_halves(ref.n, size, rng)
        t = np.sort(rng.choice(test.n, size, replace=False))
        half = ref.take(a)
        for store, other in ((floor_vals, ref.take(b)), (test_vals, test.take(t))):
            for k, v in _pair_metrics(half, other, valid, mf_scale).items():
                store[k].append(math.nan if v is None else v)
    out = {}
    for k in VERDICT:
        fv, tv = np.array(floor_vals[k]), np.array(test_vals[k])
        # a metric undefined in most resamples (no valid bin, no peaks) has no floor
        floor = Floor(tuple(fv[np.isfinite(fv)].tolist())) if np.isfinite(fv).sum() > n_resamples // 2 else None
        tvf = tv[np.isfinite(tv)]
        value = None if tvf.size <= n_resamples // 2 else {
            "median": float(np.median(tvf)), "p16": float(np.percentile(tvf, 16)), "p84": float(np.percentile(tvf, 84))}
        out[k] = {"value": value, "floor": floor}
    return {"half_size": size, "n_resamples": n_resamples, "seed": seed, "metrics": out}


def _verdict(floors: dict | None, full: dict, ranges: dict) -> list[dict]:
    rows = []
    for k, (label, unit) in VERDICT.items():
        name = label.format(**ranges)
        if floors is None:
            row = verdict_row(name, full[k], None, unit=unit)
        else:
            f = floors["metrics"][k]
            v = f["value"]
            row = verdict_row(name, None if v is None else v["median"], f["floor"],
                              spread=None if v is None else 0.5 * (v["p84"] - v["p16"]), unit=unit)
        rows.append({"key": k, **row})
    return rows


def ell_range_text(r) -> str:
    return "–" if r is None else f"{r[0]:.0f}–{r[1]:.0f}"


def _compare(ref: _PerMap, test: _PerMap, spectrum, nu, sigma_ref, dnu, hist_edges, valid: dict) -> dict:
    ref_mean, test_mean = ref.cl.mean(axis=0), test.cl.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = test_mean / ref_mean - 1.0
    inner = slice(1, -1)  # the histogram's bins without under- and overflow
    ks = {
        "pixel_histogram": ms.ks_per_column(ref.hist[:, inner], test.hist[:, inner]),
        "power_spectrum": ms.ks_per_column(ref.cl, test.cl),
        "peaks": ms.ks_per_column(ref.peaks, test.peaks),
        "minkowski": {k: ms.ks_per_column(ref.mf[k], test.mf[k]) for k in MINKOWSKI},
    }
    summary = {k: _ks_summary(ks[k]) for k in ("pixel_histogram", "power_spectrum", "peaks")}
    summary.update({f"minkowski_{k}": _ks_summary(v) for k, v in ks["minkowski"].items()})
    peak_hist = (_peak_height_hist(ref.peaks), _peak_height_hist(test.peaks))
    mask = valid["mask"]
    noise = {side: {"cl": v["cl"].tolist(), "cl_err": v["cl_err"].tolist(),
                    "noise_to_signal": v["noise_to_signal"].tolist(), "how": v["how"], "n_maps": v["n_maps"],
                    "cl_poisson": v["cl_poisson"], "pixel_std": v["pixel_std"]} for side, v in valid["noise"].items()}
    fin = mask & np.isfinite(rel)
    return {
        "power_spectrum": {
            "ell": spectrum.ell.tolist(), "edges": spectrum.edges.tolist(), "modes": spectrum.modes.tolist(),
            **_pair(ref.cl, test.cl), "rel_err": rel.tolist(), "valid": mask.tolist(), "noise": noise,
        },
        "power_spectrum_rel_err": rel.tolist(),
        "chi2_power_spectrum": ms.chi2_mean_spectra(ref.cl, test.cl),
        "power_spectrum_valid": {
            "bins": valid["bins"], "ell_range": valid["range"],
            "max_abs_rel_err": float(np.abs(rel[fin]).max()) if fin.any() else None,
            "chi2": ms.chi2_mean_spectra(ref.cl[:, mask], test.cl[:, mask]) if mask.any() else None,
        },
        "thresholds": {"nu": nu.tolist(), "sigma_ref": sigma_ref, "kappa": (nu * sigma_ref).tolist(), "dnu": dnu},
        "pixel_histogram": {"edges": hist_edges.tolist(), **_pair(ref.hist[:, inner], test.hist[:, inner]),
                            "underflow": _pair(ref.hist[:, :1], test.hist[:, :1]),
                            "overflow": _pair(ref.hist[:, -1:], test.hist[:, -1:])},
        "peaks": _pair(ref.peaks, test.peaks),
        "minkowski": {k: _pair(ref.mf[k], test.mf[k]) for k in MINKOWSKI},
        "ks": ks,
        "ks_summary": summary,
        "separation_power": {
            "pixel_histogram": distances.separation_power_hist(ref.hist.sum(axis=0), test.hist.sum(axis=0)),
            "peak_heights": distances.separation_power_hist(*peak_hist) if min(h.sum() for h in peak_hist) > 0 else None,
        },
    }


def _warnings(floors: dict | None, n_ref: int, valid: dict, verdict: list[dict]) -> list[str]:
    out = []
    if floors is None:
        out.append(f"no floor: the reference has {n_ref} maps and the floors need two disjoint halves of >= 2 "
                   "(test values are whole-sample values)")
    elif floors["half_size"] < MIN_HALF_MAPS:
        widths = ", ".join(f"{r['metric'].split(',')[0]} {r['floor_p50']:.3g}–{r['floor_p95']:.3g}"
                           for r in verdict if r["key"] in ("cl_max_abs_rel_err_valid", "S_pixel_histogram", "D_V0")
                           and r["floor_p50"] is not None)
        out.append(f"few maps for a floor: reference halves of {floors['half_size']} maps (< {MIN_HALF_MAPS}); "
                   f"floor p50–p95: {widths}; differences inside these are sampling noise")
    if valid["range"] is None:
        out.append("no ℓ bin is valid (resolution or shot noise); the valid-range C_ℓ metrics are empty")
    return out




def evaluate(
    ref_kappa,
    test_kappa,
    pixel_rad: float,
    ref_label: str = "ref",
    test_label: str = "test",
    *,
    ref_limits: GeneratorLimits | None = None,
    test_limits: GeneratorLimits | None = None,
    smoothing_arcmin: float = DEFAULT_SMOOTHING_ARCMIN,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    nu=ms.DEFAULT_NU,
    spectrum_bins=None,
    hist_bins: int = DEFAULT_HIST_BINS,
    chunk_size: int = DEFAULT_CHUNK,
) -> dict:
    """Every statistic and verdict metric of ``test`` maps against ``ref`` maps (the module docstring); nothing is
    written. ``hpcgen validate cosmo`` (:func:`hpcgen.jobs.validate_cosmo.validate_cosmo`) adds the report and plots.

    ``*_kappa``: (N, n, n) arrays or h5py datasets of convergence, both with the same n×n pixels of side
    ``pixel_rad`` radians (N ≥ 2 each, may differ). Maps are read in slices of ``chunk_size``. ``*_limits``: what
    each sample's generator resolves (None = no declared limit). ``smoothing_arcmin``: Gaussian σ for peaks and
    Minkowski functionals (0 = none). ``n_resamples``, ``seed``: the bootstrap floors. ``nu``: thresholds in units
    of σ_ref (δ-window width = their smallest spacing). ``spectrum_bins``: bins of
    :func:`hpcgen.ops.radial_power_spectrum` (a count or ℓ edges; None = its default). ``hist_bins``: pixel-histogram
    bins over the reference's range.
    """
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if int(hist_bins) < 1:
        raise ValueError(f"hist_bins must be >= 1, got {hist_bins}")
    if not (math.isfinite(smoothing_arcmin) and smoothing_arcmin >= 0):
        raise ValueError(f"smoothing_arcmin must be >= 0, got {smoothing_arcmin}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    ref_kappa = _check_maps(ref_kappa, f"reference ({ref_label})")
    test_kappa = _check_maps(test_kappa, f"test ({test_label})")
    if tuple(ref_kappa.shape[1:]) != tuple(test_kappa.shape[1:]):
        raise ValueError(f"test maps are {'×'.join(map(str, test_kappa.shape[1:]))} pixels but the reference maps are "
                         f"{'×'.join(map(str, ref_kappa.shape[1:]))}; compare maps of the same size and pixel scale")
    pixels = int(ref_kappa.shape[1])
    sigma_rad = math.radians(smoothing_arcmin / 60.0)
    sm = _Smoothing(sigma_rad, ms.smoothing_border(pixel_rad, sigma_rad))
    if pixels - 2 * sm.border < 8:
        raise ValueError(f"smoothing_arcmin = {smoothing_arcmin:g} drops {sm.border} border pixels of each side of "
                         f"{pixels}-pixel maps, leaving fewer than 8; use a smaller smoothing scale")
    chunk = int(chunk_size)
    nu = np.atleast_1d(np.asarray(nu, dtype=np.float64))

    lo_r, hi_r, sigma_raw, sigma_ref = _reference_scales(ref_kappa, chunk, f"reference ({ref_label})", pixel_rad, sm)
    if sigma_ref == 0:
        raise ValueError(f"reference ({ref_label}) maps are constant; thresholds in units of their σ are undefined")
    # Fixed by the reference alone (docs/fidelity.md); test pixels beyond it land in the under/overflow bins.
    hist_edges = np.linspace(lo_r, hi_r, int(hist_bins) + 1)
    # The binning alone (a blank map), fixed once so that every chunk and both samples share the same edges.
    spectrum = ops.cl_numpy(np.zeros((1, pixels, pixels)), pixel_rad, **({} if spectrum_bins is None else {"bins": spectrum_bins}))
    dnu = float(np.diff(nu).min()) if nu.size > 1 else None
    common = (pixel_rad, spectrum.edges, hist_edges, nu, sigma_ref, chunk, sm)
    ref = _per_map(ref_kappa, f"reference ({ref_label})", *common)
    test = _per_map(test_kappa, f"test ({test_label})", *common)

    valid = _valid_range(spectrum.edges, spectrum.ell, ref.cl.mean(axis=0), {"ref": ref_limits, "test": test_limits})
    mf_scale = {k: ref.mf[k].std(axis=0, ddof=1) for k in MINKOWSKI}
    floors = _floors(ref, test, valid["mask"], mf_scale, int(n_resamples), int(seed))
    full = _pair_metrics(ref, test, valid["mask"], mf_scale)
    full_range = [float(spectrum.edges[0]), float(spectrum.edges[-1])]
    ranges = {"valid": ell_range_text(valid["range"]),
              "full": ell_range_text(full_range) + (" (= valid)" if valid["range"] == full_range else " (not all resolved)")}
    verdict = _verdict(floors, full, ranges)
    metrics = {
        "domain": "cosmo",
        "ref": {"label": ref_label, "n": ref.n},
        "test": {"label": test_label, "n": test.n},
        "maps": {"pixels": pixels, "pixel_arcmin": math.degrees(pixel_rad) * 60.0,
                 "field_deg": math.degrees(pixel_rad) * pixels},
        "verdict": verdict,
        "warnings": _warnings(floors, ref.n, valid, verdict),
        "ell_valid_range": valid["range"],
        "ell_valid": {"range": valid["range"], "bins": valid["bins"], "noise_fraction": NOISE_FRACTION,
                      "declared": valid["declared"], "criterion": CONVENTIONS["ell_valid"],
                      "noise_to_signal": None if valid["noise_to_signal"] is None
                      else valid["noise_to_signal"].tolist()},
        "floors": None if floors is None else {
            "half_size": floors["half_size"], "n_resamples": floors["n_resamples"], "seed": floors["seed"],
            "metrics": {k: {"value": v["value"], "floor": None if v["floor"] is None else v["floor"].to_dict()}
                        for k, v in floors["metrics"].items()}},
        "whole_sample": full,
        "smoothing": {"sigma_arcmin": float(smoothing_arcmin),
                      "fwhm_arcmin": 2 * math.sqrt(2 * math.log(2)) * smoothing_arcmin,
                      "border_pixels": sm.border, "applies_to": ["peaks", "minkowski"]},
        **_compare(ref, test, spectrum, nu, sigma_ref, dnu, hist_edges, valid),
        "units": UNITS,
        "conventions": CONVENTIONS,
    }
    metrics["thresholds"]["sigma_ref_unsmoothed"] = sigma_raw
    return metrics
