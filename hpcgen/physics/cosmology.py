"""Background cosmology, matter power spectra and Limber lensing spectra — one thin layer over pyccl.

Every cosmology-dependent number of hpcgen (the lognormal field's C_ℓ, the particle-mesh initial conditions and
lens-plane distances, the Limber prediction the PM maps are tested against) comes from here, so they agree.
pyccl (Chisari et al. 2019, ApJS 242, 2) with the Eisenstein & Hu transfer function and Halofit (Takahashi et al.
2012) non-linear P(k). Units: k in 1/Mpc, P in Mpc³, distances in Mpc (not Mpc/h).

Checked anchors (shared/REFERENCE.md §2, CosmoGAN cosmology, z_s = 1): χ_s = 3292 Mpc; ℓ(ℓ+1)C_ℓ/2π = 5.0·10⁻⁵
at ℓ = 10³ and 1.25·10⁻⁴ at ℓ = 10⁴.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass

import numpy as np

from hpcgen.errors import UserError

C_KM_S = 299792.458


@dataclass(frozen=True)
class CosmologyParams:
    """Flat ΛCDM. Defaults: CosmoGAN's cosmology (Mustafa et al. 2017; Ω_b assumed)."""

    Omega_m: float = 0.26
    Omega_b: float = 0.046
    h: float = 0.72
    n_s: float = 0.96
    sigma8: float = 0.798

    def __post_init__(self) -> None:
        if not 0 < self.Omega_b < self.Omega_m < 1:
            raise UserError(f"cosmology: need 0 < Omega_b < Omega_m < 1, got Omega_b={self.Omega_b}, Omega_m={self.Omega_m}")
        if not 0.3 < self.h < 1.2 or not 0.1 < self.sigma8 < 2 or not 0.5 < self.n_s < 1.5:
            raise UserError(f"cosmology: h, sigma8, n_s out of range (h in (0.3, 1.2), sigma8 in (0.1, 2), "
                            f"n_s in (0.5, 1.5)), got h={self.h}, sigma8={self.sigma8}, n_s={self.n_s}")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def H0_over_c_per_mpc(self) -> float:
        return 100.0 * self.h / C_KM_S


def _vectorised(fn, params: CosmologyParams, x) -> np.ndarray:
    """pyccl's background functions want a 1-D array or a scalar: keep the caller's shape."""
    x = np.asarray(x, dtype=float)
    return np.asarray(fn(ccl_cosmology(params), x.ravel())).reshape(x.shape)


@functools.lru_cache(maxsize=8)
def ccl_cosmology(params: CosmologyParams):
    import pyccl as ccl

    return ccl.Cosmology(Omega_c=params.Omega_m - params.Omega_b, Omega_b=params.Omega_b, h=params.h,
                         n_s=params.n_s, sigma8=params.sigma8, transfer_function="eisenstein_hu",
                         matter_power_spectrum="halofit")


def linear_power(params: CosmologyParams, k_per_mpc, a: float = 1.0) -> np.ndarray:
    """Linear matter power P_lin(k, a) in Mpc³."""
    import pyccl as ccl

    return ccl.linear_matter_power(ccl_cosmology(params), np.asarray(k_per_mpc, dtype=float), a)


def nonlinear_power(params: CosmologyParams, k_per_mpc, a: float = 1.0) -> np.ndarray:
    """Halofit matter power P(k, a) in Mpc³."""
    import pyccl as ccl

    return ccl.nonlin_matter_power(ccl_cosmology(params), np.asarray(k_per_mpc, dtype=float), a)


def growth_factor(params: CosmologyParams, a) -> np.ndarray:
    """Linear growth factor D(a), normalised to D(1) = 1."""
    import pyccl as ccl

    return _vectorised(ccl.growth_factor, params, np.asarray(a, dtype=float))


def comoving_distance_mpc(params: CosmologyParams, z) -> np.ndarray:
    import pyccl as ccl

    return _vectorised(ccl.comoving_radial_distance, params, 1.0 / (1.0 + np.asarray(z, dtype=float)))


def scale_factor_at_distance(params: CosmologyParams, chi_mpc) -> np.ndarray:
    import pyccl as ccl

    return _vectorised(ccl.scale_factor_of_chi, params, np.asarray(chi_mpc, dtype=float))


def limber_convergence_cl(params: CosmologyParams, ell, z_source: float = 1.0, nonlinear: bool = True) -> np.ndarray:
    """Limber C_ℓ of the convergence for all sources on one plane at ``z_source`` (a δ-like n(z), σ_z = 0.005)."""
    import pyccl as ccl

    if not z_source > 0:
        raise UserError(f"--z-source: expected > 0, got {z_source}")
    cosmo = ccl_cosmology(params)
    z = np.linspace(max(0.0, z_source - 0.1), z_source + 0.1, 801)
    nz = np.exp(-0.5 * ((z - z_source) / 0.005) ** 2)
    tracer = ccl.WeakLensingTracer(cosmo, dndz=(z, nz))
    ell = np.asarray(ell, dtype=float)
    if nonlinear:
        return ccl.angular_cl(cosmo, tracer, tracer, ell)
    pk = ccl.Pk2D.from_function(lambda k, a: ccl.linear_matter_power(cosmo, k, a), is_logp=False)
    return ccl.angular_cl(cosmo, tracer, tracer, ell, p_of_k_a=pk)
