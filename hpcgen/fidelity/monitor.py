"""A cheap subset of the calorimeter fidelity metrics, for scoring a generator while it trains (time to fidelity).

The subset is the targets of a shipped calorimeter GAN (docs/calo_gan.md), each computed by the same estimator as
``hpcgen validate calo`` (:func:`hpcgen.fidelity.calo.evaluate`) with one resample instead of twenty and one
classifier seed instead of five:

- per energy (pooled when the reference's energies are continuous): the mean of E_vis/E_p and its relative width
  σ/μ, as relative errors against the reference;
- pooled: S(E_vis/E_p) and the median per-layer S, each against the same-size reference-vs-reference value;
- pooled: the high-level DNN classifier AUC.

:func:`meets_targets` says whether a score reaches :data:`TARGETS`. MLPerf HPC times training "to a quality
target" (Farrell et al., arXiv:2110.11466); this is that target for the calorimeter GAN.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hpcgen.fidelity.calo import CaloSample, FidelityConfig, evaluate
from hpcgen.fidelity.classifier import ClassifierConfig

# What a shipped calorimeter GAN must reach (issue "A GAN at fidelity"); S values relative to the floor.
TARGETS = {
    "response_mean_rel_error_max": 0.02,  # |mean(E_vis/E_p) / reference − 1| at every energy
    "response_width_rel_error_max": 0.25,  # |σ/μ / reference σ/μ − 1| at every energy
    "S_e_vis_over_e_p_over_floor": 2.0,  # S / floor
    "S_layer_energy_median_over_floor": 2.0,
    "AUC_high_level": 0.85,
}

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
