"""What PM κ maps resolve (hpcgen.sim.cosmo_pm: shot noise, resolution) and the smoothing before peaks and Minkowski
functionals (hpcgen.physics.map_statistics.gaussian_smooth): exact or analytic checks on tiny maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcgen.ops import cl_numpy
from hpcgen.physics.map_statistics import ell_grid, gaussian_smooth, smoothing_border
from hpcgen.sim.cosmo_pm import (
    PMConfig,
    lens_planes,
    lensing_distance_mpc,
    resolution_ell,
    shot_noise,
    shot_noise_cl_poisson,
    shot_noise_maps,
)
from hpcgen.sim.cosmo_spec import CosmoMapSpec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# One lens plane (z_s = 0.1: χ_s = 408 Mpc, one 408 Mpc slab at χ = 204 Mpc in a 500 Mpc box) seen over 20°, with a
# plane grid of 1.95 Mpc cells: the plane's Nyquist is ℓ = πχ/cell = 328 = 18 ℓ_f, the map's pixels (1.1 Mpc at the
# plane) are finer than the grid, so below half the plane's Nyquist the windows cancel to < 1.5 % per axis
# ([1 − ⅔ sin²(x/2)]/sinc⁴(x/2) at x = kΔ ≤ π/2, docs/cosmo_validation.md) and nothing aliases in.
ONE_PLANE = CosmoMapSpec(pixels=64, field_deg=20.0, z_source=0.1)


def one_plane_config(particles: int) -> PMConfig:
    return PMConfig(n_particles_side=particles, box_mpc=500.0, plane_thickness_mpc=500.0, plane_mesh_side=256)


def test_measured_shot_noise_matches_the_poisson_level_of_a_born_plane():
    """C_ℓ^noise = Σ_i w_i² Δχ/(n̄ χ_i²): a slab's Σ = Δχ(n/n̄_2D − 1) has white power Δχ²/n̄_2D = Δχ/n̄ (Mpc²),
    seen at χ under C = P/χ²; measured with the simulator's own projection of uniformly random particles."""
    cfg = one_plane_config(32)
    planes = lens_planes(ONE_PLANE, cfg)
    assert planes.chi_mpc.size == 1
    nbar = 32**3 / 500.0**3
    expected = planes.weight_per_mpc2[0] ** 2 * planes.thickness_mpc / (nbar * planes.chi_mpc[0] ** 2)
    assert shot_noise_cl_poisson(ONE_PLANE, cfg) == pytest.approx(expected, rel=1e-12)

    ell_f = 2 * math.pi / ONE_PLANE.field_rad
    noise = shot_noise(ONE_PLANE, cfg, np.random.default_rng(11), n_maps=64, bins=np.array([0.999, 9.0]) * ell_f)
    assert noise.modes[0] > 200
    ratio, err = noise.cl[0] / expected, noise.cl_err[0] / expected
    assert err < 0.02
    assert abs(ratio - 1) < 3 * err + 0.015, f"measured/analytic = {ratio:.4f} ± {err:.4f}"
    assert noise.cl_poisson == pytest.approx(expected)


def test_shot_noise_falls_as_one_over_the_particle_count():
    """8× the particles, 8× less noise: the same windows, planes and transforms, only n̄ changes."""
    ell_f = 2 * math.pi / ONE_PLANE.field_rad
    bins = np.array([0.999, 9.0]) * ell_f
    few, many = (shot_noise(ONE_PLANE, one_plane_config(p), np.random.default_rng(p), n_maps=48, bins=bins)
                 for p in (16, 32))
    ratio = few.cl[0] / many.cl[0]
    err = ratio * math.hypot(few.cl_err[0] / few.cl[0], many.cl_err[0] / many.cl[0])
    assert abs(ratio - 8) < 3 * err, f"{ratio:.3f} ± {err:.3f}"
    assert few.cl_poisson / many.cl_poisson == pytest.approx(8.0)


def test_noise_maps_are_reproducible_and_of_the_spec_shape():
    spec, cfg = CosmoMapSpec(pixels=16), PMConfig(n_particles_side=8, maps_per_realisation=2)
    a = shot_noise_maps(3, spec, cfg, np.random.default_rng(4))
    b = shot_noise_maps(3, spec, cfg, np.random.default_rng(4))
    assert a.shape == (3, 16, 16) and a.dtype == np.float32 and np.array_equal(a, b)
    assert np.all(np.isfinite(a)) and a.std() > 0


def test_resolution_is_the_particle_nyquist_at_the_lensing_weighted_distance():
    spec, cfg = CosmoMapSpec(), PMConfig(n_particles_side=64, box_mpc=256.0)
    chi_q = lensing_distance_mpc(spec, cfg)
    chi_s = lens_planes(spec, cfg).chi_source_mpc
    assert 0.5 * chi_s < chi_q < 0.6 * chi_s  # the Born weight χ(χ_s−χ)/(χ_s a) leans to the far side
    lo, hi = resolution_ell(spec, cfg)
    assert hi == pytest.approx(math.pi * 64 / 256.0 * chi_q) and lo == pytest.approx(2 * math.pi / 256.0 * chi_q)
    # a coarse force mesh (B = 1) limits instead: four mesh cells
    assert resolution_ell(spec, PMConfig(n_particles_side=64, mesh_side=64))[1] == pytest.approx(hi / 2)


# ---------------------------------------------------------------------------------------------------- smoothing


def test_smoothing_multiplies_every_fourier_mode_by_the_gaussian_window_exactly():
    n, pix, sigma = 32, math.radians(3.5) / 32, math.radians(2.0 / 60)
    y, x = np.mgrid[0:n, 0:n]
    for kx, ky in ((1, 0), (3, 5), (16, 0)):
        wave = np.cos(2 * np.pi * (kx * x + ky * y) / n)[None]
        ell = 2 * np.pi / (n * pix) * math.hypot(kx, ky)
        np.testing.assert_allclose(gaussian_smooth(wave, pix, sigma), wave * math.exp(-0.5 * (ell * sigma) ** 2),
                                   atol=1e-12)
    assert np.array_equal(gaussian_smooth(wave, pix, 0.0), wave)


def test_smoothing_white_noise_divides_its_variance_by_four_pi_sigma_pix_squared():
    """White noise of pixel variance s² has C = s²Δ²; smoothed, its variance is ∫d²ℓ/(2π)² C e^{−ℓ²σ²}
    = s²Δ²/(4πσ²) = s²/(4π σ_pix²) (σ_pix = σ/Δ), exact on the grid up to e^{−π²σ_pix²}."""
    n, pix, sigma_pix = 64, 1e-3, 3.0
    ell = ell_grid(n, pix)
    exact = np.exp(-((ell * sigma_pix * pix) ** 2))[ell > 0].sum() / n**2  # mean-subtracted variance factor
    analytic = 1.0 / (4 * math.pi * sigma_pix**2)
    assert exact == pytest.approx(analytic - 1.0 / n**2, rel=1e-9)  # minus the ℓ = 0 mode
    maps = np.random.default_rng(0).standard_normal((200, n, n))
    smooth = gaussian_smooth(maps, pix, sigma_pix * pix)
    var = smooth.var(axis=(1, 2))
    assert var.mean() == pytest.approx(exact, rel=4 * var.std() / var.mean() / math.sqrt(var.size))
    # the unsmoothed maps have the white C = s²Δ² in every bin of the one estimator
    np.testing.assert_allclose(cl_numpy(maps, pix, bins=6).cl.mean(axis=0) / pix**2, 1.0, rtol=0.1)


def test_smoothing_border_is_three_sigma_in_pixels():
    assert smoothing_border(1.0, 0.0) == 0
    assert smoothing_border(1.0, 1.0) == 3 and smoothing_border(1.0, 1.01) == 4 and smoothing_border(2.0, 0.5) == 1


def test_a_pm_file_records_its_shot_noise_and_resolution_and_a_lognormal_file_nothing(tmp_path):
    from hpcgen.data.cosmo_file import open_cosmo, read_pm_limits
    from hpcgen.dist.world import World
    from hpcgen.jobs.simulate_cosmo import NOISE_MAPS, NOISE_STREAM, SimulateCosmoConfig, simulate_cosmo
    from hpcgen.seeding import stream
    from hpcgen.sim.cosmo_pm import RESOLUTION_CRITERION

    spec, cfg = CosmoMapSpec(pixels=16), PMConfig(n_particles_side=8, n_steps=2)
    for gen, pm in (("pm", cfg), ("lognormal", None)):
        simulate_cosmo(SimulateCosmoConfig(generator=gen, n=2, seed=3, out=tmp_path / f"{gen}.h5", spec=spec, pm=pm,
                                           progress=False), World())
    with open_cosmo(tmp_path / "pm.h5") as f:
        lim = read_pm_limits(f.attrs)
    expected = shot_noise(spec, cfg, stream(3, NOISE_STREAM), n_maps=NOISE_MAPS)
    np.testing.assert_array_equal(lim["noise_cl"], expected.cl)
    np.testing.assert_array_equal(lim["noise_edges"], expected.edges)
    assert lim["noise_n_maps"] == NOISE_MAPS and lim["noise_cl_poisson"] == expected.cl_poisson
    assert (lim["ell_min"], lim["ell_max"]) == pytest.approx(resolution_ell(spec, cfg))
    assert lim["criterion"] == RESOLUTION_CRITERION
    with open_cosmo(tmp_path / "lognormal.h5") as f:
        assert read_pm_limits(f.attrs) is None
