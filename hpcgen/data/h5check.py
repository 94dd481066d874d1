"""Validation pieces shared by every schema: each failure is a ``UserError`` naming the file and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import h5py
import numpy as np

from hpcgen.errors import UserError

T = TypeVar("T")
# Samples scanned per read when checking image datasets for NaN/negatives (≈ 62 MB of float32 at 25³).
SCAN_CHUNK = 1000


def short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def open_validated(path: str | Path, validate: Callable[[Path, h5py.File], T]) -> tuple[h5py.File, T]:
    """Open ``path`` read-only and run ``validate(path, h5)``; any failure closes the file and raises UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file ({short(exc)})") from None
    try:
        return h5, validate(path, h5)
    except UserError:
        h5.close()
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:  # e.g. unreadable virtual sources
        h5.close()
        raise UserError(f"{path}: unreadable content ({short(exc)})") from None


def attr_str(h5: h5py.File, key: str):
    v = h5.attrs.get(key)
    return v.decode() if isinstance(v, bytes) else v


def check_schema(path: Path, h5: h5py.File, schema: str, required_attrs: tuple[str, ...]) -> None:
    found = attr_str(h5, "schema")
    if found is None:
        raise UserError(f"{path}: missing root attribute 'schema' (expected {schema!r})")
    if found != schema:
        raise UserError(f"{path}: schema is {found!r}, expected {schema!r}")
    for key in required_attrs:
        if key not in h5.attrs:
            raise UserError(f"{path}: missing root attribute {key!r}")
    for shard in h5.attrs.get("shards", []):
        shard = shard.decode() if isinstance(shard, bytes) else str(shard)
        if not (path.parent / shard).exists():
            raise UserError(f"{path}: shard {shard!r} of this virtual dataset is missing (expected beside the file)")


def check_dataset(path: Path, h5: h5py.File, name: str, shape: tuple, shape_text: str) -> h5py.Dataset:
    """``shape`` is the expected full shape with None for free sizes; float32 is required."""
    if name not in h5:
        raise UserError(f"{path}: missing dataset {name!r}")
    ds = h5[name]
    if ds.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, ds.shape)):
        raise UserError(f"{path}: dataset {name!r} has shape {ds.shape}, expected {shape_text}")
    if ds.dtype != np.float32:
        raise UserError(f"{path}: dataset {name!r} has dtype {ds.dtype}, expected float32")
    return ds


def check_values(path: Path, name: str, values: np.ndarray, unit: str, positive: bool = True) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise UserError(f"{path}: dataset {name!r} has {int(bad.sum())} NaN/inf values (first at index {int(np.argmax(bad))})")
    if positive and (values <= 0).any():
        i = int(np.argmax(values <= 0))
        raise UserError(f"{path}: dataset {name!r} must be > 0 {unit}, found {values[i]} at index {i}")


def scan_images(path: Path, ds: h5py.Dataset, what: str, sample_word: str, nonnegative: bool) -> None:
    """Stream ``ds`` for NaN/inf (and negative values when ``nonnegative``), naming the first bad sample."""
    for start in range(0, ds.shape[0], SCAN_CHUNK):
        block = ds[start:start + SCAN_CHUNK].reshape(-1, int(np.prod(ds.shape[1:])))
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            raise UserError(f"{path}: dataset {ds.name.lstrip('/')!r} has NaN/inf {what} "
                            f"(first in {sample_word} {start + int(np.argmin(finite))})")
        if nonnegative:
            neg = (block < 0).any(axis=1)
            if neg.any():
                raise UserError(f"{path}: dataset {ds.name.lstrip('/')!r} has negative {what} "
                                f"(first in {sample_word} {start + int(np.argmax(neg))})")


class OpenH5:
    """Base of the validated-file handles: read-only ``h5``, decoded root ``attrs``, context manager."""

    path: Path
    h5: h5py.File

    @property
    def attrs(self) -> dict:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in self.h5.attrs.items()}

    def close(self) -> None:
        self.h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
