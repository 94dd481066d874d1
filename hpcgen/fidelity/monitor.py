"""A cheap subset of the fidelity metrics, for scoring a generator while it trains (time to fidelity).

Calorimeter showers (:func:`quick_score`, :data:`TARGETS`):

The subset is the targets of a shipped calorimeter GAN (docs/calo_gan.md), each computed by the same estimator as
``hpcgen validate calo`` (:func:`hpcgen.fidelity.calo.evaluate`) with one resample instead of twenty and one
classifier seed instead of five:

- per energy (pooled when the reference's energies are continuous): the mean of E_vis/E_p and its relative width
  σ/μ, as relative errors against the reference;
- pooled: S(E_vis/E_p) and the median per-layer S, each against the same-size reference-vs-reference value;
- pooled: the high-level DNN classifier AUC.

:func:`meets_targets` says whether a score reaches :data:`TARGETS`. MLPerf HPC times training "to a quality
target" (Farrell et al., arXiv:2110.11466); this is that target for the calorimeter GAN.

Convergence maps (:func:`quick_score_cosmo`, :data:`COSMO_TARGETS`), by :func:`hpcgen.fidelity.cosmo.evaluate` with
``COSMO_RESAMPLES`` reference-half resamples instead of twenty:

- the whole sample's max |ΔC_ℓ/C_ℓ| over the valid ℓ range;
- the pixel-histogram and smoothed peak-height S, each over its floor p95;
- for each Minkowski functional, how far its distance lies above the floor's median in units of the floor's
  spread (reference halves against each other): the CosmoGAN targets' "within 2σ of the reference-vs-reference
  spread".

2D Ising configurations (:func:`quick_score_ising`, :data:`ISING_TARGETS`), by :func:`hpcgen.fidelity.ising.evaluate`
(each observable from its one estimator) with ``ISING_RESAMPLES`` reference-half resamples, two bootstrap
resamples (errors are not used here) and no per-temperature classifier:

- at every temperature both samples hold, the whole-sample |X_test/X_ref − 1| of E and |M| (target 2 %) and of χ
  and C_v (target 10 %); the score is the maximum over the temperatures, the per-temperature values and the
  reference-vs-reference floor p95 of each (disjoint halves; how far a second Monte Carlo sample of half the size
  scatters) are kept beside it, with ``targets_resolvable``: whether that floor's maximum over the temperatures
  is within the target. Above T_c m is Gaussian and |m| has a relative spread of √(π/2 − 1) ≈ 0.76 at every L,
  so |M| to 2 % there needs ≳10⁴ configurations per temperature in each sample; χ, a variance of |m|, is noisy
  wherever |m| has heavy tails (near T_c, and at small L);
- reported, not a target (there is no measured value for a GAN yet to set one): the AUC of one k-fold run of a
  small classifier on the flip-invariant features of :func:`hpcgen.fidelity.ising.classifier_features` with T
  (the pooled classifier of ``validate ising``), on at most ``ISING_CLASSIFIER_CONFIGS`` configurations per
  temperature and sample.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hpcgen.fidelity.calo import CaloSample, FidelityConfig, evaluate
from hpcgen.fidelity.cosmo import MINKOWSKI
from hpcgen.fidelity.cosmo import evaluate as evaluate_cosmo
from hpcgen.fidelity.classifier import ClassifierConfig, classifier_test

# What a shipped calorimeter GAN must reach (issue "A GAN at fidelity"); S values relative to the floor.
TARGETS = {
    "response_mean_rel_error_max": 0.02,  # |mean(E_vis/E_p) / reference − 1| at every energy
    "response_width_rel_error_max": 0.25,  # |σ/μ / reference σ/μ − 1| at every energy
    "S_e_vis_over_e_p_over_floor": 2.0,  # S / floor
    "S_layer_energy_median_over_floor": 2.0,
    "AUC_high_level": 0.85,
}

# What a shipped CosmoGAN must reach (issue "A GAN at fidelity").
COSMO_TARGETS = {
    "cl_max_abs_rel_err_valid": 0.10,  # whole sample, valid ℓ range
    "S_pixel_histogram_over_floor_p95": 2.0,
    "S_peak_heights_over_floor_p95": 2.0,
    "minkowski_excess_sigma_max": 2.0,  # max over V0, V1, V2 of (D − floor p50) / floor std
}
COSMO_RESAMPLES = 8

# What a shipped Ising GAN must reach at every monitor temperature (|X_GAN/X_MC − 1|, whole samples).
ISING_TARGETS = {
    "E_max_abs_rel_err": 0.02,
    "absM_max_abs_rel_err": 0.02,
    "chi_max_abs_rel_err": 0.10,
    "Cv_max_abs_rel_err": 0.10,
}
ISING_RESAMPLES = 8
ISING_CLASSIFIER_CONFIGS = 200  # per temperature and sample; the classifier reads L² + 3 features each
ISING_CLASSIFIER = ClassifierConfig(hidden=64, seeds=1, epochs=30, patience=6, batch=128, lr=1e-3)

QUICK_CONFIG = FidelityConfig(resamples=1, classifier_resamples=1, cross_check=False, fpd=False,
                              classifier=ClassifierConfig(seeds=1))


def quick_score(ref: CaloSample, test: CaloSample, seed: int = 0) -> dict:
    """The monitor's metrics of ``test`` against ``ref`` (see the module docstring); every key of :data:`TARGETS`
    plus the raw S values, their floors, the AUC floor and the per-energy response errors."""
    groups = evaluate(ref, {"test": test}, replace(QUICK_CONFIG, seed=seed))["test"]["groups"]
    if not groups:
        raise ValueError("the monitor's reference and test samples share no energies with enough showers")
    pooled = groups[-1]["metrics"]
    per_energy = {}
    discrete = [g for g in groups if g["energy_gev"] is not None] or groups  # continuous energies: pooled only
    for g in discrete:
        r, t = g["response"]["ref"], g["response"]["test"]
        width = float("inf") if t["rel_width"] is None else t["rel_width"] / r["rel_width"] - 1  # empty showers
        per_energy[g["label"]] = {"mean_rel_error": t["mean"] / r["mean"] - 1, "width_rel_error": width}
    out = {"n_per_class": pooled["AUC_high_level"]["n_per_class"],
           "AUC_high_level": pooled["AUC_high_level"]["value"],
           "AUC_high_level_floor": pooled["AUC_high_level"]["floor_p50"]}
    for name in ("S_e_vis_over_e_p", "S_layer_energy_median"):
        value, floor = pooled[name]["value"], pooled[name]["floor_p50"]
        out[name], out[f"{name}_floor"] = value, floor
        out[f"{name}_over_floor"] = value / floor if floor > 0 else float("inf")
    # every pooled separation power over its floor (the shape observables a target list leaves out: widths, hits)
    out["S_over_floor"] = {k: m["value"] / m["floor_p50"] if m["floor_p50"] > 0 else float("inf")
                           for k, m in pooled.items() if k.startswith("S_")}
    errors = list(per_energy.values())
    out["response_mean_rel_error_max"] = float(max(abs(e["mean_rel_error"]) for e in errors))
    out["response_width_rel_error_max"] = float(max(abs(e["width_rel_error"]) for e in errors))
    out["per_energy"] = per_energy
    out["meets_targets"] = meets_targets(out)
    return out


def meets_targets(score: dict, targets: dict | None = None) -> bool:
    """True when every metric of ``targets`` (default :data:`TARGETS`) is at or below its limit."""
    targets = TARGETS if targets is None else targets
    return all(np.isfinite(score[k]) and score[k] <= v for k, v in targets.items())


def quick_score_cosmo(ref_kappa, test_kappa, pixel_rad: float, seed: int = 0, ref_limits=None) -> dict:
    """The monitor's metrics of ``test_kappa`` maps against ``ref_kappa`` maps (module docstring): every key of
    :data:`COSMO_TARGETS` plus the raw values, their floors and the valid ℓ range."""
    m = evaluate_cosmo(ref_kappa, test_kappa, pixel_rad, n_resamples=COSMO_RESAMPLES, seed=seed,
                       ref_limits=ref_limits)
    if m["floors"] is None:
        raise ValueError("the monitor's reference needs at least 4 maps (two halves of 2) for its floors")
    floors = m["floors"]["metrics"]

    def value(k):  # median over the resamples, as the floors are; inf where undefined (no peaks, no valid bin)
        v = floors[k]["value"]
        return float("inf") if v is None else v["median"]

    def floor(k, what):
        f = floors[k]["floor"]
        return float("nan") if f is None else f[what]

    cl = m["whole_sample"]["cl_max_abs_rel_err_valid"]
    out = {"n_ref": m["ref"]["n"], "n_test": m["test"]["n"], "ell_valid_range": m["ell_valid_range"],
           "cl_max_abs_rel_err_valid": float("inf") if cl is None else cl,
           "cl_max_abs_rel_err_valid_floor_p95": floor("cl_max_abs_rel_err_valid", "p95")}
    for k in ("S_pixel_histogram", "S_peak_heights"):
        out[k], out[f"{k}_floor_p95"] = value(k), floor(k, "p95")
        out[f"{k}_over_floor_p95"] = out[k] / out[f"{k}_floor_p95"] if out[f"{k}_floor_p95"] > 0 else float("inf")
    excess = {}
    for k in MINKOWSKI:
        d, p50, std = value(f"D_{k}"), floor(f"D_{k}", "p50"), floor(f"D_{k}", "std")
        out[f"D_{k}"] = d
        excess[k] = (d - p50) / std if std > 0 else (0.0 if d <= p50 else float("inf"))
    out["minkowski_excess_sigma"] = excess
    out["minkowski_excess_sigma_max"] = float(max(excess.values()))
    out["meets_targets"] = meets_targets(out, COSMO_TARGETS)
    return out


def quick_score_ising(ref, test, seed: int = 0, classifier: bool = True) -> dict:
    """The monitor's metrics of ``test`` against ``ref`` (:class:`hpcgen.fidelity.ising.IsingSample` s, module
    docstring): every key of :data:`ISING_TARGETS`, the per-temperature relative errors and floors, and (when
    ``classifier``) the pooled classifier AUC."""
    from hpcgen.fidelity.ising import IsingFidelityConfig, classifier_features
    from hpcgen.fidelity.ising import evaluate as evaluate_ising

    cfg = IsingFidelityConfig(resamples=ISING_RESAMPLES, bootstrap=2, classifier_enabled=False, seed=seed)
    m = evaluate_ising(ref, test, cfg)
    keys = [k.split("_max")[0] for k in ISING_TARGETS]
    per_t = {}
    for e in m["per_temperature"]:
        row = {"n_ref": e["n_ref"], "n_test": e["n_test"]}
        for k in keys:
            o = e["observables"][k]
            rel = o["rel_diff"]
            row[f"{k}_rel_err"] = float("inf") if rel is None or not np.isfinite(rel) else float(rel)
            row[f"{k}_floor_p95"] = None if o["floor"] is None else o["floor"]["p95"]
        per_t[f"{e['temperature']:.6g}"] = row
    out = {"temperatures": m["temperatures"], "warnings": m["warnings"], "per_temperature": per_t}
    for k in keys:
        out[f"{k}_max_abs_rel_err"] = float(max(abs(r[f"{k}_rel_err"]) for r in per_t.values()))
        floors = [r[f"{k}_floor_p95"] for r in per_t.values()]
        out[f"{k}_floor_p95_max"] = float("inf") if None in floors else float(max(floors))
    # False: two Monte Carlo samples (halves of the reference) differ by more than the target at some temperature,
    # so a perfect generator can miss it too; more held-out configurations per temperature make it resolvable
    out["targets_resolvable"] = {k: out[f"{k.split('_max')[0]}_floor_p95_max"] <= v for k, v in ISING_TARGETS.items()}
    if classifier:
        x_ref, x_test = classifier_features(ref, True), classifier_features(test, True)
        shared = np.isin(x_ref[:, 0], m["temperatures"]), np.isin(x_test[:, 0], m["temperatures"])
        x_ref, x_test = x_ref[shared[0]], x_test[shared[1]]
        if min(len(x_ref), len(x_test)) >= 2 * ISING_CLASSIFIER.folds:
            c = classifier_test(x_ref, x_test, ISING_CLASSIFIER, seed=seed)
            out["AUC_pooled"], out["AUC_n_per_class"] = c.auc, c.n_per_class
    out["meets_targets"] = meets_targets(out, ISING_TARGETS)
    return out
