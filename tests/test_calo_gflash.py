"""GFlash (Grindhammer & Peters, hep-ex/0001020): the formulas, and the simulator against its own formulas."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY, SamplingCalorimeter
from hpcgen.physics.materials import material
from hpcgen.seeding import stream
from hpcgen.sim.calo_gflash import (
    GFlashParams,
    ProfileLaw,
    active_layer_depths_x0,
    gflash_params,
    homogeneous_mean_T_alpha,
    homogeneous_spot_count,
    layer_window_edges_x0,
    longitudinal_fractions,
    mean_longitudinal_profile,
    radial_parameters,
    sampling_log_parameters,
    sampling_mean_T_alpha,
    simulate_gflash,
)

G = DEFAULT_GEOMETRY
C_S = GFlashParams().sampling_resolution


def layer_edges_x0(geometry: SamplingCalorimeter) -> np.ndarray:
    return layer_window_edges_x0(geometry)


@pytest.fixture(scope="module")
def showers_50gev():
    """400 showers at 50 GeV, shared by the statistical tests (≈ 0.5 s)."""
    return simulate_gflash(np.full(400, 50.0), G, stream(2024, 0))


def test_worked_check_pbwo4_100gev():
    # The homogeneous formulas of hep-ex/0001020 for 100 GeV e− in PbWO4: T ≈ 8.4 X0, α ≈ 5.1, ≈ 22 000 spots.
    pbwo4 = material("PbWO4")
    t, a = homogeneous_mean_T_alpha(100.0, pbwo4.z, pbwo4.ec_mev)
    assert t == pytest.approx(8.4, abs=0.2)
    assert a == pytest.approx(5.1, abs=0.2)
    assert homogeneous_spot_count(100.0, pbwo4.z) == pytest.approx(22000, rel=0.05)


def test_sampled_log_T_alpha_follow_the_correlated_lognormal_law(showers_50gev):
    t, a = showers_50gev.tallies["T_x0"], showers_50gev.tallies["alpha"]
    n = t.size
    mean_t, s_t, mean_a, s_a, rho = sampling_log_parameters(50.0, G)
    lt, la = np.log(t), np.log(a)
    # At 50 GeV the floors T ≥ 1, α ≥ 1.1 sit > 10 σ below the means, so the law is the untruncated one.
    assert abs(lt.mean() - mean_t) < 4 * s_t / np.sqrt(n)
    assert abs(la.mean() - mean_a) < 4 * s_a / np.sqrt(n)
    assert lt.std() == pytest.approx(s_t, rel=0.15)  # SE of a std is 1/√(2n) = 3.5 %
    assert la.std() == pytest.approx(s_a, rel=0.15)
    assert np.corrcoef(lt, la)[0, 1] == pytest.approx(rho, abs=0.15)


def test_mean_longitudinal_profile_matches_gamma_formula(showers_50gev):
    sh = showers_50gev
    e = 50.0
    sf = sh.tallies["sampling_fraction_used"][0]
    # Deposit per layer in GeV: read-out cells plus what left the sides of that layer.
    mc = (sh.ecal_gev.sum(axis=(1, 2), dtype=np.float64) + sh.tallies["leak_lateral_gev"]) / sf
    # The same gamma formula evaluated at each shower's own (T, α): exact in expectation, up to sampling noise.
    expected = e * longitudinal_fractions(sh.tallies["T_x0"], sh.tallies["alpha"], layer_edges_x0(G))
    n = mc.shape[0]
    # Spot smearing gives Var(layer deposit) = c_s² · E_layer (GeV²) per shower, independent across showers.
    sigma = C_S * np.sqrt(expected.sum(axis=0)) / n
    z = (mc.mean(axis=0) - expected.mean(axis=0)) / sigma
    assert np.all(np.abs(z) < 5), z
    assert np.mean(z**2) < 2.0, z
    # The average shower's profile peaks where the MC average does (they differ in shape, not in place).
    avg = mean_longitudinal_profile(e, G, layer_edges_x0(G))
    assert abs(int(np.argmax(avg)) - int(np.argmax(mc.mean(axis=0)))) <= 1


def test_mean_longitudinal_profile_is_a_gamma_law_peaking_at_T():
    t, _ = sampling_mean_T_alpha(100.0, G)
    edges = np.linspace(0.0, 200.0, 20001)
    prof = mean_longitudinal_profile(100.0, G, edges)
    assert prof.sum() == pytest.approx(1.0, abs=1e-9)
    assert 0.5 * (edges[np.argmax(prof)] + edges[np.argmax(prof) + 1]) == pytest.approx(t, abs=0.01)


@pytest.mark.parametrize("energy_gev", [10.0, 100.0])
def test_energy_bookkeeping(energy_gev):
    n = 200
    sh = simulate_gflash(np.full(n, energy_gev), G, stream(7, int(energy_gev)))
    sf = sh.tallies["sampling_fraction_used"]
    assert sf[0] == pytest.approx(G.mip_sampling_fraction * G.e_hat)
    ratio = (
        sh.ecal_gev.sum(axis=(1, 2, 3), dtype=np.float64)
        + sh.tallies["leak_lateral_gev"].sum(axis=1)
        + sh.tallies["leak_rear_gev"]
        + sh.tallies["unsampled_front_gev"]
    ) / (sf * energy_gev)
    # Per shower the total is gamma-smeared with σ/E = c_s/√E (the rear part is the unsmeared expectation).
    resolution = C_S / np.sqrt(energy_gev)
    assert abs(ratio.mean() - 1.0) < 4 * resolution / np.sqrt(n)
    assert ratio.std() == pytest.approx(resolution, rel=0.2)
    # Leakage is a small correction in a 25 X0 calorimeter of 6.7 R_M half-width.
    assert np.all(sh.tallies["leak_rear_gev"] < 0.1 * sf * energy_gev)
    assert sh.tallies["leak_lateral_gev"].sum(axis=1).mean() < 0.01 * sf[0] * energy_gev


def test_containment_about_90_percent_within_one_moliere_radius():
    # Same layers and materials (so the same effective medium), 1 mm cells to resolve r = R_M,eff ≈ 10.4 mm.
    fine = SamplingCalorimeter(n_cells_xy=81, cell_size_mm=1.0)
    sh = simulate_gflash(np.full(20, 100.0), fine, stream(3))
    img = sh.ecal_gev.sum(axis=(0, 3), dtype=np.float64)
    total = img.sum() + sh.tallies["leak_lateral_gev"].sum()
    c = fine.cell_centres_mm()
    r = np.hypot(c[:, None], c[None, :])
    within = {k: img[r < k * fine.rm_eff_mm].sum() / total for k in (1.0, 2.0, 3.5)}
    # PDG: "about 90 % within R_M, about 99 % within 3.5 R_M". Measured here (100 GeV, 20 showers): 89.1 %,
    # 96.2 %, 98.7 %; the radial formulas integrated over the same showers give 89.0 %, 96.2 %, 98.6 % (the
    # average shower: 88.5–88.9 % within R_M from 10 to 500 GeV): the parametrisation itself sits just under 90 %.
    assert within[1.0] >= 0.87
    assert within[2.0] >= 0.95
    assert within[3.5] >= 0.98
    # The sampled radii reproduce the two-component law: CDF(r) = p·r²/(r²+R_C²) + (1−p)·r²/(r²+R_T²), weighted
    # by each shower's own longitudinal profile (0.05 X0 grid; the simulator's 0.25 X0 steps differ by < 0.2 %).
    edges = np.linspace(0.0, fine.depth_mm / fine.x0_eff_mm, 501)
    mid = 0.5 * (edges[1:] + edges[:-1])
    t, a = sh.tallies["T_x0"][:, None], sh.tallies["alpha"][:, None]
    weight = longitudinal_fractions(t[:, 0], a[:, 0], edges)
    r_c, r_t, p = radial_parameters(100.0, mid[None, :] / t, fine)
    for k, measured in within.items():
        cdf = p * k**2 / (k**2 + r_c**2) + (1 - p) * k**2 / (k**2 + r_t**2)
        assert measured == pytest.approx((weight * cdf).sum() / weight.sum(), abs=0.005), k


def test_sampling_fraction_is_one_number_scaling_visible_energy():
    e = np.array([20.0, 80.0])
    base = simulate_gflash(e, G, stream(5))
    sf = 2.5 * G.mip_sampling_fraction * G.e_hat
    tuned = simulate_gflash(e, G, stream(5), GFlashParams(sampling_fraction=sf))
    np.testing.assert_allclose(tuned.ecal_gev, 2.5 * base.ecal_gev, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(tuned.tallies["sampling_fraction_used"], sf)


def test_reproducible_with_same_rng_state():
    e = np.array([5.0, 50.0, 300.0])
    a = simulate_gflash(e, G, stream(11, 1))
    b = simulate_gflash(e, G, stream(11, 1))
    c = simulate_gflash(e, G, stream(11, 2))
    np.testing.assert_array_equal(a.ecal_gev, b.ecal_gev)
    for k in a.tallies:
        np.testing.assert_array_equal(a.tallies[k], b.tallies[k])
    assert not np.array_equal(a.ecal_gev, c.ecal_gev)


def test_shapes_dtypes_nonnegative():
    geometry = SamplingCalorimeter(n_layers=10, n_cells_xy=7, impact_jitter_mm=2.0)
    e = np.array([2.0, 30.0, 500.0])
    sh = simulate_gflash(e, geometry, stream(1))
    assert sh.ecal_gev.shape == (3, 7, 7, 10) and sh.ecal_gev.dtype == np.float32
    assert sh.energy_gev.dtype == np.float32 and np.array_equal(sh.energy_gev, e.astype(np.float32))
    assert np.all(sh.ecal_gev >= 0) and np.all(sh.ecal_gev.sum(axis=(1, 2, 3)) > 0)
    for k in ("T_x0", "alpha", "n_spots", "sampling_fraction_used", "leak_rear_gev"):
        assert sh.tallies[k].shape == (3,), k
    assert sh.tallies["leak_lateral_gev"].shape == (3, 10)
    assert np.all(sh.tallies["T_x0"] >= 1.0) and np.all(sh.tallies["alpha"] >= 1.1)


def test_spot_count_follows_sampling_formula():
    # N_spot = 10.3/c_s·(E/GeV)^0.959; in 25 X0 at most ≈ 1 % of the spot profile lies beyond the rear face,
    # and the ≥ 1-spot-per-step rule adds at most one spot per step (100 steps).
    e = np.array([2.0, 30.0, 500.0])
    n_spots = simulate_gflash(e, G, stream(4)).tallies["n_spots"]
    n_formula = 10.3 / C_S * e**0.959
    assert np.all(n_spots <= n_formula + 4 * np.sqrt(n_formula) + 100)
    assert np.all(n_spots >= 0.97 * n_formula - 4 * np.sqrt(n_formula))


def test_chunks_report_progress_and_bound_memory():
    seen = []
    params = GFlashParams(max_spots_per_chunk=3000)  # ≈ 4 showers of 10 GeV per chunk
    sh = simulate_gflash(np.full(10, 10.0), G, stream(9), params, progress=seen.append)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] == 10
    assert sh.ecal_gev.shape[0] == 10


@pytest.mark.parametrize("bad", [np.array([10.0, -1.0]), np.array([np.nan]), np.ones((2, 2))])
def test_rejects_invalid_energies(bad):
    with pytest.raises(ValueError, match="energies_gev"):
        simulate_gflash(bad, G, stream(0))


def test_rejects_nonpositive_sampling_resolution():
    with pytest.raises(ValueError, match="sampling_resolution"):
        GFlashParams(sampling_resolution=0.0)


# --- effective medium, read-out windows, tunes (docs/gflash.md) ---------------------------------------------
def test_effective_medium_follows_the_pdg_mixture_rules():
    # By hand (docs/gflash.md): W 3.5 mm (ρ 19.3, X0 3.504 mm, E_c 7.97 MeV), Si 0.5 mm (2.329, 93.70 mm, 40.19 MeV).
    # Thickness fractions 0.875, 0.125: 1/X0 = 0.875/3.504 + 0.125/93.70 = 0.251049 /mm -> 3.9833 mm;
    # Σ v E_c/X0 = 0.875·7.97/3.504 + 0.125·40.19/93.70 = 1.99022 + 0.05362 = 2.04383 MeV/mm
    # -> R_M = 21.2/2.04383 = 10.373 mm, E_c = 3.9833·2.04383 = 8.141 MeV.
    assert G.x0_eff_mm == pytest.approx(3.9833, abs=1e-4)
    assert G.rm_eff_mm == pytest.approx(10.373, abs=1e-3)
    assert G.ec_eff_mev == pytest.approx(8.141, abs=1e-3)
    # The same numbers by mass fractions and mass thicknesses (PDG's form): w_W = 6.755/6.87145 g/cm².
    w_w = 19.3 * 0.35 / (19.3 * 0.35 + 2.329 * 0.05)
    x_w, x_si = 19.3 * 0.3504, 2.329 * 9.370  # g/cm²
    s = w_w * 7.97 / x_w + (1 - w_w) * 40.19 / x_si
    rho = (19.3 * 3.5 + 2.329 * 0.5) / 4.0
    assert G.rm_eff_mm == pytest.approx(10 * 21.2 / s / rho, rel=1e-9)
    assert G.x0_eff_mm == pytest.approx(10 / (w_w / x_w + (1 - w_w) / x_si) / rho, rel=1e-9)
    # X0, R_M and E_c of the medium are consistent: R_M = E_s X0 / E_c.
    assert G.rm_eff_mm == pytest.approx(21.2 * G.x0_eff_mm / G.ec_eff_mev, rel=1e-12)
    # One material in both slots is that material.
    w_only = SamplingCalorimeter(active_material="W")
    w = material("W")
    assert w_only.x0_eff_mm == pytest.approx(w.x0_mm, rel=1e-12)
    assert w_only.ec_eff_mev == pytest.approx(w.ec_mev, rel=1e-12)
    assert w_only.rm_eff_mm == pytest.approx(21.2 * w.x0_mm / w.ec_mev, rel=1e-12)


def test_each_layer_reads_the_window_centred_on_its_active_layer():
    t_si = active_layer_depths_x0(G)
    # the silicon sits at the back: 3.5 mm of W (0.9989 X0) then half of 0.5 mm Si (0.0027 X0)
    assert t_si[0] == pytest.approx(3.5 / 3.504 + 0.25 / 93.70, rel=1e-12)
    assert np.allclose(np.diff(t_si), G.layer_thickness_x0)
    edges = layer_window_edges_x0(G)
    assert edges.shape == (G.n_layers + 1,)
    np.testing.assert_allclose(0.5 * (edges[1:] + edges[:-1]), t_si, rtol=1e-12)
    fine = layer_window_edges_x0(G, n_sub=4)
    np.testing.assert_allclose(fine[::4], edges, rtol=1e-12)
    # windows run from mid-layer k to mid-layer k+1 (to 0.3 % of a layer for W/Si)
    assert edges[0] / G.layer_thickness_x0 == pytest.approx(0.5, abs=0.003)


def test_sampling_spot_profile_uses_the_sampling_calorimeter_coefficients():
    p = GFlashParams()
    assert p.spot_t_coeffs == (0.813, 0.0019)
    assert p.spot_alpha_coeffs == (0.844, 0.0026)


def test_paper_profile_law_is_the_published_sampling_formula():
    law = ProfileLaw.paper(G)
    fs, eh, z = G.sampling_frequency, G.e_hat, G.z_eff
    assert law.t == pytest.approx((-0.812 - 0.55 / fs - 0.69 * (1 - eh), 1.0))
    assert law.alpha == pytest.approx((0.81 - 0.476 / fs, 0.458 + 2.26 / z))
    ln_y = np.log(50e3 / G.ec_eff_mev)
    mean_t, s_t, mean_a, s_a, rho = sampling_log_parameters(50.0, G)
    assert mean_t == pytest.approx(np.log(ln_y - 0.812 - 0.55 / fs - 0.69 * (1 - eh)))
    assert s_t == pytest.approx(1 / (-2.5 + 1.25 * ln_y))
    assert s_a == pytest.approx(1 / (-0.82 + 0.79 * ln_y))
    assert rho == pytest.approx(0.784 - 0.023 * ln_y)


@pytest.mark.parametrize("energy_gev", [10.0, 100.0])
def test_cascade_tune_poisson_spots_keep_the_energy_and_its_resolution(energy_gev):
    params = gflash_params("cascade")
    n = 400
    sh = simulate_gflash(np.full(n, energy_gev), G, stream(8, int(energy_gev)), params)
    sf = params.sampling_fraction
    total = (sh.ecal_gev.sum(axis=(1, 2, 3), dtype=np.float64) + sh.tallies["leak_lateral_gev"].sum(axis=1)
             + sh.tallies["leak_rear_gev"] + sh.tallies["unsampled_front_gev"]) / (sf * energy_gev)
    resolution = params.sampling_resolution / np.sqrt(energy_gev)
    assert abs(total.mean() - 1.0) < 4 * resolution / np.sqrt(n)
    # Poisson counting + the compensated spot smearing keep σ/E = c_s/√E for the shower total.
    assert total.std() == pytest.approx(resolution, rel=0.15)
    if energy_gev == 10.0:
        # Poisson counts, no ≥ 1-spot rule: the last layer of a 10 GeV shower is often empty, as in the cascade
        # (about half of its showers; the literature tune never leaves it empty).
        assert np.mean(sh.ecal_gev[..., -1].sum(axis=(1, 2)) == 0) > 0.2
    n_formula = params.spot_scale * 10.3 / params.sampling_resolution * energy_gev ** params.spot_exponent
    assert sh.tallies["n_spots"].mean() == pytest.approx(n_formula, rel=0.03)
