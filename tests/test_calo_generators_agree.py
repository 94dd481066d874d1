"""The two calorimeter Monte Carlos describe the same detector: GFlash vs the detailed cascade."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY
from hpcgen.physics.shower_features import longitudinal_profile, sampling_fraction
from hpcgen.seeding import stream
from hpcgen.sim.calo_cascade import simulate_cascade
from hpcgen.sim.calo_gflash import simulate_gflash


@pytest.mark.parametrize("energy_gev, n_cascade", [(10.0, 40), (100.0, 12)])
def test_gflash_sampling_fraction_agrees_with_cascade_within_10_percent(energy_gev, n_cascade):
    g = DEFAULT_GEOMETRY
    e_c = np.full(n_cascade, energy_gev)
    casc = simulate_cascade(e_c, g, stream(11, 0))
    gfl = simulate_gflash(np.full(400, energy_gev), g, stream(11, 1))
    sf_c = sampling_fraction(casc.ecal_gev, casc.energy_gev).mean()
    sf_g = sampling_fraction(gfl.ecal_gev, gfl.energy_gev).mean()
    assert abs(sf_g / sf_c - 1) < 0.10, (sf_c, sf_g)


def test_gflash_and_cascade_showers_peak_in_the_same_layers_at_100_gev():
    g = DEFAULT_GEOMETRY
    casc = simulate_cascade(np.full(12, 100.0), g, stream(12, 0))
    gfl = simulate_gflash(np.full(400, 100.0), g, stream(12, 1))
    pc = longitudinal_profile(casc.ecal_gev).mean(axis=0)
    pg = longitudinal_profile(gfl.ecal_gev).mean(axis=0)
    # the mean depth of the visible energy (in layers) agrees within one layer (≈ 1 X0). This is the a-priori
    # (literature) GFlash: since its layers read the window centred on their sensor it sits 0.94 layer shallower
    # than the cascade at 100 GeV (8.735 vs 9.678, 1000 showers each; docs/gflash.md) — the tuned GFlash matches.
    depth = np.arange(g.n_layers)
    assert abs((pc * depth).sum() / pc.sum() - (pg * depth).sum() / pg.sum()) < 1.0


def test_gflash_cascade_tune_matches_the_cascade_it_was_tuned_to():
    """The 'cascade' tune's constants are re-measured here, so they cannot silently go stale."""
    from hpcgen.sim.calo_gflash import gflash_params

    g, e = DEFAULT_GEOMETRY, 10.0
    casc = simulate_cascade(np.full(300, e), g, stream(13, 0))
    gfl = simulate_gflash(np.full(2000, e), g, stream(13, 1), params=gflash_params("cascade"))
    sf_c = sampling_fraction(casc.ecal_gev, casc.energy_gev)
    sf_g = sampling_fraction(gfl.ecal_gev, gfl.energy_gev)
    assert abs(sf_g.mean() / sf_c.mean() - 1) < 0.015  # cascade mean known to ±0.4 % (1σ) with 300 showers
    rel_c, rel_g = sf_c.std() / sf_c.mean(), sf_g.std() / sf_g.mean()
    assert abs(rel_g / rel_c - 1) < 0.15  # the resolution ratio is known to ±4 % (1σ) with 300 showers


def _depth_centroid_layers(ecal_gev) -> np.ndarray:
    """(N,) energy-weighted mean layer index of each shower's visible energy."""
    prof = longitudinal_profile(ecal_gev)
    return (prof * np.arange(prof.shape[1])).sum(axis=1) / prof.sum(axis=1)


def test_gflash_cascade_tune_mean_depth_centroid_matches_the_cascade():
    """Issue 13: the tuned GFlash showers sat ~0.5 layer shallower than the cascade's. The mean depth centroid now
    agrees within 4 standard errors of the difference (≈ 0.2 layer with 400 + 2000 showers at 10 GeV; the
    per-shower centroid spreads by ≈ 1 layer). Measured with 1000 showers each: 7.470 (cascade) vs 7.537 layers at
    10 GeV, 8.983 vs 9.013 at 50 GeV (docs/gflash.md)."""
    from hpcgen.sim.calo_gflash import gflash_params

    g, e = DEFAULT_GEOMETRY, 10.0
    casc = simulate_cascade(np.full(400, e), g, stream(14, 0))
    gfl = simulate_gflash(np.full(2000, e), g, stream(14, 1), params=gflash_params("cascade"))
    dc, dg = _depth_centroid_layers(casc.ecal_gev), _depth_centroid_layers(gfl.ecal_gev)
    se = np.hypot(dc.std() / np.sqrt(dc.size), dg.std() / np.sqrt(dg.size))
    assert abs(dg.mean() - dc.mean()) < 4 * se, (dc.mean(), dg.mean(), se)
