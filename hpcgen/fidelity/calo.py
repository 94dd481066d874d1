"""Calorimeter fidelity to the CaloChallenge standard (Krause et al. 2024, arXiv:2410.21611), every metric beside its
reference-vs-reference bootstrap floor (:mod:`hpcgen.fidelity.floors`). Pure functions: no files, no plots.

Per primary energy (when the energies are a few discrete values) and pooled over all showers:

- **Separation power** S (:func:`hpcgen.physics.distances.separation_power`, bins fixed by the reference's
  quantiles plus under/overflow) of E_vis/E_p, the visible energy in each layer (GeV), the energy-weighted centroid
  and width along x, y and depth (mm), the hit count, and the cell-energy spectrum (all cells above threshold of
  all showers, fixed 0.05-decade bins). The per-layer values are summarised by their median and maximum.
- **FPD and KPD** (:mod:`hpcgen.fidelity.frechet`) on the 34 high-level features
  (:func:`hpcgen.physics.shower_features.high_level_features`).
- **Classifier AUC and JSD** (:mod:`hpcgen.fidelity.classifier`) on the high-level features (DNN, plus the
  gradient-boosted cross-check) and, on request, on the voxels ("low level", normalised as the challenge does:
  log10 E_p and 100 × cell/E_p).

Every metric is computed for ``resamples`` random splits of the reference into disjoint halves A, B of ``size``
showers: the floor is metric(A, B), the value metric(A, T) with T ``size`` test showers, so both share their
finite-sample bias; value and floor are reported as median (and spread) over resamples, the floor with p50 / p95.
Classifiers cost more: their value is the k-fold AUC averaged over ``classifier.seeds`` seeds (each on its own
reference half), and their floor is one k-fold run per resample.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hpcgen.fidelity import frechet
from hpcgen.fidelity.classifier import ClassifierConfig, classifier_test
from hpcgen.fidelity.floors import MIN_HALF_SIZE, MIN_RESAMPLES, Floor, disjoint_halves, verdict_row
from hpcgen.physics import distances
from hpcgen.physics.calo_geometry import SamplingCalorimeter
from hpcgen.physics.shower_features import energy_moments, high_level_features, high_level_names

# Fixed log grid for the cell spectrum: 1e-8 GeV (10 eV) to 1e4 GeV, 20 bins per decade.
SPECTRUM_LOG10_RANGE = (-8.0, 4.0)
SPECTRUM_BINS_PER_DECADE = 20
# Up to this many distinct primary energies (e.g. 3DGAN's fixed-energy sets) are treated as discrete points.
MAX_DISCRETE_ENERGIES = 32
MOMENTS = ("x_mean_mm", "y_mean_mm", "depth_mean_mm", "x_std_mm", "y_std_mm", "depth_std_mm")


def spectrum_edges_log10() -> np.ndarray:
    lo, hi = SPECTRUM_LOG10_RANGE
    return np.linspace(lo, hi, int(round((hi - lo) * SPECTRUM_BINS_PER_DECADE)) + 1)


@dataclass
class CaloSample:
    """What the evaluation needs from one sample, one row per shower (built chunk by chunk by :func:`summarise`).

    energy_gev (N,); high_level (N, 9 + L) columns ``names``; layer_gev (N, L) visible energy per layer;
    spectrum (N, B) int32 counts of each shower's cells in the fixed log10 bins; cells (N, nx·ny·L) float32 low-level
    classifier input or None; x_profile_sum / y_profile_sum: sums of the unit-sum transverse profiles (plots).
    """

    energy_gev: np.ndarray
    high_level: np.ndarray
    names: tuple[str, ...]
    layer_gev: np.ndarray
    spectrum: np.ndarray
    cells: np.ndarray | None = None
    x_profile_sum: np.ndarray | None = None
    y_profile_sum: np.ndarray | None = None
    n_nonempty: int = 0

    def __len__(self) -> int:
        return len(self.energy_gev)

    def column(self, name: str) -> np.ndarray:
        return self.high_level[:, self.names.index(name)]

    def histogram_features(self) -> dict[str, np.ndarray]:
        """Every 1-D observable that gets a separation power, each (N,)."""
        out = {"e_vis_over_e_p": self.column("sampling_fraction")}
        out.update({f"layer_energy_{k:02d}": self.layer_gev[:, k] for k in range(self.layer_gev.shape[1])})
        out.update({k: self.column(k) for k in MOMENTS})
        out["hit_count"] = self.column("hit_count")
        return out


def low_level_input(ecal_gev: np.ndarray, energy_gev: np.ndarray) -> np.ndarray:
    """(N, 1 + cells) float32 voxel input of the low-level classifier: log10(E_p/GeV), then 100 × cell/E_p."""
    e = np.asarray(energy_gev, dtype=np.float64)
    flat = np.asarray(ecal_gev, dtype=np.float64).reshape(len(e), -1) * (100.0 / e[:, None])
    return np.concatenate([np.log10(e)[:, None], flat], axis=1).astype(np.float32)


def _unit_rows_sum(profile: np.ndarray) -> tuple[np.ndarray, int]:
    tot = profile.sum(axis=1)
    keep = tot > 0
    return (profile[keep] / tot[keep, None]).sum(axis=0), int(keep.sum())


def summarise(ecal, energy, geometry: SamplingCalorimeter, threshold_gev: float, chunk: int, which: str,
              with_cells: bool = False) -> CaloSample:
    """Read ``ecal`` (N, nx, ny, L) GeV and ``energy`` (N,) GeV slice by slice (arrays or h5py datasets) into a
    :class:`CaloSample`. Errors name ``which`` sample and the showers at fault."""
    ecal = ecal if hasattr(ecal, "shape") else np.asarray(ecal)
    energy = energy if hasattr(energy, "shape") else np.asarray(energy)
    if len(ecal.shape) != 4 or tuple(ecal.shape[1:]) != tuple(geometry.shape):
        raise ValueError(f"{which} ECAL has shape {tuple(ecal.shape)}; expected (N, {', '.join(map(str, geometry.shape))})")
    n = int(ecal.shape[0])
    if tuple(energy.shape) != (n,):
        raise ValueError(f"{which} energy has shape {tuple(energy.shape)}; expected ({n},) to match its ECAL")
    if n == 0:
        raise ValueError(f"{which} sample is empty; validation needs at least one shower")
    edges = spectrum_edges_log10()
    nx, ny, nl = geometry.shape
    hl, layers, spec, cells, energies = [], [], [], [], []
    xs, ys, n_nonempty = np.zeros(nx), np.zeros(ny), 0
    for s in range(0, n, chunk):
        block = np.asarray(ecal[s:s + chunk])
        e = np.asarray(energy[s:s + chunk], dtype=np.float64)
        try:
            if not np.all(np.isfinite(block)) or np.any(block < 0):
                raise ValueError("cell energies must be finite and >= 0")
            m = energy_moments(block)
            hl.append(high_level_features(block, e, geometry, threshold_gev, moments_=m))
        except ValueError as err:
            raise ValueError(f"{which} showers {s}..{s + len(e) - 1}: {err}") from None
        energies.append(e)
        layers.append(m.profile_z)
        xsum, k = _unit_rows_sum(m.profile_x)
        xs += xsum
        ys += _unit_rows_sum(m.profile_y)[0]
        n_nonempty += k
        flat = block.reshape(len(e), -1)
        hit = flat > threshold_gev
        logs = np.clip(np.log10(np.where(hit, flat, 1.0)), edges[0], edges[-1])
        nb = edges.size - 1
        rows = np.repeat(np.arange(len(e)), hit.sum(axis=1))
        cols = np.clip(np.searchsorted(edges, logs[hit], side="right") - 1, 0, nb - 1)
        spec.append(np.bincount(rows * nb + cols, minlength=len(e) * nb).reshape(len(e), nb).astype(np.int32))
        if with_cells:
            cells.append(low_level_input(block, e))
    return CaloSample(
        energy_gev=np.concatenate(energies), high_level=np.concatenate(hl), names=high_level_names(nl),
        layer_gev=np.concatenate(layers), spectrum=np.concatenate(spec),
        cells=np.concatenate(cells) if with_cells else None, x_profile_sum=xs, y_profile_sum=ys, n_nonempty=n_nonempty)


@dataclass(frozen=True)
class FidelityConfig:
    """Settings of :func:`evaluate` (``hpcgen validate calo`` flags of the same names)."""

    bins: int = distances.DEFAULT_BINS
    resamples: int = MIN_RESAMPLES
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    # Resamples of the classifiers' floors: each is a k-fold training, so it has its own count (tests lower it).
    classifier_resamples: int = MIN_RESAMPLES
    cross_check: bool = True  # the gradient-boosted classifier beside the DNN
    low_level: bool = False  # the voxel classifier (costs ~100x the high-level one on a CPU)
    per_energy_classifier: bool = False  # classifiers per energy too (always pooled)
    fpd: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.resamples, self.classifier_resamples) < 1:
            raise ValueError(f"resamples must be >= 1, got {self.resamples} and {self.classifier_resamples}")
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")


def energy_groups(e_ref: np.ndarray, e_test: np.ndarray) -> list[tuple[str, float | None, np.ndarray, np.ndarray]]:
    """[(label, energy GeV or None, ref indices, test indices)]: one per discrete energy both samples have
    (few distinct energies), then "pooled"."""
    groups = []
    values = np.unique(np.concatenate([e_ref, e_test]))
    if values.size <= MAX_DISCRETE_ENERGIES:
        for v in values:
            ir, it = np.flatnonzero(e_ref == v), np.flatnonzero(e_test == v)
            if ir.size and it.size:
                groups.append((f"{v:g} GeV", float(v), ir, it))
    if len(groups) != 1:
        groups.append(("pooled", None, np.arange(len(e_ref)), np.arange(len(e_test))))
    return groups


def _spread(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _half_size(n_ref: int, n_test: int) -> int:
    return min(n_test, n_ref // 2)


def _group_rng(cfg: FidelityConfig, label: str, size: int) -> np.random.Generator:
    """The stream of a group's reference splits: the same for every test sample of that group and size, so all
    generators are scored against the same reference halves and the floors are computed once."""
    return np.random.default_rng([cfg.seed, zlib.crc32(label.encode()), size])


def _histogram_metrics(ref: CaloSample, test: CaloSample, label: str, ir: np.ndarray, it: np.ndarray,
                       cfg: FidelityConfig, rng: np.random.Generator, floors: dict) -> dict[str, tuple[list, list]]:
    """name -> (values over resamples, floor values over resamples) for S of every histogram, FPD and KPD.
    ``floors`` caches the floor values by (label, size) across test samples."""
    size = _half_size(ir.size, it.size)
    split_rng = _group_rng(cfg, label, size)
    hr, ht = ref.histogram_features(), test.histogram_features()
    key = (label, size, "histograms")
    cached = floors.get(key)
    vals: dict[str, list] = {}
    fl: dict[str, list] = {}

    def add(name, value, floor):
        vals.setdefault(name, []).append(value)
        if cached is None:
            fl.setdefault(name, []).append(floor())

    for _ in range(cfg.resamples):
        a, b = (ir[k] for k in disjoint_halves(ir.size, size, split_rng))
        t = it if it.size == size else np.sort(rng.choice(it, size, replace=False))
        layer_v, layer_f = [], []
        for name in hr:
            ra = hr[name][a]
            sv = distances.separation_power(ra, ht[name][t], cfg.bins)
            sf = None if cached else distances.separation_power(ra, hr[name][b], cfg.bins)
            if name.startswith("layer_energy_"):
                layer_v.append(sv)
                layer_f.append(sf)
            add(f"S_{name}", sv, lambda sf=sf: sf)
        add("S_layer_energy_median", float(np.median(layer_v)), lambda: float(np.median(layer_f)))
        add("S_layer_energy_max", float(np.max(layer_v)), lambda: float(np.max(layer_f)))
        spec_a = ref.spectrum[a].sum(axis=0)
        add("S_cell_energy_spectrum", _spectrum_s(spec_a, test.spectrum[t].sum(axis=0)),
            lambda: _spectrum_s(spec_a, ref.spectrum[b].sum(axis=0)))
        if cfg.fpd:
            seed = int(split_rng.integers(2**31))
            xa, xb, xt = ref.high_level[a], ref.high_level[b], test.high_level[t]
            add("FPD", frechet.fpd(xa, xt, seed=seed)[0], lambda: frechet.fpd(xa, xb, seed=seed)[0])
            add("KPD", frechet.kpd(xa, xt, seed=seed)[0], lambda: frechet.kpd(xa, xb, seed=seed)[0])
    if cached is None:
        floors[key] = cached = fl
    return {name: (v, cached[name]) for name, v in vals.items()}


def _spectrum_s(h_ref: np.ndarray, h_test: np.ndarray) -> float | None:
    if h_ref.sum() == 0 or h_test.sum() == 0:
        return None if h_ref.sum() == h_test.sum() else 1.0
    return distances.separation_power_hist(h_ref, h_test)


def _classifier_metrics(x_ref: np.ndarray, x_test: np.ndarray, label: str, ir, it, ccfg: ClassifierConfig,
                        cfg: FidelityConfig, rng: np.random.Generator, floors: dict, name: str) -> dict:
    """Value: k-fold AUC/JSD over seeds, each seed on its own reference half of ``size`` showers and ``size`` test
    showers; floor: one k-fold run per disjoint-halves resample (cached in ``floors`` across test samples)."""
    size = _half_size(ir.size, it.size)
    per_seed = []
    for _ in range(ccfg.seeds):
        a, _ = disjoint_halves(ir.size, size, rng)
        t = it if it.size == size else np.sort(rng.choice(it, size, replace=False))
        r = classifier_test(x_ref[ir[a]], x_test[t], replace(ccfg, seeds=1), seed=int(rng.integers(2**31)))
        per_seed.append((r.auc, r.jsd))
    key = (label, size, name)
    if key not in floors:
        split_rng = _group_rng(cfg, label + name, size)
        floor = []
        for _ in range(cfg.classifier_resamples):
            a, b = disjoint_halves(ir.size, size, split_rng)
            r = classifier_test(x_ref[ir[a]], x_ref[ir[b]], replace(ccfg, seeds=1), seed=int(split_rng.integers(2**31)))
            floor.append((r.auc, r.jsd))
        floors[key] = np.asarray(floor)
    pv, pf = np.asarray(per_seed), floors[key]
    return {"auc": (pv[:, 0], Floor(tuple(pf[:, 0]))), "jsd": (pv[:, 1], Floor(tuple(pf[:, 1]))),
            "n_per_class": size}


def _classifiers(ref: CaloSample, test: CaloSample, label, ir, it, cfg: FidelityConfig, rng, floors) -> dict[str, dict]:
    runs = {"AUC_high_level": (ref.high_level, test.high_level, cfg.classifier)}
    if cfg.cross_check:
        runs["AUC_high_level_gbdt"] = (ref.high_level, test.high_level, replace(cfg.classifier, family="gbdt"))
    if cfg.low_level:
        if ref.cells is None or test.cells is None:
            raise ValueError("the low-level classifier needs the samples' cells (summarise(..., with_cells=True))")
        runs["AUC_low_level"] = (ref.cells, test.cells, replace(cfg.classifier, standardise=False))
    return {name: _classifier_metrics(xr, xt, label, ir, it, c, cfg, rng, floors, name)
            for name, (xr, xt, c) in runs.items()}


def _response(sample: CaloSample, idx: np.ndarray) -> dict:
    """Mean E_vis/E_p and its relative width σ/μ (with bootstrap-free standard errors)."""
    r = sample.column("sampling_fraction")[idx]
    n = r.size
    mean, sd = float(r.mean()), float(r.std(ddof=1)) if n > 1 else 0.0
    return {"n": int(n), "mean": mean, "mean_err": sd / math.sqrt(n) if n else None,
            "rel_width": sd / mean if mean else None,
            "rel_width_err": (sd / mean) / math.sqrt(2 * (n - 1)) if mean and n > 1 else None}


def evaluate(ref: CaloSample, tests: dict[str, CaloSample], cfg: FidelityConfig = FidelityConfig(),
             warn=None) -> dict[str, dict]:
    """Every metric per energy group and pooled, each with value, spread and floor, for every test sample against
    the one reference; see the module docstring. Floors are computed once per (group, size) and shared.

    Returns {test name: {"groups": [{label, energy_gev, n_ref, n_test, half_size, metrics: {name: row},
    response: {ref, test}}], "config": ...}}. Classifiers run on the last group (pooled, or the only energy) and,
    with ``cfg.per_energy_classifier``, on every group. ``warn(msg)`` is called when a group's halves are too
    small for a meaningful floor, with the floor's width.
    """
    floors: dict = {}
    warned: set = set()
    out = {}
    for test_name, test in tests.items():
        rng = np.random.default_rng([cfg.seed, zlib.crc32(test_name.encode())])
        groups = []
        todo = energy_groups(ref.energy_gev, test.energy_gev)
        for i, (label, energy, ir, it) in enumerate(todo):
            size = _half_size(ir.size, it.size)
            if size < 2 * cfg.classifier.folds:
                if warn:
                    warn(f"{label}: {ir.size} reference and {it.size} test showers are too few for floors; skipped")
                continue
            rows: dict[str, dict] = {}
            for name, (vals, floor) in _histogram_metrics(ref, test, label, ir, it, cfg, rng, floors).items():
                if any(v is None for v in vals + floor):
                    continue
                rows[name] = verdict_row(name, float(np.median(vals)), Floor(tuple(floor)), spread=_spread(vals)) | {
                    "values": vals, "floor_values": list(floor)}
            if i == len(todo) - 1 or cfg.per_energy_classifier:
                for name, c in _classifiers(ref, test, label, ir, it, cfg, rng, floors).items():
                    for metric, (vals, fl) in ((name, c["auc"]), (name.replace("AUC", "JSD"), c["jsd"])):
                        rows[metric] = verdict_row(metric, float(vals.mean()), fl, spread=_spread(vals)) | {
                            "values": vals.tolist(), "floor_values": list(fl.values), "n_per_class": c["n_per_class"]}
            if size < MIN_HALF_SIZE and warn and (label, size) not in warned:  # once per floor, not per test
                warned.add((label, size))
                fl = rows.get("AUC_high_level") or rows.get("S_e_vis_over_e_p")
                width = "" if fl is None else f" (floor of {fl['metric']}: p50 {fl['floor_p50']:.3g}, p95 {fl['floor_p95']:.3g})"
                warn(f"{label}: halves of {size} showers (< {MIN_HALF_SIZE}) give a wide floor{width}; "
                     f"use >= {2 * MIN_HALF_SIZE} reference and >= {MIN_HALF_SIZE} test showers per energy")
            groups.append({"label": label, "energy_gev": energy, "n_ref": int(ir.size), "n_test": int(it.size),
                           "half_size": size, "metrics": rows,
                           "response": {"ref": _response(ref, ir), "test": _response(test, it)}})
        out[test_name] = {"groups": groups, "config": asdict(cfg)}
    return out


# The verdict table's rows, in order: the summary a physicist reads first.
VERDICT_METRICS = ("AUC_high_level", "AUC_low_level", "AUC_high_level_gbdt", "JSD_high_level", "S_e_vis_over_e_p",
                   "S_layer_energy_median", "S_layer_energy_max", *(f"S_{m}" for m in MOMENTS), "S_hit_count",
                   "S_cell_energy_spectrum", "FPD", "KPD")
