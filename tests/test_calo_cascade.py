"""The detailed cascade reproduces the textbook electromagnetic-shower laws (REFERENCE.md §2, PDG EM cascades)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import curve_fit

from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY, shower_max_x0
from hpcgen.physics.materials import material
from hpcgen.seeding import stream
from hpcgen.sim.calo_cascade import M_E_MEV, CascadeCuts, electron_tables, photon_tables, simulate_cascade

G = DEFAULT_GEOMETRY
# showers per energy for the shared samples: 5 % on σ at 10 GeV, ±0.25 X0 on the 500 GeV t_max (~0.22 s each)
N_SHOWERS = {10.0: 200, 100.0: 30, 500.0: 10}


@pytest.fixture(scope="module")
def showers():
    return {e: simulate_cascade(np.full(n, e), G, stream(2024, int(e))) for e, n in N_SHOWERS.items()}


def _balance(s):
    t = s.tallies
    return t["active_gev"] + t["passive_gev"] + t["leakage_gev"]


def test_energy_is_conserved_per_shower(showers):
    for e, s in showers.items():
        np.testing.assert_allclose(_balance(s), e, rtol=1e-6, atol=0)
        assert np.all(s.tallies["leakage_gev"] >= 0) and np.all(s.tallies["passive_gev"] > 0)
        np.testing.assert_allclose(s.tallies["layer_deposit_gev"].sum(axis=1),
                                   s.tallies["active_gev"] + s.tallies["passive_gev"], rtol=1e-9)


@pytest.mark.parametrize("particle, rest_mass_gev", [("gamma", 0.0), ("e+", 2 * M_E_MEV * 1e-3)])
def test_energy_is_conserved_for_photon_and_positron_primaries(particle, rest_mass_gev):
    # a positron primary also releases its own annihilation energy 2 m_e c² (module docstring)
    s = simulate_cascade(np.array([0.1, 2.0, 5.0]), G, stream(7, 0), particle=particle)
    np.testing.assert_allclose(_balance(s), s.energy_gev.astype(float) + rest_mass_gev, rtol=1e-6, atol=0)


def test_readout_cells_hold_all_active_energy(showers):
    # the simulated volume is exactly the read-out area, so nothing active falls outside the cells
    s = showers[10.0]
    np.testing.assert_allclose(s.ecal_gev.sum(axis=(1, 2, 3), dtype=np.float64), s.tallies["active_gev"], rtol=1e-5)
    assert s.ecal_gev.shape == (N_SHOWERS[10.0], *G.shape) and s.ecal_gev.dtype == np.float32


def _gamma_profile(t, ln_norm, a, b):
    return np.exp(ln_norm + (a - 1) * np.log(b * t) - b * t)


@pytest.mark.parametrize("energy_gev", [10.0, 100.0, 500.0])
def test_shower_max_follows_ln_E_over_Ec(showers, energy_gev):
    # layer_deposit_gev integrates a whole layer (passive + active), so its depth is the layer's middle:
    # t_k = (k + 1/2)·Δt with Δt = geometry.layer_thickness_x0 (= layer pitch / X0_eff, 1.004 X0 here).
    # Fitted peak of the mean gamma profile; measured 6.7, 9.2, 10.7 X0 vs ln(E/E_c) − 0.5 = 6.6, 8.9, 10.5, with a
    # shower-to-shower spread of ~0.8 X0.
    profile = showers[energy_gev].tallies["layer_deposit_gev"].mean(axis=0) / energy_gev
    t = (np.arange(G.n_layers) + 0.5) * G.layer_thickness_x0
    (_, a, b), _ = curve_fit(_gamma_profile, t, profile, p0=(0.0, 4.0, 0.5))
    t_max = (a - 1) / b
    expected = float(shower_max_x0(energy_gev, G.ec_eff_mev))
    assert abs(t_max - expected) < 1.0, (t_max, expected)


def test_most_energy_within_one_moliere_radius():
    # A 1.02 mm pitch read-out of the same stack, so cell centres resolve R_M = 9.45 mm; with the default 5.1 mm
    # pads only the 3×3 block (a 15.3 mm square) has its centres inside R_M and holds 88 %.
    # Measured (100 GeV): 0.89–0.90 of the visible energy within R_M, 0.990 within 3.5 R_M; PDG: "about 90 %" and
    # "about 99 %". The bound below leaves room for that statistical and definitional spread.
    fine = dataclasses.replace(G, n_cells_xy=125, cell_size_mm=1.02)
    s = simulate_cascade(np.full(4, 100.0), fine, stream(31, 0))
    c = fine.cell_centres_mm()
    r = np.hypot(c[:, None], c[None, :])
    visible = s.ecal_gev.sum(axis=(0, 3), dtype=np.float64)
    within = lambda radius: visible[r <= radius].sum() / visible.sum()  # noqa: E731
    assert within(G.rm_eff_mm) >= 0.87, within(G.rm_eff_mm)
    assert within(3.5 * G.rm_eff_mm) >= 0.98, within(3.5 * G.rm_eff_mm)


def test_sampling_fraction_is_flat_in_energy(showers):
    # measured: 0.0178, 0.0177, 0.0176 at 10, 100, 500 GeV (e/mip ≈ 0.72); 500 GeV leaks 2.4 % (mostly the back)
    sf = np.array([showers[e].tallies["active_gev"].mean() / e for e in sorted(showers)])
    assert sf.max() / sf.min() - 1 < 0.05, sf
    assert 0.4 < sf.mean() / G.mip_sampling_fraction < 1.0  # EM showers sample below a MIP in W/Si


def test_stochastic_resolution_term_is_in_the_calice_band(showers):
    # σ/E = a/√E ⊕ b solved from the 10 and 100 GeV points. Ours: a ≈ 18–19 %/√E (3.5 mm W per 0.5 mm Si);
    # CALICE SiW ECAL measured 16.5 %/√E with thinner average W.
    rel = {e: showers[e].tallies["active_gev"].std(ddof=1) / showers[e].tallies["active_gev"].mean()
           for e in (10.0, 100.0)}
    a = np.sqrt((rel[10.0] ** 2 - rel[100.0] ** 2) / (1 / 10 - 1 / 100))
    assert 0.10 <= a <= 0.30, (a, rel)


def test_same_rng_state_gives_identical_showers():
    a = simulate_cascade(np.array([3.0, 5.0]), G, stream(5, 1))
    b = simulate_cascade(np.array([3.0, 5.0]), G, stream(5, 1))
    c = simulate_cascade(np.array([3.0, 5.0]), G, stream(5, 2))
    np.testing.assert_array_equal(a.ecal_gev, b.ecal_gev)
    for k in a.tallies:
        np.testing.assert_array_equal(a.tallies[k], b.tallies[k])
    assert not np.array_equal(a.ecal_gev, c.ecal_gev)


def test_a_shower_does_not_depend_on_its_batch_neighbours():
    # each shower gets its own stream from the caller's rng: the same draw sequence gives the same shower
    rng_a, rng_b = stream(9, 0), stream(9, 0)
    batch = simulate_cascade(np.array([4.0, 4.0]), G, rng_a)
    alone = simulate_cascade(np.array([4.0]), G, rng_b)
    np.testing.assert_array_equal(batch.ecal_gev[0], alone.ecal_gev[0])


def test_tracking_cost_grows_linearly_with_energy(showers):
    # total track length ∝ E0/E_c (PDG), so the number of tracking steps should scale ~linearly
    steps = {e: showers[e].tallies["n_steps"].mean() for e in showers}
    assert 7 < steps[100.0] / steps[10.0] < 13, steps
    assert 3.5 < steps[500.0] / steps[100.0] < 6.5, steps


@pytest.mark.parametrize("name", ["W", "Si", "Pb", "PbWO4"])
def test_collision_loss_reproduces_pdg_critical_energy(name):
    # Rossi's E_c: the energy at which the collision loss per X0 equals the energy (PDG definition)
    mat = material(name)
    tab = electron_tables(mat, CascadeCuts())
    t = tab["t_mev"]
    ec = t[np.argmin(np.abs(tab["dedx_col_mev_mm"] * mat.x0_mm - t))]
    assert abs(ec / mat.ec_mev - 1) < 0.05, (ec, mat.ec_mev)


@pytest.mark.parametrize("name, k_mev, nist_cm2_g", [("W", 0.5, 0.1378), ("W", 1.0, 0.06618), ("W", 10.0, 0.04747),
                                                     ("Si", 1.0, 0.06361)])
def test_photon_attenuation_matches_nist(name, k_mev, nist_cm2_g):
    # NIST XCOM total μ/ρ (cm²/g); ours omits coherent scattering (≈ 4 % of W's total at 0.5 MeV, < 2 % above)
    mat = material(name)
    tab = photon_tables(mat, CascadeCuts())
    mu = sum(np.interp(k_mev, tab["k_mev"], tab[c]) for c in ("mu_pair_per_mm", "mu_compton_per_mm",
                                                              "mu_photo_per_mm"))
    assert abs(mu * 10 / mat.density_g_cm3 / nist_cm2_g - 1) < 0.08


def test_impact_jitter_moves_the_shower_centroid():
    g = dataclasses.replace(G, impact_jitter_mm=5.0)
    s = simulate_cascade(np.full(60, 1.0), g, stream(3, 0))
    c = g.cell_centres_mm()
    x = (s.ecal_gev.sum(axis=(2, 3)) * c).sum(axis=1) / s.ecal_gev.sum(axis=(1, 2, 3))
    assert 3.5 < x.std() < 7.0, x.std()


def test_progress_is_called_after_every_shower():
    seen = []
    simulate_cascade(np.full(3, 0.5), G, stream(1, 0), progress=seen.append)
    assert seen == [1, 2, 3]


@pytest.mark.parametrize("kwargs, match", [
    ({"particle": "mu-"}, "particle must be one of"),
    ({"energies_gev": np.array([-1.0])}, "energies_gev must be finite"),
    ({"energies_gev": np.ones((2, 2))}, "energies_gev must be a 1-D array"),
])
def test_bad_arguments_raise_one_sentence_errors(kwargs, match):
    args = {"energies_gev": np.array([1.0]), "geometry": G, "rng": stream(0, 0)} | kwargs
    with pytest.raises(ValueError, match=match):
        simulate_cascade(**args)


def test_cuts_reject_nonpositive_values():
    with pytest.raises(ValueError, match="CascadeCuts.electron_cut_mev must be a positive number"):
        CascadeCuts(electron_cut_mev=0.0)
    with pytest.raises(ValueError, match="CascadeCuts.range_fraction"):
        CascadeCuts(range_fraction=1.5)
    with pytest.raises(ValueError, match="CascadeCuts.active_soft_brems_local must be True or False"):
        CascadeCuts(active_soft_brems_local="no")


def test_soft_brems_to_absorber_moves_only_the_sensor_share():
    # The option changes where the soft-brems part of the continuous loss in a sensor is booked, nothing else: the
    # same rng state gives the same histories, so the per-layer total, leakage and step count are unchanged and the
    # active energy drops by what the passive gains. Soft brems is (4/3) k_c / X0 ≈ 0.007 MeV/mm in Si against
    # ~0.4 MeV/mm of collision loss, so with k_c = 0.5 MeV the sensors lose ~1.5 % (measured: 1.6 %).
    e = np.full(6, 5.0)
    local = simulate_cascade(e, G, stream(21, 0), CascadeCuts(brems_threshold_mev=0.5))
    moved = simulate_cascade(e, G, stream(21, 0), CascadeCuts(brems_threshold_mev=0.5, active_soft_brems_local=False))
    a, b = local.tallies, moved.tallies
    np.testing.assert_array_equal(a["n_steps"], b["n_steps"])
    np.testing.assert_array_equal(a["leakage_gev"], b["leakage_gev"])
    np.testing.assert_allclose(b["layer_deposit_gev"], a["layer_deposit_gev"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(b["passive_gev"] - a["passive_gev"], a["active_gev"] - b["active_gev"], rtol=1e-6)
    np.testing.assert_allclose(_balance(moved), e, rtol=1e-6, atol=0)
    share = 1 - b["active_gev"].sum() / a["active_gev"].sum()
    assert 0.005 < share < 0.03, share
    np.testing.assert_allclose(moved.ecal_gev.sum(axis=(1, 2, 3), dtype=np.float64), b["active_gev"], rtol=1e-5)
