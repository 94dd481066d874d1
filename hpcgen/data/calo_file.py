"""The ``hpcgen.calo/1`` HDF5 schema: write, open-and-validate, and the CaloChallenge export.

Layout (3DGAN-compatible): ``ECAL`` float32 (N, nx, ny, nz) visible energy in GeV with axes (x, y, depth),
``energy`` float32 (N,) primary energy in GeV; root attributes ``schema``, ``generator``, ``geometry`` (JSON),
``seed``, ``hpcgen_version``. ``ECAL`` is stored one shower per chunk with gzip level 1 plus the byte shuffle
filter (showers are sparse; see benchmarks/results/hdf5_layout.json for the read rates behind this choice).

Opening validates: a wrong file gives a ``UserError`` whose one-line message names the file and the problem; the
file is opened read-only and never modified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from hpcgen import __version__
from hpcgen.data.sharded import DatasetSpec, write_h5_atomic
from hpcgen.data.h5check import OpenH5, SCAN_CHUNK, check_dataset, check_schema, check_values, open_validated, scan_images, short
from hpcgen.errors import UserError
from hpcgen.physics.calo_geometry import SamplingCalorimeter

SCHEMA_CALO = "hpcgen.calo/1"


def calo_attrs(generator: str, geometry: SamplingCalorimeter, seed: int, **extra) -> dict:
    """The root attributes every calorimeter file carries."""
    attrs = {
        "schema": SCHEMA_CALO,
        "generator": str(generator),
        "geometry": geometry.to_json(),
        "seed": int(seed),
        "hpcgen_version": __version__,
    }
    attrs.update(extra)
    return attrs


def calo_specs(shape_xyz: tuple[int, int, int]) -> tuple[DatasetSpec, ...]:
    """The per-sample datasets of ``hpcgen.calo/1``."""
    return (DatasetSpec("ECAL", tuple(shape_xyz)), DatasetSpec("energy", ()))


def write_calo_file(path: str | os.PathLike, ecal_gev: np.ndarray, energy_gev: np.ndarray, attrs: dict) -> Path:
    """Write a complete calorimeter file atomically (temporary name, then rename)."""
    return write_h5_atomic(path, calo_specs(ecal_gev.shape[1:]), {"ECAL": ecal_gev, "energy": energy_gev}, attrs)


@dataclass
class CaloFile(OpenH5):
    """An open, validated calorimeter file. ``ecal`` is the lazy h5py dataset; ``energy_gev`` is in memory."""

    path: Path
    h5: h5py.File
    geometry: SamplingCalorimeter
    energy_gev: np.ndarray

    @property
    def ecal(self) -> h5py.Dataset:
        return self.h5["ECAL"]

    @property
    def generator(self) -> str:
        return str(self.attrs["generator"])

    def __len__(self) -> int:
        return int(self.energy_gev.shape[0])

    def iter_chunks(self, chunk: int = SCAN_CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (slice, ECAL[slice]) in order, ``chunk`` showers at a time."""
        for start in range(0, len(self), chunk):
            sl = slice(start, min(start + chunk, len(self)))
            yield sl, self.ecal[sl]



def open_calo(path: str | os.PathLike, check_cells: bool = True) -> CaloFile:
    """Open ``path`` read-only and validate it against ``hpcgen.calo/1``.

    Raises ``UserError("<path>: <problem>")`` for: a missing or non-HDF5 file, a wrong or missing ``schema``,
    missing ``ECAL``/``energy`` or shards, a wrong shape or dtype, NaN/inf or non-positive primary energies, and
    (with ``check_cells``) NaN/inf or negative cell energies.
    """
    h5, (geometry, energy) = open_validated(path, lambda p, h: _validate(p, h, check_cells))
    return CaloFile(Path(path), h5, geometry, energy)


def _validate(path: Path, h5: h5py.File, check_cells: bool) -> tuple[SamplingCalorimeter, np.ndarray]:
    check_schema(path, h5, SCHEMA_CALO, ("generator", "geometry", "seed", "hpcgen_version"))
    try:
        geometry = SamplingCalorimeter.from_json(h5.attrs["geometry"])
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: attribute 'geometry' is not a valid geometry JSON ({short(exc)})") from None
    nx, ny, nz = geometry.shape
    ecal = check_dataset(path, h5, "ECAL", (None, nx, ny, nz), f"(N, {nx}, {ny}, {nz})")
    n = ecal.shape[0]
    energy = check_dataset(path, h5, "energy", (n,), f"({n},) to match 'ECAL'")[...]
    check_values(path, "energy", energy, "GeV")
    if check_cells:
        scan_images(path, ecal, "cell energies", "shower", nonnegative=True)
    return geometry, energy


def to_calochallenge(ecal_gev: np.ndarray, energy_gev: np.ndarray) -> dict[str, np.ndarray]:
    """Convert to the CaloChallenge layout: ``incident_energies`` (N, 1) MeV and ``showers`` (N, voxels) MeV.

    Voxels are flattened in C order of (depth, x, y) — layer-major, as in CaloChallenge datasets 2/3 where the
    voxel index runs over layers first (Krause et al., arXiv:2410.21611). Returns float32 arrays.
    """
    ecal = np.asarray(ecal_gev, dtype=np.float32)
    showers = np.ascontiguousarray(np.transpose(ecal, (0, 3, 1, 2))).reshape(len(ecal), -1) * np.float32(1e3)
    incident = (np.asarray(energy_gev, dtype=np.float32) * np.float32(1e3)).reshape(-1, 1)
    return {"incident_energies": incident, "showers": showers}


def export_calochallenge(src: str | os.PathLike, dst: str | os.PathLike, chunk: int = SCAN_CHUNK) -> Path:
    """Write ``dst`` in the CaloChallenge layout from a validated ``hpcgen.calo/1`` file (atomic)."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        with open_calo(src) as cf, h5py.File(tmp, "w") as out:
            n, voxels = len(cf), int(np.prod(cf.geometry.shape))
            out.create_dataset("incident_energies", data=(cf.energy_gev * np.float32(1e3)).reshape(-1, 1))
            showers = DatasetSpec("showers", (voxels,)).create(out, n=n, maxshape_n=n)
            for sl, block in cf.iter_chunks(chunk):
                showers[sl] = to_calochallenge(block, cf.energy_gev[sl])["showers"]
            out.attrs["source"] = str(src)
            out.attrs["voxel_order"] = "layer-major: index = (k * nx + i) * ny + j"
            out.attrs["geometry"] = cf.geometry.to_json()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return dst
