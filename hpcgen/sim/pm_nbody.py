"""Particle-mesh N-body in a periodic comoving box, in torch (CPU or GPU): Zel'dovich initial conditions, CIC mass
assignment, FFT Poisson solve and FastPM's kick–drift–kick in the scale factor. The lens planes of
``hpcgen.sim.cosmo_pm`` are cut from its particles.

Units: comoving positions x in Mpc (not Mpc/h), time in 1/H0, so E(a) = H(a)/H0. The momentum is p = a² dx/dt
(Mpc·H0), the peculiar potential φ = a·Φ_Newton (Mpc²·H0²). The equations of motion (Peebles 1980; Quinn et al.
1997) are

    dx/da = p / (a³ E(a)),      dp/da = −∇φ / (a² E(a)),      ∇²φ = (3/2) Ω_m δ(x),

with δ the matter overdensity; the (3/2)Ω_m prefactor is time-independent because φ carries one factor a.

Background and growth come from pyccl (``hpcgen.physics.cosmology``; E(a) includes radiation, as pyccl's growth
does): D(a) normalised to D(1) = 1 and f = dlnD/dlna. In the linear regime p = g_p(a)·Ψ₀ with g_p = a² E D f and
−∇φ = (3/2)Ω_m D Ψ₀ (Ψ₀ the displacement at D = 1), and d g_p/da = (3/2)Ω_m D/(a² E) is the growth equation
(pyccl's tables satisfy it to 0.2 %).

1. Initial conditions (Zel'dovich 1970): white noise w ~ N(0, 1) on the n_p³ particle lattice,
   δ̂_k = ŵ_k·√(n_p³ P_lin(k, a_start)/L³) (unnormalised DFT, P_lin from pyccl, log-log interpolated; the k = 0 mode
   and the Nyquist planes are zeroed), Ψ̂ = i k δ̂/k², x = q + Ψ, p = a² E f Ψ at a_start. The lattice
   q = i·L/n_p + ½·L/n_m sits half a mesh cell off the mesh nodes so that, for n_m/n_p ∈ {1, 2}, an unperturbed
   lattice paints to an exactly uniform CIC density and feels exactly zero force.
2. Forces (Hockney & Eastwood 1988): cloud-in-cell assignment to the n_m³ mesh, δ = ρ/ρ̄ − 1; in Fourier space
   φ̂ = −(3/2)Ω_m δ̂ / (k² W_CIC(k)) with the continuous Green's function −1/k² and the assignment window
   W_CIC = Π_i sinc²(k_i Δ/2) divided out once (φ̂(0) = 0); the gradient by the 4-point finite difference
   [8(φ₊₁ − φ₋₁) − (φ₊₂ − φ₋₂)]/(12Δ) in real space (one inverse FFT instead of the three of a spectral ik
   gradient); CIC read-out at the particles. Interpolation is the transpose of assignment and the gradient stencil is
   antisymmetric, so the total force — and total momentum — is conserved to round-off.
3. Time stepping (Feng et al. 2016, FastPM, arXiv:1603.00476; cf. Klypin & Holtzman 1997): n_steps steps linear in
   a from a_start to 1, KDK with a_{n+½} the arithmetic midpoint and FastPM's growth-aware factors
       kick  a_b → a_c with the force at a_f:  Δp = −∇φ(a_f) · [g_p(a_c) − g_p(a_b)] / ((3/2) Ω_m D(a_f)),
       drift a_b → a_c with the momentum at a_{n+½}:  Δx = p · [D(a_c) − D(a_b)] / g_p(a_{n+½}),
   which make linear growth exact at any step size (the standard Quinn factors ∫da/(a²E), ∫da/(a³E) are the
   small-step limit). Snapshots between steps — the lens planes — are the KDK trajectory itself: the drift of the
   step that contains a_out, stopped at a_out. One force per step (the last one is reused by the next first kick),
   so a run costs n_steps + 1 force evaluations.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hpcgen.errors import UserError
from hpcgen.physics.cosmology import CosmologyParams, ccl_cosmology, growth_factor, linear_power

_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class PMConfig:
    """Knobs of the particle-mesh generator (``hpcgen.sim.cosmo_pm.simulate_pm``).

    n_particles_side: n_p, the run has n_p³ particles on a lattice.
    mesh_side: n_m cells per side of the force mesh; None = 2·n_p (B = 2, FastPM's usual choice). Measured here
        (tests/test_cosmo_pm.py's docstring): with B = 2 the z = 0 power stays within ~25 % of Halofit up to the
        particle Nyquist; B = 1 costs 8× fewer cells but is 10/19/33 % below B = 2 at k = 0.23/0.34/0.49 k_Nyq.
    box_mpc: comoving box side L in Mpc. It must hold the map's transverse extent at the source, χ_s·θ_field ≤ L
        (201 Mpc for 3.5° at z_s = 1), see ``cosmo_pm.check_pm_config``.
    n_steps: KDK steps, linear in a from a_start to 1.
    a_start: scale factor of the Zel'dovich initial conditions (0.02: z = 49; Zel'dovich transients decay as
        D(a_start)/D(a), 3 % at z = 0; Crocce, Pueblas & Scoccimarro 2006).
    plane_thickness_mpc: target comoving thickness Δχ of one lens plane (≤ L); None = L/2. The planes tile
        [0, χ_s] exactly, so the actual Δχ = χ_s/ceil(χ_s/target).
    plane_mesh_side: cells per side of each lens plane's 2-D density grid; None = 2·n_m. Finer than the force mesh
        so that the plane's own CIC and read-out windows (divided out, see ``cosmo_pm``) act beyond the scales the
        N-body resolves.
    maps_per_realisation: κ maps cut from one N-body run, each with its own random shift, rotation and flip of
        every plane (Petri, Haiman & May 2016 find such maps statistically nearly independent for C_ℓ); 1 = every
        map from its own run.
    device: torch device string, "cpu" or "cuda[:i]". dtype: torch.float32 or torch.float64.
    """

    n_particles_side: int = 64
    mesh_side: int | None = None
    box_mpc: float = 256.0
    n_steps: int = 20
    a_start: float = 0.02
    plane_thickness_mpc: float | None = None
    plane_mesh_side: int | None = None
    maps_per_realisation: int = 1
    device: str = "cpu"
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        if self.n_particles_side < 4:
            raise UserError(f"PMConfig.n_particles_side: expected >= 4, got {self.n_particles_side}")
        if self.mesh_side is not None and self.mesh_side < self.n_particles_side:
            raise UserError(f"PMConfig.mesh_side: expected >= n_particles_side ({self.n_particles_side}) or None, "
                            f"got {self.mesh_side}")
        if not self.box_mpc > 0:
            raise UserError(f"PMConfig.box_mpc: expected a box side > 0 Mpc, got {self.box_mpc}")
        if self.n_steps < 1:
            raise UserError(f"PMConfig.n_steps: expected >= 1, got {self.n_steps}")
        if not 0 < self.a_start < 1:
            raise UserError(f"PMConfig.a_start: expected a scale factor in (0, 1), got {self.a_start}")
        if self.plane_thickness_mpc is not None and not 0 < self.plane_thickness_mpc <= self.box_mpc:
            raise UserError(f"PMConfig.plane_thickness_mpc: expected in (0, box_mpc = {self.box_mpc}] or None, "
                            f"got {self.plane_thickness_mpc}")
        if self.plane_mesh_side is not None and self.plane_mesh_side < 8:
            raise UserError(f"PMConfig.plane_mesh_side: expected >= 8 or None, got {self.plane_mesh_side}")
        if self.maps_per_realisation < 1:
            raise UserError(f"PMConfig.maps_per_realisation: expected >= 1, got {self.maps_per_realisation}")
        if self.dtype not in _DTYPES:
            raise UserError(f"PMConfig.dtype: expected torch.float32 or torch.float64, got {self.dtype}")
        try:
            dev = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise UserError(f"PMConfig.device: expected 'cpu' or 'cuda[:i]', got {self.device!r}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"PMConfig.device: {self.device!r} requested but torch sees no CUDA device")

    @property
    def mesh(self) -> int:
        return self.mesh_side if self.mesh_side is not None else 2 * self.n_particles_side

    @property
    def plane_thickness(self) -> float:
        return self.plane_thickness_mpc if self.plane_thickness_mpc is not None else self.box_mpc / 2

    @property
    def plane_mesh(self) -> int:
        return self.plane_mesh_side if self.plane_mesh_side is not None else 2 * self.mesh

    @property
    def step_scale_factors(self) -> np.ndarray:
        return np.linspace(self.a_start, 1.0, self.n_steps + 1)


class Growth:
    """E(a), D(a) and g_p(a) = a² E D f of one cosmology from pyccl, evaluated in float64."""

    def __init__(self, params: CosmologyParams):
        self.params = params

    def _ccl(self, name: str, a) -> np.ndarray:
        import pyccl as ccl

        a = np.asarray(a, dtype=float)
        return np.asarray(getattr(ccl, name)(ccl_cosmology(self.params), a.ravel())).reshape(a.shape)

    def D(self, a) -> np.ndarray:
        return growth_factor(self.params, a)

    def E(self, a) -> np.ndarray:
        return self._ccl("h_over_h0", a)

    def f(self, a) -> np.ndarray:
        return self._ccl("growth_rate", a)

    def gp(self, a) -> np.ndarray:
        a = np.asarray(a, float)
        return a**2 * self.E(a) * self.D(a) * self.f(a)

    def kick_factor(self, a_from: float, a_to: float, a_force: float) -> float:
        return float((self.gp(a_to) - self.gp(a_from)) / (1.5 * self.params.Omega_m * self.D(a_force)))

    def drift_factor(self, a_from: float, a_to: float, a_momentum: float) -> float:
        return float((self.D(a_to) - self.D(a_from)) / self.gp(a_momentum))


def cic_stencil(x_cells: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cloud-in-cell stencil of positions (N, d) in cell units, in [0, n], on a periodic n^d grid: flat C-order
    indices (2^d, N) int64 and weights (2^d, N). Assignment and read-out share it, so read-out is exactly the
    transpose of assignment."""
    d = x_cells.shape[1]
    base = torch.floor(x_cells)
    frac = x_cells - base
    i0 = base.long()
    i0.masked_fill_(i0 == n, 0)  # x = n exactly (round-off of a wrapped position) is x = 0
    i1 = i0 + 1
    i1.masked_fill_(i1 == n, 0)
    idx, w = 0, 1
    for axis in range(d):
        shape = [1] * d + [-1]
        shape[axis] = 2
        idx = idx * n + torch.stack((i0[:, axis], i1[:, axis])).view(shape)
        w = w * torch.stack((1 - frac[:, axis], frac[:, axis])).view(shape)
    return idx.reshape(2**d, -1), w.reshape(2**d, -1)


# Particles per stencil chunk. Every per-chunk temporary then stays under 32 MB, glibc's largest mmap threshold, so
# the allocator recycles heap memory instead of page-faulting fresh mmapped memory on every call (at 128³ particles
# that fault traffic was half the wall time).
_CHUNK = 1 << 18


def cic_stencils(x_cells: torch.Tensor, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``cic_stencil`` of consecutive chunks of ``_CHUNK`` particles."""
    return [cic_stencil(x_cells[s:s + _CHUNK], n) for s in range(0, x_cells.shape[0], _CHUNK)]


def cic_paint(x_cells: torch.Tensor, n: int, stencils=None, out: torch.Tensor | None = None) -> torch.Tensor:
    """CIC counts of unit-mass particles at positions (N, d) in cell units (periodic) on an n^d grid.

    stencils: from ``cic_stencils(x_cells, n)`` if already computed; out: an n^d tensor to overwrite."""
    d = x_cells.shape[1]
    if out is None:
        out = torch.empty((n,) * d, dtype=x_cells.dtype, device=x_cells.device)
    flat = out.view(-1).zero_()
    for idx, w in stencils if stencils is not None else cic_stencils(x_cells, n):
        flat.index_add_(0, idx.view(-1), w.view(-1))
    return out


def cic_readout(field: torch.Tensor, stencils, out: torch.Tensor) -> torch.Tensor:
    """CIC interpolation of a scalar field (n,)*d at the stencils' particles into ``out`` (N,)."""
    flat = field.reshape(-1)
    start = 0
    for idx, w in stencils:
        # index_select is ~2.5× faster than torch.take / fancy indexing on CPU (torch 2.x).
        values = torch.index_select(flat, 0, idx.view(-1)).view_as(w).mul_(w)
        torch.sum(values, dim=0, out=out[start:start + w.shape[1]])
        start += w.shape[1]
    return out


def fft_wavenumbers(n: int, box: float, device, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Broadcastable (kx, ky, kz) in 1/Mpc of an rfftn grid n³ of side ``box``: (n,1,1), (1,n,1), (1,1,n//2+1)."""
    k = torch.fft.fftfreq(n, d=box / n, device=device, dtype=dtype) * 2 * math.pi
    kz = torch.fft.rfftfreq(n, d=box / n, device=device, dtype=dtype) * 2 * math.pi
    return k.view(n, 1, 1), k.view(1, n, 1), kz.view(1, 1, -1)


def sinc(x: torch.Tensor) -> torch.Tensor:
    """sin(x)/x with sinc(0) = 1 (torch.sinc is the normalised sin(πx)/(πx))."""
    return torch.sinc(x / math.pi)


class ParticleMesh:
    """The force mesh: n_m³ cells over a periodic box of side L Mpc, for a fixed Ω_m and particle count.

    Holds its mesh-sized work arrays (about 5·n_m³ floats) so a force evaluation allocates no mesh-sized memory."""

    def __init__(self, config: PMConfig, omega_m: float):
        self.n = n = config.mesh
        self.box = float(config.box_mpc)
        self.cell = self.box / n
        self.mean_count = config.n_particles_side**3 / n**3
        dev, dt = torch.device(config.device), config.dtype
        kx, ky, kz = fft_wavenumbers(n, self.box, dev, dt)
        h = self.cell / 2
        window = (sinc(kx * h) * sinc(ky * h) * sinc(kz * h)) ** 2
        green = -1.5 * omega_m / ((kx**2 + ky**2 + kz**2) * window)
        green[0, 0, 0] = 0.0
        self.green = green
        self._delta = torch.empty((n, n, n), device=dev, dtype=dt)
        self._phi = torch.empty_like(self._delta)
        self._grad = torch.empty_like(self._delta)
        self._padded = torch.empty((n + 4) * n * n, device=dev, dtype=dt)
        self._spectrum = torch.empty((n, n, n // 2 + 1), device=dev, dtype=torch.complex64 if dt == torch.float32
                                     else torch.complex128)

    def to_cells(self, x_mpc: torch.Tensor) -> torch.Tensor:
        return x_mpc * (self.n / self.box)

    def overdensity(self, x_mpc: torch.Tensor, stencils=None) -> torch.Tensor:
        """δ = ρ/ρ̄ − 1 (n_m, n_m, n_m) from CIC assignment of particles (N, 3) in Mpc (a view of a work array:
        valid until the next call; clone to keep)."""
        rho = cic_paint(self.to_cells(x_mpc), self.n, stencils, out=self._delta)
        return rho.mul_(1 / self.mean_count).sub_(1)

    def potential(self, delta: torch.Tensor) -> torch.Tensor:
        """φ with ∇²φ = (3/2)Ω_m δ (continuous −1/k², CIC window divided out once), (n_m,)*3 in Mpc²H0²."""
        torch.fft.rfftn(delta, out=self._spectrum)
        self._spectrum.mul_(self.green)
        return torch.fft.irfftn(self._spectrum, s=delta.shape, out=self._phi)

    def gradient(self, phi: torch.Tensor, axis: int) -> torch.Tensor:
        """4-point finite difference [8(φ₊₁ − φ₋₁) − (φ₊₂ − φ₋₂)]/(12Δ) along ``axis``, periodic (a work array)."""
        n = self.n
        shape = [n, n, n]
        shape[axis] = n + 4
        pad = self._padded.view(shape)  # φ with two periodic ghost layers on each side along ``axis``
        pad.narrow(axis, 2, n).copy_(phi)
        pad.narrow(axis, 0, 2).copy_(phi.narrow(axis, n - 2, 2))
        pad.narrow(axis, n + 2, 2).copy_(phi.narrow(axis, 0, 2))
        g = torch.sub(pad.narrow(axis, 3, n), pad.narrow(axis, 1, n), out=self._grad).mul_(8)
        g.sub_(pad.narrow(axis, 4, n)).add_(pad.narrow(axis, 0, n))
        return g.mul_(1 / (12 * self.cell))

    def accelerations(self, x_mpc: torch.Tensor) -> torch.Tensor:
        """−∇φ at the particles (N, 3), in Mpc·H0² (the right-hand side of dp/da times a²E)."""
        stencils = cic_stencils(self.to_cells(x_mpc), self.n)
        phi = self.potential(self.overdensity(x_mpc, stencils))
        force = torch.empty((3, x_mpc.shape[0]), device=x_mpc.device, dtype=x_mpc.dtype)
        for axis in range(3):
            cic_readout(self.gradient(phi, axis), stencils, out=force[axis])
        return force.neg_().T


def particle_lattice(config: PMConfig) -> torch.Tensor:
    """Unperturbed positions q (n_p³, 3) in Mpc: i·L/n_p + ½·L/n_m, C order (x slowest)."""
    n_p = config.n_particles_side
    q1 = torch.arange(n_p, device=config.device, dtype=torch.float64) * (config.box_mpc / n_p)
    q1 += 0.5 * config.box_mpc / config.mesh
    grid = torch.stack(torch.meshgrid(q1, q1, q1, indexing="ij"), dim=-1)
    return grid.reshape(-1, 3).to(config.dtype)


@functools.lru_cache(maxsize=8)
def _linear_power_table(params: CosmologyParams, a: float) -> tuple[np.ndarray, np.ndarray]:
    k = np.geomspace(1e-4, 1e2, 1024)
    return np.log(k), np.log(linear_power(params, k, a))


def zeldovich_displacement(config: PMConfig, params: CosmologyParams, rng: np.random.Generator) -> torch.Tensor:
    """Zel'dovich displacement Ψ (n_p³, 3) in Mpc at a_start, a Gaussian realisation of P_lin(k, a_start)."""
    n_p, box = config.n_particles_side, float(config.box_mpc)
    noise = torch.from_numpy(rng.standard_normal((n_p, n_p, n_p))).to(device=config.device, dtype=config.dtype)
    kx, ky, kz = fft_wavenumbers(n_p, box, config.device, config.dtype)
    kmag = torch.sqrt(kx**2 + ky**2 + kz**2)
    log_k, log_p = _linear_power_table(params, float(config.a_start))
    kk = kmag.cpu().double().numpy()
    pk = np.zeros_like(kk)
    nz = kk > 0
    pk[nz] = np.exp(np.interp(np.log(kk[nz]), log_k, log_p))
    amp = torch.from_numpy(np.sqrt(pk * n_p**3 / box**3)).to(device=config.device, dtype=config.dtype)
    delta_k = torch.fft.rfftn(noise) * amp
    # Nyquist planes: i·k of a real mode is imaginary there, which irfftn would silently drop; zero them instead.
    nyq = n_p // 2
    keep = torch.ones_like(kmag, dtype=torch.bool)
    keep[nyq] = False
    keep[:, nyq] = False
    keep[:, :, nyq] = False
    delta_k = delta_k * keep
    inv_k2 = torch.where(kmag > 0, 1.0 / kmag.clamp_min(1e-30) ** 2, torch.zeros_like(kmag))
    comps = [torch.fft.irfftn(1j * kc * inv_k2 * delta_k, s=(n_p,) * 3) for kc in (kx, ky, kz)]
    return torch.stack(comps, dim=-1).reshape(-1, 3)


def zeldovich_ics(config: PMConfig, params: CosmologyParams, rng: np.random.Generator,
                  growth: Growth | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, p) at a_start, each (n_p³, 3): x = q + Ψ (Mpc, wrapped into the box), p = a² E f Ψ (Mpc·H0)."""
    growth = growth or Growth(params)
    a = config.a_start
    psi = zeldovich_displacement(config, params, rng)
    x = torch.remainder(particle_lattice(config) + psi, config.box_mpc)
    p = psi * float(a**2 * growth.E(a) * growth.f(a))
    return x, p


def evolve(x: torch.Tensor, p: torch.Tensor, config: PMConfig, params: CosmologyParams,
           a_outputs: Sequence[float] = (), on_output: Callable[[int, torch.Tensor], None] | None = None,
           growth: Growth | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate (x, p) from a_start to a = 1 with FastPM KDK; returns the final (x, p) (new tensors).

    a_outputs: increasing scale factors in (a_start, 1]; ``on_output(j, x_j)`` is called with the positions (N, 3)
    at a_outputs[j], taken on the step's drift (wrapped into the box; the callee may keep or drop them).
    """
    growth = growth or Growth(params)
    a_outputs = np.asarray(a_outputs, dtype=float)
    if a_outputs.size and (np.any(np.diff(a_outputs) <= 0) or a_outputs[0] <= config.a_start or a_outputs[-1] > 1):
        raise ValueError(f"a_outputs must increase within (a_start = {config.a_start}, 1], got {a_outputs}")
    pm = ParticleMesh(config, params.Omega_m)
    box = config.box_mpc
    steps = config.step_scale_factors
    x, p = x.clone(), p.clone()
    force = pm.accelerations(x)
    j = 0
    for a0, a1 in itertools.pairwise(steps):
        ah = 0.5 * (a0 + a1)
        p.add_(force, alpha=growth.kick_factor(a0, ah, a0))
        while j < a_outputs.size and a_outputs[j] <= a1:
            on_output(j, torch.remainder(x + p * growth.drift_factor(a0, a_outputs[j], ah), box))
            j += 1
        x.add_(p, alpha=growth.drift_factor(a0, a1, ah))
        x.remainder_(box)
        force = pm.accelerations(x)
        p.add_(force, alpha=growth.kick_factor(ah, a1, a1))
    return x, p
