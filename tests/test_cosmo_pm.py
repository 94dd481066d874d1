"""Particle-mesh N-body + Born lensing (hpcgen.sim.pm_nbody, hpcgen.sim.cosmo_pm): the dynamics obey the laws they
discretise, and the κ maps have the Limber power spectrum over the multipoles the run resolves.

Measured while choosing the defaults (CosmoGAN cosmology, 64³ particles in 256 Mpc, 20 steps, P(k) at z = 0 over
Halofit, growth-normalised per realisation to cancel cosmic variance): with mesh 128 (B = 2) 0.94/0.86/0.81/0.83/
0.78/0.80/0.78 at k = 0.05/0.08/0.12/0.18/0.27/0.39/0.56 Mpc⁻¹ for one seed, 0.89–1.14 for two others (k ≥ 0.12);
with mesh 64 (B = 1) the first seed falls to 0.75/0.63/0.54 at k = 0.18/0.27/0.39 — hence mesh_side = 2·n_p.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hpcgen.errors import UserError
from hpcgen.ops import cl_numpy
from hpcgen.physics.map_statistics import ell_grid
from hpcgen.physics.cosmology import CosmologyParams, growth_factor, limber_convergence_cl
from hpcgen.sim.cosmo_pm import PMConfig, check_pm_config, simulate_pm
from hpcgen.sim.cosmo_spec import CosmoMapSpec
from hpcgen.sim.pm_nbody import ParticleMesh, evolve, particle_lattice, zeldovich_ics

PARAMS = CosmologyParams()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mesh_modes(delta: torch.Tensor, box: float) -> tuple[np.ndarray, np.ndarray]:
    """|δ̂|² (unnormalised rfftn) and |k| in 1/Mpc of a mesh (n, n, n), both flattened."""
    n = delta.shape[0]
    dk = torch.fft.rfftn(delta.double())
    k = 2 * np.pi * np.fft.fftfreq(n, d=box / n)
    kz = 2 * np.pi * np.fft.rfftfreq(n, d=box / n)
    kmag = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kz[None, None, :] ** 2)
    return (dk.abs() ** 2).numpy().ravel(), kmag.ravel()


# ---------------------------------------------------------------------------------------------------- N-body


@pytest.mark.parametrize("particles,mesh", [(16, 16), (16, 32)])
def test_uniform_lattice_without_perturbations_stays_put(particles, mesh):
    cfg = PMConfig(n_particles_side=particles, mesh_side=mesh, box_mpc=100.0, n_steps=5)
    q = particle_lattice(cfg)
    x, p = evolve(q, torch.zeros_like(q), cfg, PARAMS)
    assert torch.equal(p, torch.zeros_like(p))
    assert float((x - q).abs().max()) <= 1e-6 * cfg.box_mpc


def test_total_momentum_is_conserved():
    cfg = PMConfig(n_particles_side=32, box_mpc=256.0, n_steps=10)
    x0, p0 = zeldovich_ics(cfg, PARAMS, np.random.default_rng(3))
    _, p = evolve(x0, p0, cfg, PARAMS)
    typical = float(p.norm(dim=1).sum())
    assert typical > 3 * float(p0.norm(dim=1).sum())  # the particles were accelerated: the test has teeth
    assert float(p.double().sum(0).norm()) < 1e-5 * typical


def test_low_k_power_grows_as_linear_growth_squared():
    """Σ|δ̂(a=1)|² / Σ|δ̂(a_start)|² over the modes k < 2.5 k_f of the same realisations is (D(1)/D(a_start))².

    A 1024 Mpc box with 32³ particles keeps those modes (k < 0.015/Mpc) linear; using the same modes at both times
    cancels cosmic variance, summing three realisations averages out the mode coupling.
    """
    cfg = PMConfig(n_particles_side=32, box_mpc=1024.0, n_steps=20)
    pm = ParticleMesh(cfg, PARAMS.Omega_m)
    num = den = 0.0
    for seed in range(3):
        x0, p0 = zeldovich_ics(cfg, PARAMS, np.random.default_rng(seed))
        x1, _ = evolve(x0, p0, cfg, PARAMS)
        p_start, k = mesh_modes(pm.overdensity(x0), cfg.box_mpc)
        p_end, _ = mesh_modes(pm.overdensity(x1), cfg.box_mpc)
        low = (k > 0) & (k < 2.5 * 2 * np.pi / cfg.box_mpc)
        num, den = num + p_end[low].sum(), den + p_start[low].sum()
    expected = float(growth_factor(PARAMS, 1.0) / growth_factor(PARAMS, cfg.a_start)) ** 2
    assert num / den == pytest.approx(expected, rel=0.05)


# ---------------------------------------------------------------------------------------------------- lensing


def test_kappa_cl_matches_limber_within_20_percent():
    """C_ℓ of PM κ maps is the non-linear (Halofit) Limber C_ℓ within 20 % for 300 ≤ ℓ < 1300.

    ℓ_min: the 3.5° field's fundamental is 2π/θ = 103; from 3ℓ_f on every band has ≥ 80 modes per map, and the box
    (k_f = 2π/256 Mpc) holds the Limber wavenumber ℓ/χ down to the source distance (ℓ_box = 2πχ_s/L = 81).
    ℓ_max: the particle Nyquist k = π/4 Mpc⁻¹ (= half the B = 2 mesh Nyquist) at χ_s/2 = 1646 Mpc, where the
    kernel peaks: 0.785 · 1646 ≈ 1300. Non-linear rather than linear Limber: at these ℓ Halofit is 2–5× linear and
    the PM run resolves it (the last assertion). Pixels: κ is sampled at pixel centres, so power above the map
    Nyquist ℓ_N = πN/θ folds back; 128 pixels put ℓ_N = 6580 at 5ℓ_max (with 64 pixels, ℓ_N = 3290, the 900–1300
    band reads 1.36). Measured for four seeds (18 maps from 3 runs each): 1.03–1.12 / 0.96–1.16 / 0.96–1.04 in the
    three bands, 0.98 ± 0.01 at 1300–2000, ≈ 0.95 up to ℓ = 3500 (where part of it is particle shot noise).
    """
    spec = CosmoMapSpec(pixels=128)
    cfg = PMConfig(n_particles_side=64, box_mpc=256.0, maps_per_realisation=6)
    maps = simulate_pm(18, spec, cfg, np.random.default_rng(2024))
    edges = [300, 500, 800, 1300]
    measured = cl_numpy(maps, spec.pixel_rad, bins=np.asarray(edges, dtype=float)).cl.mean(axis=0)  # the one estimator
    # theory averaged over the same modes: every |ℓ| of the N×N plane that falls in a band
    ell = ell_grid(spec.pixels, spec.pixel_rad).ravel()
    table_ell = np.geomspace(50, 5000, 200)
    theory = {nl: np.exp(np.interp(np.log(np.maximum(ell, 50)), np.log(table_ell),
                                   np.log(limber_convergence_cl(PARAMS, table_ell, spec.z_source, nonlinear=nl))))
              for nl in (True, False)}
    bands = [(ell >= lo) & (ell < hi) for lo, hi in itertools.pairwise(edges)]
    ratios = measured / np.array([theory[True][b].mean() for b in bands])
    assert np.allclose(ratios, 1.0, atol=0.2), f"C_ℓ(PM)/C_ℓ(Limber, Halofit) per band {edges}: {np.round(ratios, 3)}"
    assert measured[-1] / theory[False][bands[-1]].mean() > 2.5


def test_maps_are_float32_of_the_spec_shape_and_reproducible_by_seed():
    spec = CosmoMapSpec(pixels=16)
    cfg = PMConfig(n_particles_side=16, n_steps=3, maps_per_realisation=2)
    calls = []
    a = simulate_pm(3, spec, cfg, np.random.default_rng(7), progress=calls.append)
    b = simulate_pm(3, spec, cfg, np.random.default_rng(7))
    c = simulate_pm(3, spec, cfg, np.random.default_rng(8))
    assert a.shape == (3, 16, 16) and a.dtype == np.float32
    assert calls == [2, 3]
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a[0], a[1])  # maps of one run see different plane transforms
    assert np.all(np.isfinite(a)) and a.std() > 1e-3


@pytest.mark.parametrize("kwargs,field", [
    (dict(n_particles_side=-4), "n_particles_side"),
    (dict(n_particles_side=64, mesh_side=32), "mesh_side"),
    (dict(box_mpc=0.0), "box_mpc"),
    (dict(n_steps=0), "n_steps"),
    (dict(a_start=1.5), "a_start"),
    (dict(box_mpc=256.0, plane_thickness_mpc=300.0), "plane_thickness_mpc"),
    (dict(maps_per_realisation=0), "maps_per_realisation"),
    (dict(dtype=torch.float16), "dtype"),
    (dict(device="tpu"), "device"),
])
def test_bad_config_raises_user_error_naming_the_field(kwargs, field):
    with pytest.raises(UserError, match=field):
        PMConfig(**kwargs)


@pytest.mark.parametrize("spec,cfg,field", [
    # 3.5° at z_s = 1 spans χ_s·θ = 3292 Mpc · 0.0611 = 201 Mpc
    (CosmoMapSpec(field_deg=3.5, z_source=1.0), PMConfig(box_mpc=200.0), "box_mpc"),
    (CosmoMapSpec(field_deg=3.5, z_source=1.0), PMConfig(a_start=0.6), "a_start"),
])
def test_map_that_the_box_cannot_hold_raises_user_error(spec, cfg, field):
    with pytest.raises(UserError, match=field):
        check_pm_config(spec, cfg)
    with pytest.raises(UserError, match=field):
        simulate_pm(1, spec, cfg, np.random.default_rng(0))


def test_box_just_wide_enough_for_the_field_is_accepted():
    chi_s_times_theta = 3291.8 * math.radians(3.5)
    check_pm_config(CosmoMapSpec(field_deg=3.5, z_source=1.0), PMConfig(box_mpc=chi_s_times_theta + 1))
