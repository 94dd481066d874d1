"""2D Ising fidelity of ``hpcgen validate ising``: the observables of :mod:`hpcgen.physics.ising_observables` per
temperature beside their reference-vs-reference floors (:mod:`hpcgen.fidelity.floors`), the exact finite-L values
(:mod:`hpcgen.physics.ising_exact`) and a configuration classifier (:mod:`hpcgen.fidelity.classifier`). Pure
functions: no files, no plots (docs/ising.md, "Validation").

Per temperature present in both samples (matched exactly, as stored in the files):

- **Observables**, each from its one estimator in ``ising_observables``: the energy per site E = ⟨e⟩ [J], |M| =
  ⟨|m|⟩, C_v [k_B], χ [1/J], U4 and G(r), r = 0..L/2 (the mean of every configuration's ``spin_correlation``,
  which is G of the sample, so a subset's G costs no lattice pass). Whole-sample values, bootstrap standard errors
  (``bootstrap`` resamples of the configurations with replacement: the files are thinned to about independent
  samples, ``hpcgen.physics.autocorrelation.thin_from_tau``) and the relative difference test/ref − 1.
- **Verdict metric** of each observable: |rel. diff| = |X_test/X_ref − 1|; for G(r) the relative L1 difference
  Σ_{r=1}^{L/2} |G_test(r) − G_ref(r)| / Σ_{r=1}^{L/2} G_ref(r), which stays defined where G(r) → 0 at large r above
  T_c (G(0) = 1 is left out). Floor, as in :mod:`hpcgen.fidelity.cosmo`: for ``resamples`` random splits of the
  reference at this temperature into disjoint halves A, B of ``half_size`` configurations, the floor is
  metric(A, B) and the value metric(A, T), T ``half_size`` random test configurations, so value and floor share
  their finite-sample bias; value = median over the resamples (± half their 16–84 % range), floor p50 / p95,
  within floor = value ≤ p95.
- **Exact values** at the file's L: Kaufman's finite-L energy and C_v for every L (Onsager's energy and Yang's
  magnetisation are L → ∞ and wrong at finite L near T_c: they are drawn in the plots only); |M|, χ and U4 by exact
  enumeration at L = 4 only (no finite-L closed form exists for them). Pull = (X − exact)/σ_bootstrap of each
  sample; a correct Monte Carlo sample has |pull| of order 1.
- **Classifier** AUC (the CaloChallenge DNN, :func:`hpcgen.fidelity.classifier.classifier_test`, standardised
  inputs) per temperature and pooled, on features invariant under the global spin flip s → −s: the energy per site
  e, |m|, and the configuration multiplied by the sign of its magnetisation (ties +1), flattened (L² values); the
  pooled classifier also gets T, on the same number of configurations per temperature from both samples. At most
  ``max_configs`` random configurations per temperature and sample enter. Value: the k-fold AUC of
  ``classifier.seeds`` runs, each on its own reference half and ``half_size`` test configurations; floor: one
  k-fold run on two disjoint reference halves per resample, ``classifier_resamples`` of them (as in
  :mod:`hpcgen.fidelity.calo`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from hpcgen.fidelity.classifier import ClassifierConfig, classifier_test
from hpcgen.fidelity.floors import MIN_HALF_SIZE, MIN_RESAMPLES, Floor, disjoint_halves, verdict_row
from hpcgen.physics import ising_exact
from hpcgen.physics import ising_observables as obs

OBSERVABLES = ("E", "absM", "Cv", "chi", "U4", "G")
LABELS = {"E": "E per site", "absM": "|M| per site", "Cv": "C_v per site", "chi": "χ per site", "U4": "U4",
          "G": "G(r)"}
UNITS = {"E": "J", "absM": "1", "Cv": "k_B", "chi": "1/J", "U4": "1", "G": "1", "temperature": "J/k_B",
         "AUC": "1 (0.5 = indistinguishable)"}
DEFAULT_BOOTSTRAP = 200
DEFAULT_MAX_CONFIGS = 2000
DEFAULT_CHUNK = 4096
ENUMERATED_L = 4  # exact |M|, χ, U4 by enumeration: 2^16 states (ising_exact.MAX_ENUMERATED_SITES = 20)

CONVENTIONS = {
    "observables": "hpcgen.physics.ising_observables: e = H/L², m = Σs/L², C_v = L² var(e)/T², χ = L² var(|m|)/T "
    "(finite-lattice |m| definition), U4 = 1 − ⟨m⁴⟩/(3⟨m²⟩²), G(r) = ⟨s_x s_{x+rê}⟩ along both axes (not "
    "connected); population variances; J = 1, k_B = 1, per site.",
    "errors": "bootstrap over configurations (resampled with replacement, `bootstrap` times): the files are thinned "
    "to ≈ independent samples (thin = ⌈2 τ_int⌉ sweeps).",
    "rel_diff": "X_test/X_ref − 1; the verdict metric is its absolute value; for G(r) Σ_{r≥1}|ΔG(r)| / "
    "Σ_{r≥1} G_ref(r).",
    "floor": "per temperature, `resamples` splits of the reference into disjoint halves A, B of `half_size` "
    "configurations: floor = metric(A, B), value = metric(A, T) for `half_size` random test configurations; value = "
    "median over resamples (± half the 16–84 % range), floor p50 / p95; within floor p95 = value ≤ p95.",
    "exact": "Kaufman 1949 finite-L (torus) energy and C_v at the files' L for every L; |M|, χ, U4 by exact "
    "enumeration at L = 4 only; pull = (X − exact)/σ_bootstrap. Onsager (E) and Yang (|M|) are L → ∞ and only drawn.",
    "classifier": "CaloChallenge DNN (hpcgen.fidelity.classifier), standardised inputs [e, |m|, s·sgn(m) flattened] "
    "(sgn(0) = +1: invariant under the global flip), pooled: [T, e, |m|, s·sgn(m)] on equally many configurations "
    "per temperature from both samples; k-fold AUC; value: mean ± std over `classifier.seeds` runs each on its own "
    "reference half; floor: one k-fold run per disjoint-halves resample (`classifier_resamples`).",
}


@dataclass(frozen=True)
class IsingFidelityConfig:
    """Settings of :func:`evaluate` (``hpcgen validate ising`` flags of the same names).

    resamples: disjoint-halves resamples of every observable's floor. bootstrap: resamples of the standard errors.
    max_configs: configurations per temperature and sample the classifier reads (0 = all; the observables use all).
    classifier_resamples: k-fold trainings of each classifier floor. classifier_enabled: False skips the classifier.
    """

    resamples: int = MIN_RESAMPLES
    bootstrap: int = DEFAULT_BOOTSTRAP
    max_configs: int = DEFAULT_MAX_CONFIGS
    classifier: ClassifierConfig = field(default_factory=lambda: ClassifierConfig(seeds=3))
    classifier_resamples: int = 10
    classifier_enabled: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("resamples", "bootstrap", "classifier_resamples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.bootstrap) < 2:
            raise ValueError(f"bootstrap must be >= 2, got {self.bootstrap}")
        if int(self.max_configs) < 0:
            raise ValueError(f"max_configs must be >= 0 (0 = all), got {self.max_configs}")


@dataclass
class IsingSample:
    """Per-configuration observables of one sample (rows are configurations) and the spins the classifier reads.

    energy, magnetisation, abs_magnetisation (N,) per site; correlation (N, L//2 + 1) each configuration's G(r);
    classifier_index (K,) the configurations whose spins ``classifier_spins`` (K, L, L) int8 holds.
    """

    L: int
    temperature: np.ndarray
    energy: np.ndarray
    magnetisation: np.ndarray
    abs_magnetisation: np.ndarray
    correlation: np.ndarray
    classifier_index: np.ndarray
    classifier_spins: np.ndarray

    def __len__(self) -> int:
        return int(self.temperature.size)


def _classifier_subset(temperature: np.ndarray, max_configs: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_configs`` random configurations per temperature (all when 0)."""
    keep = []
    for t in np.unique(temperature):
        idx = np.flatnonzero(temperature == t)
        if max_configs and idx.size > max_configs:
            idx = rng.choice(idx, max_configs, replace=False)
        keep.append(idx)
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, dtype=np.int64)


def summarise(spins, temperature, which: str, max_configs: int = DEFAULT_MAX_CONFIGS, seed: int = 0,
              chunk: int = DEFAULT_CHUNK) -> IsingSample:
    """Read ``spins`` (N, L, L) ±1 (an array or h5py dataset, slice by slice) and ``temperature`` (N,) into an
    :class:`IsingSample`. Errors name ``which`` sample."""
    spins = spins if hasattr(spins, "shape") else np.asarray(spins)
    temperature = np.asarray(temperature, dtype=np.float64)
    shape = tuple(spins.shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] < 2:
        raise ValueError(f"{which} spins have shape {shape}; expected (N, L, L)")
    n, L = shape[0], shape[1]
    if n == 0:
        raise ValueError(f"{which} sample is empty")
    if temperature.shape != (n,) or not (np.isfinite(temperature).all() and (temperature > 0).all()):
        raise ValueError(f"{which} temperature must be ({n},) finite values > 0, got shape {temperature.shape}")
    # the subset depends on the seed and the temperatures only, not on the label: one reference, one subset
    chosen = _classifier_subset(temperature, int(max_configs), np.random.default_rng([seed, zlib.crc32(b"subset")]))
    e, m, am, g, kept = [], [], [], [], []
    for s in range(0, n, chunk):
        block = np.ascontiguousarray(spins[s:s + chunk], dtype=np.int8)
        if (np.abs(block.astype(np.int16)) != 1).any():
            raise ValueError(f"{which} configurations {s}..{s + len(block) - 1} hold values other than +1 and -1")
        e.append(obs.energy_per_site(block))
        m.append(obs.magnetisation_per_site(block))
        am.append(obs.abs_magnetisation_per_site(block))
        g.append(np.stack([obs.spin_correlation(block[k:k + 1]) for k in range(len(block))]))
        sel = chosen[(chosen >= s) & (chosen < s + len(block))]
        kept.append(block[sel - s])
    return IsingSample(L=L, temperature=temperature, energy=np.concatenate(e), magnetisation=np.concatenate(m),
                       abs_magnetisation=np.concatenate(am), correlation=np.concatenate(g), classifier_index=chosen,
                       classifier_spins=np.concatenate(kept))


def observables(sample: IsingSample, idx: np.ndarray, temperature: float) -> dict:
    """Every observable of the configurations ``idx`` of ``sample`` at ``temperature`` (G as an array over r)."""
    e, m, am = sample.energy[idx], sample.magnetisation[idx], sample.abs_magnetisation[idx]
    return {"E": float(e.mean()), "absM": float(am.mean()),
            "Cv": obs.specific_heat_per_site(e, temperature, sample.L),
            "chi": obs.susceptibility_per_site(am, temperature, sample.L),
            "U4": obs.binder_cumulant(m), "G": sample.correlation[idx].mean(axis=0)}


def bootstrap_errors(sample: IsingSample, idx: np.ndarray, temperature: float, n_boot: int,
                     rng: np.random.Generator) -> dict:
    """Standard deviation over ``n_boot`` bootstrap resamples of ``idx`` of every observable."""
    draws = [observables(sample, idx[rng.integers(0, idx.size, idx.size)], temperature) for _ in range(n_boot)]
    return {k: np.std([d[k] for d in draws], axis=0, ddof=1) for k in OBSERVABLES}


def abs_rel_diff(name: str, ref, test) -> float:
    """The verdict metric of observable ``name`` (module docstring); NaN where the reference value is 0."""
    if name == "G":
        r, t = np.asarray(ref)[1:], np.asarray(test)[1:]
        den = float(r.sum())
        return float(np.abs(t - r).sum() / den) if den > 0 else math.nan
    return abs(test / ref - 1.0) if ref != 0 else math.nan


def exact_values(temperature: float, L: int) -> dict:
    """{observable: (exact value, source)} at one temperature for an L×L torus (module docstring)."""
    k = ising_exact.kaufman_partition(temperature, L, L)
    source = f"Kaufman 1949, {L}x{L} torus"
    out = {"E": (k.energy_per_site, source), "Cv": (k.specific_heat_per_site, source)}
    if L == ENUMERATED_L:
        ex = ising_exact.enumeration_observables(temperature, L, L)
        source = f"exact enumeration of the {L}x{L} torus"
        out.update({"absM": (ex.abs_magnetisation_per_site, source), "chi": (ex.susceptibility_per_site, source),
                    "U4": (ex.binder_cumulant, source)})
    return out


def exact_curves(temperatures, L: int) -> dict:
    """The exact curves on a temperature grid: Kaufman E and C_v at this L, Onsager E and Yang |M| (L → ∞), and at
    L = 4 the enumeration's |M|, χ, U4 (None otherwise)."""
    t = np.asarray(temperatures, dtype=np.float64)
    kaufman = [ising_exact.kaufman_partition(float(x), L, L) for x in t]
    out = {"temperature": t.tolist(),
           "kaufman": {"E": [k.energy_per_site for k in kaufman], "Cv": [k.specific_heat_per_site for k in kaufman]},
           "onsager_E": np.atleast_1d(ising_exact.onsager_energy_per_site(t)).tolist(),
           "yang_absM": np.atleast_1d(ising_exact.yang_magnetisation(t)).tolist(), "enumeration": None}
    if L == ENUMERATED_L:
        ex = [ising_exact.enumeration_observables(float(x), L, L) for x in t]
        out["enumeration"] = {"absM": [x.abs_magnetisation_per_site for x in ex],
                              "chi": [x.susceptibility_per_site for x in ex], "U4": [x.binder_cumulant for x in ex]}
    return out


def classifier_features(sample: IsingSample, with_temperature: bool = False) -> np.ndarray:
    """(K, 2 + L²) features of the classifier configurations: e, |m|, s·sgn(m) flattened (sgn(0) = +1); with
    ``with_temperature`` T is the first column (K, 3 + L²)."""
    idx = sample.classifier_index
    sign = np.where(sample.magnetisation[idx] >= 0, 1, -1).astype(np.int8)
    flipped = (sample.classifier_spins * sign[:, None, None]).reshape(idx.size, -1)
    cols = [sample.energy[idx, None], sample.abs_magnetisation[idx, None], flipped]
    if with_temperature:
        cols.insert(0, sample.temperature[idx, None])
    return np.concatenate(cols, axis=1).astype(np.float64)


def _spread(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def _temperature_rng(cfg: IsingFidelityConfig, temperature: float, size: int, what: str) -> np.random.Generator:
    """The stream of one temperature's reference splits: fixed by (seed, T, size, what), whatever the test."""
    return np.random.default_rng([cfg.seed, zlib.crc32(f"{temperature!r}/{what}".encode()), size])


def _observable_floors(ref: IsingSample, test: IsingSample, ir, it, temperature: float, size: int,
                       cfg: IsingFidelityConfig, rng: np.random.Generator) -> dict:
    """{observable: verdict fields} from ``cfg.resamples`` disjoint-halves resamples (module docstring)."""
    split_rng = _temperature_rng(cfg, temperature, size, "observables")
    values = {k: [] for k in OBSERVABLES}
    floors = {k: [] for k in OBSERVABLES}
    for _ in range(cfg.resamples):
        a, b = (ir[k] for k in disjoint_halves(ir.size, size, split_rng))
        t = np.sort(rng.choice(it, size, replace=False))
        oa, ob, ot = (observables(s, i, temperature) for s, i in ((ref, a), (ref, b), (test, t)))
        for k in OBSERVABLES:
            floors[k].append(abs_rel_diff(k, oa[k], ob[k]))
            values[k].append(abs_rel_diff(k, oa[k], ot[k]))
    out = {}
    for k in OBSERVABLES:
        fv, tv = np.asarray(floors[k]), np.asarray(values[k])
        # an observable undefined in most resamples (a reference value of 0) has no floor
        floor = Floor(tuple(fv[np.isfinite(fv)].tolist())) if np.isfinite(fv).sum() > cfg.resamples // 2 else None
        tvf = tv[np.isfinite(tv)]
        enough = tvf.size > cfg.resamples // 2
        out[k] = {"value": float(np.median(tvf)) if enough else None,
                  "spread": 0.5 * float(np.percentile(tvf, 84) - np.percentile(tvf, 16)) if enough else None,
                  "floor": floor, "values": tv.tolist(), "floor_values": fv.tolist()}
    return out


def _classifier(x_ref: list[np.ndarray], x_test: list[np.ndarray], sizes: list[int], key: str,
                cfg: IsingFidelityConfig, rng: np.random.Generator, cache: dict) -> dict:
    """AUC value (``classifier.seeds`` k-fold runs, each on fresh reference halves and test subsets of ``sizes``
    per temperature group) and floor (``classifier_resamples`` k-fold runs of reference half against half; kept in
    ``cache`` by (key, sizes): the floor depends on the reference and the configuration only)."""
    ccfg = replace(cfg.classifier, seeds=1)
    per_seed = []
    for _ in range(cfg.classifier.seeds):
        r, t = [], []
        for xr, xt, size in zip(x_ref, x_test, sizes):
            a, _ = disjoint_halves(len(xr), size, rng)
            r.append(xr[a])
            t.append(xt[np.sort(rng.choice(len(xt), size, replace=False))])
        per_seed.append(classifier_test(np.concatenate(r), np.concatenate(t), ccfg, seed=int(rng.integers(2**31))).auc)
    if (key, *sizes) not in cache:
        split_rng = np.random.default_rng([cfg.seed, zlib.crc32(key.encode()), *sizes])
        runs = []
        for _ in range(cfg.classifier_resamples):
            a, b = [], []
            for xr, size in zip(x_ref, sizes):
                ia, ib = disjoint_halves(len(xr), size, split_rng)
                a.append(xr[ia])
                b.append(xr[ib])
            runs.append(classifier_test(np.concatenate(a), np.concatenate(b), ccfg,
                                        seed=int(split_rng.integers(2**31))).auc)
        cache[(key, *sizes)] = runs
    floor = cache[(key, *sizes)]
    return {"value": float(np.mean(per_seed)), "spread": _spread(per_seed), "floor": Floor(tuple(floor)),
            "values": per_seed, "floor_values": floor, "n_per_class": int(sum(sizes))}


def shared_temperatures(t_ref: np.ndarray, t_test: np.ndarray) -> np.ndarray:
    """The temperatures both samples hold configurations at, compared exactly as stored."""
    return np.intersect1d(np.unique(t_ref), np.unique(t_test))


def temperature_list(t) -> str:
    values = np.unique(np.asarray(t, dtype=np.float64))
    return "{" + ", ".join(f"{v:.6g}" for v in values[:12]) + (", ..." if values.size > 12 else "") + "}"


def _row(metric: str, key: str, temperature: float | None, v: dict, unit: str = "1") -> dict:
    row = verdict_row(metric, v["value"], v["floor"], spread=v["spread"], unit=unit)
    return {"key": key, "temperature": temperature, **row}


def evaluate(ref: IsingSample, test: IsingSample, cfg: IsingFidelityConfig = IsingFidelityConfig(),
             warn=None, floor_cache: dict | None = None) -> dict:
    """Every observable, exact comparison, classifier and verdict row of ``test`` against ``ref`` (the module
    docstring); nothing is written. ``warn(msg)`` gets one-line warnings (temperatures skipped, wide floors).
    ``floor_cache``: a dict shared by calls with one reference and one ``cfg`` (several test samples), so that the
    classifier floors, the costly part, are trained once; the floors are the same with or without it.

    Returns {"L", "temperatures", "per_temperature": [...], "classifier_pooled", "verdict": [rows], "warnings",
    "config"}; every verdict row has ``key`` (observable or "AUC") and ``temperature`` (None = pooled).
    """
    if ref.L != test.L:
        raise ValueError(f"test configurations are {test.L}x{test.L} but the reference's are {ref.L}x{ref.L}; "
                         "compare one lattice size")
    warnings: list[str] = []

    def note(msg: str) -> None:
        warnings.append(msg)
        if warn:
            warn(msg)

    temps = shared_temperatures(ref.temperature, test.temperature)
    if temps.size == 0:
        raise ValueError(f"the test temperatures {temperature_list(test.temperature)} share none with the "
                         f"reference's {temperature_list(ref.temperature)} (matched exactly, as stored)")
    rng = np.random.default_rng([cfg.seed, 1])
    cache = {} if floor_cache is None else floor_cache
    x_ref = x_test = None
    if cfg.classifier_enabled:
        x_ref, x_test = classifier_features(ref, True), classifier_features(test, True)
    per_t, verdict, pooled_groups, small = [], [], [], []
    for temperature in temps:
        T = float(temperature)
        ir, it = np.flatnonzero(ref.temperature == temperature), np.flatnonzero(test.temperature == temperature)
        size = min(ir.size // 2, it.size)
        if size < 2:
            note(f"T={T:.6g}: {ir.size} reference and {it.size} test configurations are too few for a floor "
                 "(two disjoint reference halves of >= 2); skipped")
            continue
        if size < MIN_HALF_SIZE:
            small.append((T, size))
        values = {"ref": observables(ref, ir, T), "test": observables(test, it, T)}
        errors = {"ref": bootstrap_errors(ref, ir, T, cfg.bootstrap, rng),
                  "test": bootstrap_errors(test, it, T, cfg.bootstrap, rng)}
        floors = _observable_floors(ref, test, ir, it, T, size, cfg, rng)
        entry = {"temperature": T, "n_ref": int(ir.size), "n_test": int(it.size), "half_size": size,
                 "observables": {}, "exact": {}, "classifier": None}
        for k in OBSERVABLES:
            r, t, sr, st = values["ref"][k], values["test"][k], errors["ref"][k], errors["test"][k]
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.asarray(t) / np.asarray(r) - 1.0
                rel_err = np.abs(np.asarray(t) / np.asarray(r)) * np.hypot(np.asarray(sr) / np.asarray(r),
                                                                           np.asarray(st) / np.asarray(t))
            entry["observables"][k] = {**{name: _plain(x) for name, x in (
                ("ref", r), ("ref_err", sr), ("test", t), ("test_err", st), ("rel_diff", rel), ("rel_diff_err", rel_err))},
                **floors[k], "floor": None if floors[k]["floor"] is None else floors[k]["floor"].to_dict()}
            verdict.append(_row(f"T={T:.6g}: {LABELS[k]} |rel. diff|", k, T, floors[k]))
        entry["observables"]["G"]["r"] = list(range(ref.L // 2 + 1))
        for k, (value, source) in exact_values(T, ref.L).items():
            entry["exact"][k] = {"value": value, "source": source,
                                 "ref_pull": _pull(values["ref"][k], value, errors["ref"][k]),
                                 "test_pull": _pull(values["test"][k], value, errors["test"][k])}
        if cfg.classifier_enabled:
            cr = np.flatnonzero(ref.temperature[ref.classifier_index] == temperature)
            ct = np.flatnonzero(test.temperature[test.classifier_index] == temperature)
            c_size = min(cr.size // 2, ct.size)
            if c_size < 2 * cfg.classifier.folds:
                note(f"T={T:.6g}: {cr.size} reference and {ct.size} test configurations are too few for a "
                     f"{cfg.classifier.folds}-fold classifier with a floor; no AUC at this temperature")
            else:
                # per temperature the T column is constant: drop it
                xr, xt = x_ref[cr][:, 1:], x_test[ct][:, 1:]
                c = _classifier([xr], [xt], [c_size], f"AUC/{T!r}", cfg, rng, cache)
                entry["classifier"] = c | {"floor": c["floor"].to_dict()}
                verdict.append(_row(f"T={T:.6g}: classifier AUC", "AUC", T, c, UNITS["AUC"]))
                pooled_groups.append((x_ref[cr], x_test[ct], c_size))
        per_t.append(entry)
    if not per_t:
        raise ValueError("no shared temperature has enough configurations for a floor (two disjoint reference "
                         "halves of >= 2 configurations and >= 2 test configurations)")
    pooled = None
    if len(pooled_groups) > 1:
        key = "AUC/pooled/" + ",".join(repr(e["temperature"]) for e in per_t if e["classifier"] is not None)
        c = _classifier(*(list(z) for z in zip(*pooled_groups)), key, cfg, rng, cache)
        pooled = c | {"floor": c["floor"].to_dict()}
        verdict.append(_row("pooled: classifier AUC (T as a feature)", "AUC", None, c, UNITS["AUC"]))
    if small:
        lo, hi = min(s for _, s in small), max(s for _, s in small)
        note(f"reference halves of {lo if lo == hi else f'{lo}–{hi}'} configurations "
             f"(< {MIN_HALF_SIZE}) at {len(small)} temperature(s) give wide floors; use >= {2 * MIN_HALF_SIZE} "
             f"reference and >= {MIN_HALF_SIZE} test configurations per temperature")
    return {"L": ref.L, "temperatures": [e["temperature"] for e in per_t], "per_temperature": per_t,
            "classifier_pooled": pooled, "verdict": verdict, "warnings": warnings,
            "config": asdict(cfg)}


def _plain(x):
    """A float, or a list of floats for an array (G over r)."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x.tolist()


def _pull(value, exact: float, error) -> float | None:
    return float((value - exact) / error) if error and error > 0 else None
