"""The ``hpcgen.cosmo/1`` HDF5 schema: weak-lensing convergence maps, written and opened-with-validation.

Layout: ``kappa`` float32 (N, H, W) convergence (dimensionless), optional ``sigma8`` float32 (N,) per map (for
σ8-conditioned training; absent = every map has the cosmology's σ8); root attributes ``schema``, ``cosmology``
(JSON: Omega_m, Omega_b, h, n_s, sigma8), ``z_source``, ``field_deg``, ``pixel_arcmin``, ``generator``
(pm | lognormal | gan:<id>), ``seed``, ``hpcgen_version``. Maps are stored one per chunk, gzip-1 + shuffle.

Optional attributes of a PM file (``hpcgen simulate cosmo --generator pm``; readers that do not know them ignore
them, and a file without them is a file whose generator declares no limits): what the run resolves, from
:func:`hpcgen.sim.cosmo_pm.shot_noise` and :func:`hpcgen.sim.cosmo_pm.resolution_ell` (docs/cosmo_validation.md).
``pm_noise_edges`` (nb+1,) and ``pm_noise_ell`` (nb,) the ℓ binning (the default one of ``hpcgen validate cosmo``
for the file's maps), ``pm_noise_cl`` / ``pm_noise_cl_err`` (nb,) the measured shot-noise C_ℓ (sr) and its standard
error, ``pm_noise_maps`` the number of noise maps, ``pm_noise_cl_poisson`` the analytic flat level,
``pm_noise_pixel_std`` the noise maps' pixel rms, ``pm_ell_min`` / ``pm_ell_max`` the ℓ range of the box and the
particle/mesh resolution, ``pm_ell_criterion`` that criterion in words.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from hpcgen import __version__
from hpcgen.data.h5check import OpenH5, check_dataset, check_schema, check_values, open_validated, scan_images, short
from hpcgen.data.sharded import DatasetSpec, write_h5_atomic
from hpcgen.errors import UserError

SCHEMA_COSMO = "hpcgen.cosmo/1"
# CosmoGAN's cosmology (Mustafa et al. 2017, arXiv:1706.02390; Ω_b assumed), docs/cosmo_validation.md.
COSMOGAN_COSMOLOGY = {"Omega_m": 0.26, "Omega_b": 0.046, "h": 0.72, "n_s": 0.96, "sigma8": 0.798}


def cosmo_specs(height: int, width: int, with_sigma8: bool = False) -> tuple[DatasetSpec, ...]:
    specs = (DatasetSpec("kappa", (int(height), int(width))),)
    return specs + ((DatasetSpec("sigma8", ()),) if with_sigma8 else ())


def cosmo_attrs(generator: str, cosmology: dict, z_source: float, field_deg: float, pixels: int, seed: int,
                **extra) -> dict:
    attrs = {
        "schema": SCHEMA_COSMO,
        "generator": str(generator),
        "cosmology": json.dumps(cosmology, sort_keys=True),
        "z_source": float(z_source),
        "field_deg": float(field_deg),
        "pixel_arcmin": float(field_deg) * 60.0 / int(pixels),
        "seed": int(seed),
        "hpcgen_version": __version__,
    }
    attrs.update(extra)
    return attrs


_PM_LIMIT_ARRAYS = ("edges", "ell", "cl", "cl_err")


def pm_limit_attrs(noise, ell_range: tuple[float, float], criterion: str) -> dict:
    """The optional ``pm_*`` attributes (module docstring) of a :class:`hpcgen.sim.cosmo_pm.ShotNoise` and the
    run's resolved ℓ range."""
    attrs = {f"pm_noise_{k}": np.asarray(getattr(noise, k), dtype=np.float64) for k in _PM_LIMIT_ARRAYS}
    attrs.update(pm_noise_maps=int(noise.n_maps), pm_noise_cl_poisson=float(noise.cl_poisson),
                 pm_noise_pixel_std=float(noise.pixel_std), pm_ell_min=float(ell_range[0]),
                 pm_ell_max=float(ell_range[1]), pm_ell_criterion=str(criterion))
    return attrs


def read_pm_limits(attrs) -> dict | None:
    """The ``pm_*`` attributes of an open file as ``hpcgen.fidelity.cosmo.GeneratorLimits`` fields, or None when
    the file has none (not a PM file, or written before they existed). Partial or malformed sets are ignored."""
    try:
        arrays = {f"noise_{k}": np.asarray(attrs[f"pm_noise_{k}"], dtype=np.float64) for k in _PM_LIMIT_ARRAYS}
        nb = arrays["noise_cl"].shape
        shapes_ok = arrays["noise_edges"].shape == (nb[0] + 1,) and all(arrays[f"noise_{k}"].shape == nb
                                                                         for k in ("ell", "cl_err"))
        if not shapes_ok:
            return None
        return {**arrays, "noise_n_maps": int(attrs["pm_noise_maps"]),
                "noise_cl_poisson": float(attrs["pm_noise_cl_poisson"]),
                "noise_pixel_std": float(attrs["pm_noise_pixel_std"]), "ell_min": float(attrs["pm_ell_min"]),
                "ell_max": float(attrs["pm_ell_max"]), "criterion": str(attrs["pm_ell_criterion"])}
    except (KeyError, TypeError, ValueError):
        return None


def write_cosmo_file(path: str | os.PathLike, kappa: np.ndarray, attrs: dict, sigma8: np.ndarray | None = None) -> Path:
    """Write a complete convergence-map file atomically (temporary name, then rename)."""
    arrays = {"kappa": kappa} if sigma8 is None else {"kappa": kappa, "sigma8": sigma8}
    return write_h5_atomic(path, cosmo_specs(*kappa.shape[1:], with_sigma8=sigma8 is not None), arrays, attrs)


@dataclass
class CosmoFile(OpenH5):
    """An open, validated map file. ``kappa`` is the lazy h5py dataset; ``sigma8`` (N,) is in memory."""

    path: Path
    h5: h5py.File
    cosmology: dict
    sigma8: np.ndarray

    @property
    def kappa(self) -> h5py.Dataset:
        return self.h5["kappa"]

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.kappa.shape[1:])

    def __len__(self) -> int:
        return int(self.kappa.shape[0])



def open_cosmo(path: str | os.PathLike, check_pixels: bool = True) -> CosmoFile:
    """Open ``path`` read-only and validate it against ``hpcgen.cosmo/1`` (one-line ``UserError`` otherwise)."""
    h5, (cosmology, sigma8) = open_validated(path, lambda p, h: _validate(p, h, check_pixels))
    return CosmoFile(Path(path), h5, cosmology, sigma8)


def _validate(path: Path, h5: h5py.File, check_pixels: bool) -> tuple[dict, np.ndarray]:
    check_schema(path, h5, SCHEMA_COSMO, ("generator", "cosmology", "z_source", "field_deg", "pixel_arcmin", "seed",
                                          "hpcgen_version"))
    try:
        cosmology = json.loads(h5.attrs["cosmology"])
        sigma8_default = float(cosmology["sigma8"])
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: attribute 'cosmology' is not a JSON object with 'sigma8' ({short(exc)})") from None
    kappa = check_dataset(path, h5, "kappa", (None, None, None), "(N, H, W)")
    n = kappa.shape[0]
    if "sigma8" in h5:
        sigma8 = check_dataset(path, h5, "sigma8", (n,), f"({n},) to match 'kappa'")[...]
        check_values(path, "sigma8", sigma8, "")
    else:
        sigma8 = np.full(n, sigma8_default, dtype=np.float32)
    if check_pixels:
        scan_images(path, kappa, "pixels", "map", nonnegative=False)
    return cosmology, sigma8
