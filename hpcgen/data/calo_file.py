"""The ``hpcgen.calo/1`` HDF5 schema: write, open-and-validate, and the CaloChallenge export.

Layout (3DGAN-compatible): ``ECAL`` float32 (N, nx, ny, nz) visible energy in GeV with axes (x, y, depth),
``energy`` float32 (N,) primary energy in GeV; root attributes ``schema``, ``generator``, ``geometry`` (JSON),
``seed``, ``hpcgen_version``. ``ECAL`` is stored one shower per chunk with gzip level 1 plus the byte shuffle
filter (showers are sparse; see benchmarks/results/hdf5_layout.json for the read rates behind this choice).

Opening validates: a wrong file gives a ``UserError`` whose one-line message names the file and the problem; the
file is opened read-only and never modified.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from hpcgen import __version__
from hpcgen.data.sharded import DatasetSpec
from hpcgen.errors import UserError
from hpcgen.physics.calo_geometry import SamplingCalorimeter

SCHEMA_CALO = "hpcgen.calo/1"
# Showers validated per read when scanning cells for NaN/negatives (≈ 62 MB of float32 at 25³).
_SCAN_CHUNK = 1000


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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as h5:
            for spec in calo_specs(ecal_gev.shape[1:]):
                spec.create(h5, n=len(energy_gev), maxshape_n=len(energy_gev))
            h5["ECAL"][...] = np.asarray(ecal_gev, dtype=np.float32)
            h5["energy"][...] = np.asarray(energy_gev, dtype=np.float32)
            h5.attrs.update(attrs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@dataclass
class CaloFile:
    """An open, validated calorimeter file. ``ecal`` is the lazy h5py dataset; ``energy_gev`` is in memory."""

    path: Path
    h5: h5py.File
    geometry: SamplingCalorimeter
    energy_gev: np.ndarray

    @property
    def ecal(self) -> h5py.Dataset:
        return self.h5["ECAL"]

    @property
    def attrs(self) -> dict:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.h5.attrs.items()}

    @property
    def generator(self) -> str:
        return str(self.attrs["generator"])

    def __len__(self) -> int:
        return int(self.energy_gev.shape[0])

    def iter_chunks(self, chunk: int = _SCAN_CHUNK) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (slice, ECAL[slice]) in order, ``chunk`` showers at a time."""
        for start in range(0, len(self), chunk):
            sl = slice(start, min(start + chunk, len(self)))
            yield sl, self.ecal[sl]

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> "CaloFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_calo(path: str | os.PathLike, check_cells: bool = True) -> CaloFile:
    """Open ``path`` read-only and validate it against ``hpcgen.calo/1``.

    Raises ``UserError("<path>: <problem>")`` for: a missing or non-HDF5 file, a wrong or missing ``schema``,
    missing ``ECAL``/``energy``, a wrong shape or dtype, NaN/inf or non-positive primary energies, and (with
    ``check_cells``) NaN/inf or negative cell energies.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file ({_short(exc)})") from None
    try:
        geometry, energy = _validate(path, h5, check_cells)
    except UserError:
        h5.close()
        raise
    except (OSError, KeyError, ValueError) as exc:  # e.g. a virtual dataset whose shard is missing
        h5.close()
        raise UserError(f"{path}: unreadable content ({_short(exc)})") from None
    return CaloFile(path, h5, geometry, energy)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def _validate(path: Path, h5: h5py.File, check_cells: bool) -> tuple[SamplingCalorimeter, np.ndarray]:
    schema = h5.attrs.get("schema")
    if isinstance(schema, bytes):
        schema = schema.decode()
    if schema is None:
        raise UserError(f"{path}: missing root attribute 'schema' (expected {SCHEMA_CALO!r})")
    if schema != SCHEMA_CALO:
        raise UserError(f"{path}: schema is {schema!r}, expected {SCHEMA_CALO!r}")
    for key in ("generator", "geometry", "seed", "hpcgen_version"):
        if key not in h5.attrs:
            raise UserError(f"{path}: missing root attribute {key!r}")
    try:
        geometry = SamplingCalorimeter.from_json(h5.attrs["geometry"])
    except (ValueError, TypeError, KeyError) as exc:
        raise UserError(f"{path}: attribute 'geometry' is not a valid geometry JSON ({_short(exc)})") from None
    for shard in h5.attrs.get("shards", []):
        shard = shard.decode() if isinstance(shard, bytes) else str(shard)
        if not (path.parent / shard).exists():
            raise UserError(f"{path}: shard {shard!r} of this virtual dataset is missing (expected beside the file)")
    for key in ("ECAL", "energy"):
        if key not in h5:
            raise UserError(f"{path}: missing dataset {key!r}")
    ecal, energy_ds = h5["ECAL"], h5["energy"]
    want = geometry.shape
    if ecal.ndim != 4 or tuple(ecal.shape[1:]) != want:
        raise UserError(f"{path}: dataset 'ECAL' has shape {ecal.shape}, expected (N, {want[0]}, {want[1]}, {want[2]})")
    if energy_ds.shape != (ecal.shape[0],):
        raise UserError(f"{path}: dataset 'energy' has shape {energy_ds.shape}, expected ({ecal.shape[0]},) to match 'ECAL'")
    for key, ds in (("ECAL", ecal), ("energy", energy_ds)):
        if ds.dtype != np.float32:
            raise UserError(f"{path}: dataset {key!r} has dtype {ds.dtype}, expected float32")
    energy = energy_ds[...]
    bad = ~np.isfinite(energy)
    if bad.any():
        raise UserError(f"{path}: dataset 'energy' has {int(bad.sum())} NaN/inf values (first at index {int(np.argmax(bad))})")
    if (energy <= 0).any():
        i = int(np.argmax(energy <= 0))
        raise UserError(f"{path}: dataset 'energy' must be > 0 GeV, found {energy[i]} at index {i}")
    if check_cells:
        for start in range(0, ecal.shape[0], _SCAN_CHUNK):
            block = ecal[start:start + _SCAN_CHUNK]
            if not np.isfinite(block).all():
                i = start + int(np.argmax(~np.isfinite(block).reshape(len(block), -1).all(axis=1)))
                raise UserError(f"{path}: dataset 'ECAL' has NaN/inf cell energies (first in shower {i})")
            if (block < 0).any():
                i = start + int(np.argmax((block < 0).reshape(len(block), -1).any(axis=1)))
                raise UserError(f"{path}: dataset 'ECAL' has negative cell energies (first in shower {i})")
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


def export_calochallenge(src: str | os.PathLike, dst: str | os.PathLike, chunk: int = _SCAN_CHUNK) -> Path:
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
