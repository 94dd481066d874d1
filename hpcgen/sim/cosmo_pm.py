"""Weak-lensing convergence maps from a particle-mesh N-body run and Born-approximation multi-plane lensing.

The N-body core (Zel'dovich ICs, CIC/FFT forces, FastPM KDK in a) is ``hpcgen.sim.pm_nbody``. The light cone is
the periodic box replicated along the line of sight, cut into lens planes (the recipe of Jain, Seljak & White 2000;
Petri 2016, "Mocking the weak lensing universe: the LensTools Python computing package", A&C 17, 73):

1. Planes: n = ceil(χ_s/Δχ_target) slabs of equal comoving thickness Δχ = χ_s/n tile [0, χ_s]; plane i sits at
   χ_i = (i + ½)Δχ, a_i = a(χ_i) (pyccl). The N-body run outputs the particles at every a_i (on the KDK drift, no
   extra force evaluations).
2. Per map and plane an independent random transform of the replicated box: the line-of-sight axis (x, y or z),
   a swap and flips of the two transverse axes (with the irrelevant flip along the line of sight: the 48 symmetries
   of the cube), a slab start s ∈ [0, L) along the line of sight and a transverse shift in [0, L)². Different planes
   (and different maps of one realisation) therefore see uncorrelated parts of the box.
3. The particles with (x_∥ − s) mod L < Δχ are CIC-painted (in 2-D) onto an n_pl² grid over the box face:
   Σ_i = ∫_slab δ dχ = Δχ (count/⟨count⟩ − 1) in Mpc. The CIC window and the bilinear read-out window of step 4
   (each sinc²(πm/n_pl) per axis) are divided out in 2-D Fourier space; without that, C_ℓ at the defaults falls
   to 0.75 of Limber by ℓ ≈ 1000 (the price: particle shot noise near the plane grid's Nyquist is boosted).
4. Born approximation (Bartelmann & Schneider 2001, Phys. Rep. 340, 291; here a sum over planes):
       κ(θ) = Σ_i (3/2) Ω_m (H0/c)² · χ_i (χ_s − χ_i)/χ_s · (1 + z_i) · Σ_i(χ_i θ + shift_i),
   Σ_i read bilinearly (periodically) at the pixel centres θ = (j + ½ − N/2)·pixel.

Geometry rule (``check_pm_config``): the map's transverse extent at the source, χ_s·θ_field, must fit in one box
side L, so no plane ever shows the same structure twice across the map (no transverse tiling). The slab thickness
is ≤ L, so a slab never overlaps itself. Along the line of sight the box is replicated ceil(χ_s/L) times, with a
fresh random transform per plane breaking the periodicity.

What is simplified: Born (no lens–lens coupling, no ray deflection); sources on one plane; each slab is taken at the
single time a_i of its centre; the box lacks modes longer than L (ℓ < 2πχ/L at distance χ).

What the maps can be trusted for (docs/cosmo_validation.md):

- Particle shot noise. Σ_i is painted from N_p = n_p³ discrete particles, so every map carries a noise κ_noise on
  top of the lensing signal. ``shot_noise_maps`` measures it with this module's own code path — uniformly random
  particles (same count, box, planes, transforms, painting, window deconvolution and read-out) — and
  ``shot_noise`` bins it with the house C_ℓ estimator. Its analytic level (Poisson particles, no windows) is flat:
  with n̄ = N_p/L³ a slab's Σ_i (Mpc) has the 2-D white power P_Σ = Δχ²/(n̄Δχ) = Δχ/n̄ (Mpc⁴), seen at distance
  χ_i under C = P_Σ/χ_i², so  C_ℓ^noise = Σ_i w_i² Δχ/(n̄ χ_i²)  (``shot_noise_cl_poisson``; the Limber form
  ∫dχ q(χ)²/(n̄χ²) of Poisson noise). The measured C_ℓ^noise departs from it where grids act: above half a plane's
  Nyquist ℓ = πχ_i n_pl/L (deconvolution boost, then interpolation damping where the pixels are finer than the
  plane grid), and at every ℓ where the plane grid is finer than the pixels at χ_i, since sampling at the pixel
  centres folds the grid's noise into the map (2.7× the Poisson level for 64² maps over 3.5° with 64³ particles
  and the default 256² planes, 0.8× with 128² planes).
- Resolution (``resolution_ell``): the lensing-weighted lens distance χ_q = Σ χ_i w_i/Σ w_i maps the wavenumbers
  the run holds, 2π/L ≤ k ≤ k_res, to ℓ = kχ_q, with k_res = min(π n_p/L, π n_m/(2L)): wavelengths of at least two
  particle spacings (the particle Nyquist, above which the initial conditions hold no power) and four force-mesh
  cells (PM forces are softened over ~2 cells). For the default mesh n_m = 2n_p both are equal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hpcgen.errors import UserError
from hpcgen.physics.cosmology import CosmologyParams, comoving_distance_mpc, scale_factor_at_distance
from hpcgen.sim.cosmo_spec import CosmoMapSpec
from hpcgen.sim.pm_nbody import PMConfig, cic_paint, evolve, sinc, zeldovich_ics

__all__ = ["LensPlanes", "PMConfig", "ShotNoise", "check_pm_config", "lens_planes", "lensing_distance_mpc",
           "resolution_ell", "shot_noise", "shot_noise_cl_poisson", "shot_noise_maps", "simulate_pm"]


@dataclass(frozen=True)
class LensPlanes:
    """Plane centres χ (n,) in Mpc, their scale factors a (n,), thickness Δχ (Mpc), Born weights (n,) in 1/Mpc²
    (κ = Σ weight_i · Σ_i with Σ_i = ∫δ dχ in Mpc), source distance χ_s (Mpc). Ordered by increasing a (far first)."""

    chi_mpc: np.ndarray
    a: np.ndarray
    thickness_mpc: float
    weight_per_mpc2: np.ndarray
    chi_source_mpc: float


def lens_planes(spec: CosmoMapSpec, config: PMConfig) -> LensPlanes:
    """The n = ceil(χ_s/plane_thickness) equal slabs tiling [0, χ_s] (default: 26 planes of 127 Mpc at z_s = 1)."""
    params: CosmologyParams = spec.cosmology
    chi_s = float(comoving_distance_mpc(params, spec.z_source))
    n = max(1, math.ceil(chi_s / config.plane_thickness - 1e-9))
    dchi = chi_s / n
    chi = (np.arange(n)[::-1] + 0.5) * dchi
    a = scale_factor_at_distance(params, chi)
    weight = 1.5 * params.Omega_m * params.H0_over_c_per_mpc**2 * chi * (chi_s - chi) / chi_s / a
    return LensPlanes(chi, a, dchi, weight, chi_s)


def check_pm_config(spec: CosmoMapSpec, config: PMConfig) -> None:
    """Raise UserError if the box cannot hold the map or the run starts after the source plane."""
    chi_s = float(comoving_distance_mpc(spec.cosmology, spec.z_source))
    extent = chi_s * spec.field_rad
    if extent > config.box_mpc:
        raise UserError(f"PMConfig.box_mpc: the {spec.field_deg}° field spans {extent:.0f} Mpc at z_s = "
                        f"{spec.z_source} (χ_s = {chi_s:.0f} Mpc), so the box needs >= {extent:.0f} Mpc, got "
                        f"{config.box_mpc}")
    if not config.a_start < 1 / (1 + spec.z_source):
        raise UserError(f"PMConfig.a_start: the run must start before the source plane, a_start < 1/(1+z_s) = "
                        f"{1 / (1 + spec.z_source):.3f}, got {config.a_start}")


def _window_deconvolution(n: int, device, dtype) -> torch.Tensor:
    """1/(W_CIC·W_bilinear) of an n² rfft2 grid; each window is sinc²(πm/n) per axis."""
    m = torch.fft.fftfreq(n, device=device, dtype=dtype) * math.pi
    mz = torch.fft.rfftfreq(n, device=device, dtype=dtype) * math.pi
    w = sinc(m).view(-1, 1) * sinc(mz).view(1, -1)
    return w.pow(-4)


@dataclass(frozen=True)
class _PlaneTransform:
    """One plane's random view of the box, for every map of a realisation: arrays of length m."""

    axis: np.ndarray    # line-of-sight axis 0, 1, 2
    swap: np.ndarray    # transpose the transverse axes
    flip_u: np.ndarray
    flip_v: np.ndarray
    slab_start: np.ndarray  # Mpc
    shift: np.ndarray       # (m, 2) Mpc

    @classmethod
    def draw(cls, rng: np.random.Generator, m: int, box: float) -> _PlaneTransform:
        return cls(axis=rng.integers(0, 3, m), swap=rng.integers(0, 2, m).astype(bool),
                   flip_u=rng.integers(0, 2, m).astype(bool), flip_v=rng.integers(0, 2, m).astype(bool),
                   slab_start=rng.uniform(0, box, m), shift=rng.uniform(0, box, (m, 2)))


def _bilinear_periodic(grid: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """grid (n, n) read at cell coordinates u (N,), v (N,) → (N, N) outer grid, periodic."""
    n = grid.shape[0]
    iu, iv = torch.floor(u), torch.floor(v)
    fu, fv = (u - iu)[:, None], (v - iv)[None, :]
    iu0, iv0 = iu.long().remainder(n), iv.long().remainder(n)
    iu1, iv1 = (iu0 + 1).remainder(n), (iv0 + 1).remainder(n)
    g0, g1 = grid[iu0], grid[iu1]
    return ((1 - fu) * ((1 - fv) * g0[:, iv0] + fv * g0[:, iv1])
            + fu * ((1 - fv) * g1[:, iv0] + fv * g1[:, iv1]))


class _PlaneProjector:
    """Adds one lens plane's Born contribution to the maps of a realisation."""

    def __init__(self, spec: CosmoMapSpec, config: PMConfig, planes: LensPlanes):
        self.box, self.n = float(config.box_mpc), config.plane_mesh
        self.planes = planes
        self.mean_count = config.n_particles_side**3 * (self.box / self.n) ** 2 * planes.thickness_mpc / self.box**3
        self.deconv = _window_deconvolution(self.n, config.device, config.dtype)
        pix = spec.pixels
        self.theta = (torch.arange(pix, device=config.device, dtype=torch.float64) + 0.5 - pix / 2) * spec.pixel_rad

    def surface_density(self, x: torch.Tensor, axis: int, slab_start: float) -> torch.Tensor:
        """Σ = ∫_slab δ dχ (n, n) in Mpc for the slab [s, s+Δχ) (mod L) along ``axis``; the grid's axes are the other
        two in increasing order."""
        dx = x[:, axis] - slab_start  # in (−L, L): inside the periodic slab iff dx or dx + L lies in [0, Δχ)
        thick = self.planes.thickness_mpc
        rows = (((dx >= 0) & (dx < thick)) | (dx < thick - self.box)).nonzero().squeeze(1)
        uv = x.index_select(0, rows)[:, [c for c in range(3) if c != axis]] * (self.n / self.box)
        sigma = cic_paint(uv, self.n).mul_(thick / self.mean_count).sub_(thick)
        return torch.fft.irfft2(torch.fft.rfft2(sigma) * self.deconv, s=sigma.shape)

    def add(self, kappa: torch.Tensor, transforms: list[_PlaneTransform], i: int, x: torch.Tensor) -> None:
        """kappa (m, N, N) += plane i's Born term for every map, with the particles x (N_p, 3) at a_i."""
        t = transforms[i]
        chi, w = float(self.planes.chi_mpc[i]), float(self.planes.weight_per_mpc2[i])
        offsets = (chi * self.theta).to(kappa.dtype) * (self.n / self.box)
        for m in range(kappa.shape[0]):
            sigma = self.surface_density(x, int(t.axis[m]), float(t.slab_start[m]))
            if t.swap[m]:
                sigma = sigma.T
            if t.flip_u[m]:
                sigma = sigma.flip(0)
            if t.flip_v[m]:
                sigma = sigma.flip(1)
            su, sv = (float(s) * self.n / self.box for s in t.shift[m])
            kappa[m] += w * _bilinear_periodic(sigma, offsets + su, offsets + sv)


def simulate_pm(n_maps: int, spec: CosmoMapSpec, config: PMConfig, rng: np.random.Generator,
                progress: Callable[[int], object] | None = None) -> np.ndarray:
    """Simulate ``n_maps`` convergence maps (n_maps, N, N) float32, N = spec.pixels, pixel (i, j) at angles
    ((i + ½ − N/2), (j + ½ − N/2))·pixel from the centre.

    Every ``config.maps_per_realisation`` consecutive maps share one N-body run (the last run may serve fewer);
    each map has its own random plane transforms. ``progress(n_done)`` is called after each run. The result depends
    only on the inputs and the rng state (on CPU; GPU scatter-adds are not bitwise deterministic).
    """
    if n_maps < 0:
        raise UserError(f"n_maps: expected >= 0, got {n_maps}")
    check_pm_config(spec, config)
    planes = lens_planes(spec, config)
    projector = _PlaneProjector(spec, config, planes)
    out = np.empty((n_maps, spec.pixels, spec.pixels), dtype=np.float32)
    done = 0
    while done < n_maps:
        m = min(config.maps_per_realisation, n_maps - done)
        x, p = zeldovich_ics(config, spec.cosmology, rng)
        transforms = [_PlaneTransform.draw(rng, m, config.box_mpc) for _ in range(planes.a.size)]
        kappa = torch.zeros(m, spec.pixels, spec.pixels, device=config.device, dtype=config.dtype)
        evolve(x, p, config, spec.cosmology, planes.a,
               functools.partial(projector.add, kappa, transforms))
        out[done:done + m] = kappa.cpu().numpy()
        done += m
        if progress is not None:
            progress(done)
    return out


# --- what the maps resolve: particle shot noise and the mesh/box range ---------------------------------------------
def shot_noise_maps(n_maps: int, spec: CosmoMapSpec, config: PMConfig, rng: np.random.Generator) -> np.ndarray:
    """κ maps (n_maps, N, N) float32 of the particle shot noise alone: for every plane of every realisation, n_p³
    particles uniformly random in the box (Poisson up to the fixed total) go through the very projection
    ``simulate_pm`` uses (plane transforms, slab cut, CIC painting, window deconvolution, Born weights, bilinear
    read-out); there is no N-body run. Planes get independent particles, as independent slabs of a real run do.
    """
    if n_maps < 0:
        raise UserError(f"n_maps: expected >= 0, got {n_maps}")
    check_pm_config(spec, config)
    planes = lens_planes(spec, config)
    projector = _PlaneProjector(spec, config, planes)
    n_particles, box = config.n_particles_side**3, float(config.box_mpc)
    out = np.empty((n_maps, spec.pixels, spec.pixels), dtype=np.float32)
    done = 0
    while done < n_maps:
        m = min(config.maps_per_realisation, n_maps - done)
        transforms = [_PlaneTransform.draw(rng, m, box) for _ in range(planes.a.size)]
        kappa = torch.zeros(m, spec.pixels, spec.pixels, device=config.device, dtype=config.dtype)
        for i in range(planes.a.size):
            x = torch.from_numpy(rng.uniform(0.0, box, (n_particles, 3))).to(device=config.device, dtype=config.dtype)
            projector.add(kappa, transforms, i, x.remainder_(box))
        out[done:done + m] = kappa.cpu().numpy()
        done += m
    return out


def shot_noise_cl_poisson(spec: CosmoMapSpec, config: PMConfig) -> float:
    """Analytic C_ℓ^noise = Σ_i w_i² Δχ/(n̄ χ_i²) (sr) of Poisson particles, n̄ = n_p³/L³ (module docstring)."""
    planes = lens_planes(spec, config)
    nbar = config.n_particles_side**3 / float(config.box_mpc) ** 3
    return float(np.sum(planes.weight_per_mpc2**2 * planes.thickness_mpc / (nbar * planes.chi_mpc**2)))


def lensing_distance_mpc(spec: CosmoMapSpec, config: PMConfig) -> float:
    """χ_q = Σ χ_i w_i / Σ w_i, the lens distance weighted by the Born weights (lensing efficiency) of the planes."""
    planes = lens_planes(spec, config)
    return float(np.sum(planes.chi_mpc * planes.weight_per_mpc2) / np.sum(planes.weight_per_mpc2))


RESOLUTION_CRITERION = ("2π/L ≤ ℓ/χ_q ≤ min(π n_p/L, π n_m/(2L)): wavelengths between the box side and two particle "
                        "spacings (four force-mesh cells) at the lensing-weighted lens distance χ_q")


def resolution_ell(spec: CosmoMapSpec, config: PMConfig) -> tuple[float, float]:
    """(ℓ_box, ℓ_res) = (2π/L, k_res)·χ_q: the multipoles whose wavenumbers at the lensing-weighted distance lie
    between the box's fundamental and k_res = min(π n_p/L, π n_m/(2L)) (module docstring)."""
    box = float(config.box_mpc)
    k_res = min(math.pi * config.n_particles_side / box, math.pi * config.mesh / (2.0 * box))
    chi = lensing_distance_mpc(spec, config)
    return 2.0 * math.pi / box * chi, k_res * chi


@dataclass(frozen=True)
class ShotNoise:
    """Measured C_ℓ^noise of ``n_maps`` shot-noise maps on the binning ``edges`` (the house estimator,
    :func:`hpcgen.ops.radial_power_spectrum`): per-bin mean ``cl`` and its standard error ``cl_err`` over maps,
    mean ℓ ``ell`` and Fourier ``modes`` per bin; ``cl_poisson`` the analytic flat level; ``pixel_std`` the rms of
    the noise maps' pixels."""

    edges: np.ndarray
    ell: np.ndarray
    modes: np.ndarray
    cl: np.ndarray
    cl_err: np.ndarray
    n_maps: int
    cl_poisson: float
    pixel_std: float


def shot_noise(spec: CosmoMapSpec, config: PMConfig, rng: np.random.Generator, n_maps: int = 16,
               bins=None) -> ShotNoise:
    """Measure the PM maps' shot noise: ``shot_noise_maps`` binned by :func:`hpcgen.ops.radial_power_spectrum`
    (``bins``: a count or ℓ edges; None = its default binning, the one ``hpcgen validate cosmo`` uses)."""
    from hpcgen.ops import cl_numpy

    if n_maps < 2:
        raise UserError(f"n_maps: the shot-noise error needs >= 2 maps, got {n_maps}")
    maps = shot_noise_maps(n_maps, spec, config, rng)
    ps = cl_numpy(maps, spec.pixel_rad, **({} if bins is None else {"bins": bins}))
    return ShotNoise(edges=ps.edges, ell=ps.ell, modes=ps.modes, cl=ps.cl.mean(axis=0),
                     cl_err=ps.cl.std(axis=0, ddof=1) / math.sqrt(n_maps), n_maps=int(n_maps),
                     cl_poisson=shot_noise_cl_poisson(spec, config), pixel_std=float(maps.astype(np.float64).std()))
