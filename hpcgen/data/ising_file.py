"""The ``hpcgen.ising/1`` HDF5 schema: 2D Ising configurations, written and opened-with-validation (docs/ising.md).

Layout: ``spins`` int8 (N, L, L) with values exactly ±1 (one configuration per chunk, gzip-1 + shuffle),
``temperature`` float64 (N,) the temperature of each configuration in J/k_B; root attributes ``schema``,
``generator`` (metropolis | wolff for the Monte Carlo), ``algorithm`` (the same for the Monte Carlo), ``L``,
``J`` = 1, ``field`` = 0, ``temperatures`` (n_T,) the distinct temperatures of the run in order, ``thin`` (n_T,)
the sweeps between kept configurations at each temperature, ``thermalise`` (n_T,) the sweeps discarded at the
start of each chain, ``tau_int_E`` / ``tau_int_E_err`` / ``tau_int_absM`` / ``tau_int_absM_err`` (n_T,) the
integrated autocorrelation times in sweeps of the energy and of |m| and their errors measured by the pilot run at
each temperature, ``pilot_sweeps`` (n_T,) its length, ``tau_reliable`` (n_T,) whether both τ estimates met the
reliability rule, ``samples_per_temperature``, ``sweep_definition`` (words), ``seed``, ``hpcgen_version``; a
Wolff file also has ``wolff_clusters_per_sweep`` (n_T,), the calibrated clusters per sweep r.

Opening validates: a wrong file gives a ``UserError`` whose one-line message names the file, the problem and what
is allowed; the file is opened read-only and never modified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from hpcgen import __version__
from hpcgen.data.h5check import SCAN_CHUNK, OpenH5, check_schema, open_validated
from hpcgen.data.sharded import DatasetSpec, write_h5_atomic
from hpcgen.errors import UserError

SCHEMA_ISING = "hpcgen.ising/1"
PER_TEMPERATURE_ATTRS = ("thin", "thermalise", "tau_int_E", "tau_int_E_err", "tau_int_absM", "tau_int_absM_err",
                         "pilot_sweeps", "tau_reliable")
REQUIRED_ATTRS = ("generator", "algorithm", "L", "temperatures", *PER_TEMPERATURE_ATTRS, "seed", "hpcgen_version")


def ising_specs(L: int) -> tuple[DatasetSpec, ...]:
    """The per-sample datasets of ``hpcgen.ising/1``."""
    return DatasetSpec("spins", (int(L), int(L)), "int8"), DatasetSpec("temperature", (), "float64")


def ising_attrs(algorithm: str, L: int, seed: int, temperatures, thin, thermalise, tau_int_E, tau_int_E_err,
                tau_int_absM, tau_int_absM_err, pilot_sweeps, tau_reliable, sweep_definition: str = "",
                generator: str | None = None, **extra) -> dict:
    """The root attributes of an Ising file; the per-temperature ones are (n_T,) arrays in the order of
    ``temperatures``."""
    temperatures = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    n_t = len(temperatures)

    def per_t(value, dtype):
        a = np.asarray(value, dtype=dtype).reshape(-1)
        return np.full(n_t, a[0], dtype=dtype) if a.size == 1 else a

    attrs = {
        "schema": SCHEMA_ISING,
        "generator": str(generator or algorithm),
        "algorithm": str(algorithm),
        "L": int(L),
        "J": 1.0,
        "field": 0.0,
        "temperatures": temperatures,
        "thin": per_t(thin, np.int64),
        "thermalise": per_t(thermalise, np.int64),
        "tau_int_E": per_t(tau_int_E, np.float64),
        "tau_int_E_err": per_t(tau_int_E_err, np.float64),
        "tau_int_absM": per_t(tau_int_absM, np.float64),
        "tau_int_absM_err": per_t(tau_int_absM_err, np.float64),
        "pilot_sweeps": per_t(pilot_sweeps, np.int64),
        "tau_reliable": per_t(tau_reliable, np.bool_),
        "sweep_definition": str(sweep_definition),
        "seed": int(seed),
        "hpcgen_version": __version__,
    }
    attrs.update(extra)
    return attrs


def write_ising_file(path: str | os.PathLike, spins: np.ndarray, temperature: np.ndarray, attrs: dict) -> Path:
    """Write a complete Ising file atomically (temporary name, then rename)."""
    return write_h5_atomic(path, ising_specs(spins.shape[1]), {"spins": spins, "temperature": temperature}, attrs)


@dataclass
class IsingFile(OpenH5):
    """An open, validated Ising file. ``spins`` is the lazy h5py dataset; ``temperature`` (N,) is in memory."""

    path: Path
    h5: h5py.File
    L: int
    temperature: np.ndarray
    temperatures: np.ndarray

    @property
    def spins(self) -> h5py.Dataset:
        return self.h5["spins"]

    def __len__(self) -> int:
        return int(self.spins.shape[0])

    def per_temperature(self, name: str) -> np.ndarray:
        """A per-temperature attribute (e.g. ``tau_int_absM``) as an (n_T,) array aligned with ``temperatures``."""
        return np.asarray(self.h5.attrs[name])


def open_ising(path: str | os.PathLike) -> IsingFile:
    """Open ``path`` read-only and validate it against ``hpcgen.ising/1`` (one-line ``UserError`` otherwise)."""
    h5, (L, temperature, temperatures) = open_validated(path, _validate)
    return IsingFile(Path(path), h5, L, temperature, temperatures)


def _validate(path: Path, h5: h5py.File) -> tuple[int, np.ndarray, np.ndarray]:
    check_schema(path, h5, SCHEMA_ISING, REQUIRED_ATTRS)
    L = h5.attrs["L"]
    if not (np.ndim(L) == 0 and np.issubdtype(np.asarray(L).dtype, np.integer) and int(L) >= 4):
        raise UserError(f"{path}: attribute 'L' must be an integer >= 4, got {L!r}")
    L = int(L)
    temperatures = np.asarray(h5.attrs["temperatures"], dtype=np.float64).reshape(-1)
    if len(temperatures) == 0 or not (np.isfinite(temperatures).all() and (temperatures > 0).all()):
        raise UserError(f"{path}: attribute 'temperatures' must be a non-empty list of finite temperatures > 0")
    for key in PER_TEMPERATURE_ATTRS:
        if np.asarray(h5.attrs[key]).shape != temperatures.shape:
            raise UserError(f"{path}: attribute {key!r} has shape {np.asarray(h5.attrs[key]).shape}, expected "
                            f"{temperatures.shape}: one value per entry of 'temperatures'")
    if "wolff_clusters_per_sweep" in h5.attrs and \
            np.asarray(h5.attrs["wolff_clusters_per_sweep"]).shape != temperatures.shape:
        raise UserError(f"{path}: attribute 'wolff_clusters_per_sweep' must have one value per entry of 'temperatures'")
    if (np.asarray(h5.attrs["thin"]) < 1).any():
        raise UserError(f"{path}: attribute 'thin' must be >= 1 sweep at every temperature")
    if "spins" not in h5:
        raise UserError(f"{path}: missing dataset 'spins'")
    spins = h5["spins"]
    if spins.ndim != 3 or spins.shape[1:] != (L, L) or spins.shape[0] < 1:
        raise UserError(f"{path}: dataset 'spins' has shape {spins.shape}, expected (N, {L}, {L}) with N >= 1 "
                        f"(L = {L} from the attribute 'L')")
    if spins.dtype != np.int8:
        raise UserError(f"{path}: dataset 'spins' has dtype {spins.dtype}, expected int8 with values ±1")
    n = spins.shape[0]
    if "temperature" not in h5:
        raise UserError(f"{path}: missing dataset 'temperature'")
    t_ds = h5["temperature"]
    if t_ds.shape != (n,) or t_ds.dtype.kind != "f":
        raise UserError(f"{path}: dataset 'temperature' has shape {t_ds.shape} and dtype {t_ds.dtype}, expected "
                        f"float ({n},) to match 'spins'")
    temperature = t_ds[...].astype(np.float64)
    unknown = ~np.isin(temperature, temperatures)
    if unknown.any():
        i = int(np.argmax(unknown))
        raise UserError(f"{path}: dataset 'temperature' has {float(temperature[i])!r} at index {i}, which is not one "
                        f"of the attribute 'temperatures' ({', '.join(f'{t:g}' for t in temperatures[:8])}"
                        f"{', ...' if len(temperatures) > 8 else ''})")
    for start in range(0, n, SCAN_CHUNK):
        block = spins[start:start + SCAN_CHUNK].reshape(-1, L * L)
        bad = (np.abs(block.astype(np.int16)) != 1).any(axis=1)
        if bad.any():
            k = start + int(np.argmax(bad))
            value = int(block[int(np.argmax(bad))][np.abs(block[int(np.argmax(bad))].astype(np.int16)) != 1][0])
            raise UserError(f"{path}: dataset 'spins' must hold only +1 and -1, found {value} in configuration {k}")
    return L, temperature, temperatures
