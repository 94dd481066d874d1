"""Sharded HDF5 writing: rank r writes ``<name>.r<r>.h5``; rank 0 then writes ``<name>.h5`` as virtual datasets.

Every file is first written under ``<final>.tmp`` and renamed only when complete, so a crash never leaves a file
under a final name that looks complete. The merged file maps the shards in rank order with *relative* source
paths, so the directory can be moved or copied as a whole (HDF5 resolves relative VDS sources against the
directory of the virtual file).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np

from hpcgen.data.calo_file import create_calo_datasets


def shard_path(out: str | os.PathLike, rank: int) -> Path:
    """``showers.h5`` → ``showers.r<rank>.h5`` (same directory)."""
    out = Path(out)
    stem = out.name[:-3] if out.name.endswith(".h5") else out.name
    return out.with_name(f"{stem}.r{rank}.h5")


def tmp_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".tmp")


def existing_shards(out: str | os.PathLike) -> list[Path]:
    """Final-name shard files of an earlier run writing ``out`` (temporaries are simply overwritten)."""
    out = Path(out)
    stem = out.name[:-3] if out.name.endswith(".h5") else out.name
    pat = re.compile(re.escape(stem) + r"\.r\d+\.h5$")
    parent = out.parent if str(out.parent) else Path(".")
    return sorted(p for p in parent.iterdir() if pat.match(p.name)) if parent.exists() else []


class CaloShardWriter:
    """Append showers to one rank's shard; ``commit()`` renames it to its final name."""

    def __init__(self, out: str | os.PathLike, rank: int, shape_xyz: tuple[int, int, int], attrs: dict,
                 expected_n: int) -> None:
        self.final = shard_path(out, rank)
        self.tmp = tmp_path(self.final)
        self.h5 = h5py.File(self.tmp, "w")
        create_calo_datasets(self.h5, shape_xyz, n=0, maxshape_n=None)
        self.h5.attrs.update(attrs)
        self.h5.attrs["rank"] = int(rank)
        self.expected_n = int(expected_n)
        self.n = 0

    def append(self, ecal_gev: np.ndarray, energy_gev: np.ndarray) -> None:
        k = len(energy_gev)
        if k == 0:
            return
        ecal_ds, en_ds = self.h5["ECAL"], self.h5["energy"]
        ecal_ds.resize(self.n + k, axis=0)
        en_ds.resize(self.n + k, axis=0)
        ecal_ds[self.n:self.n + k] = ecal_gev.astype(np.float32, copy=False)
        en_ds[self.n:self.n + k] = np.asarray(energy_gev, dtype=np.float32)
        self.n += k

    def commit(self) -> Path:
        if self.n != self.expected_n:
            raise RuntimeError(f"{self.final}: wrote {self.n} showers, expected {self.expected_n}")
        self.h5.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self.h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_virtual_merge(out: str | os.PathLike, shards: list[Path], attrs: dict) -> Path:
    """Write ``out`` holding virtual ``ECAL`` and ``energy`` datasets over ``shards`` in order (atomic)."""
    out = Path(out)
    counts, shape_xyz = [], None
    for s in shards:
        with h5py.File(s, "r") as h5:
            counts.append(h5["energy"].shape[0])
            shape_xyz = h5["ECAL"].shape[1:]
    n = int(sum(counts))
    ecal_layout = h5py.VirtualLayout(shape=(n, *shape_xyz), dtype="float32")
    en_layout = h5py.VirtualLayout(shape=(n,), dtype="float32")
    start = 0
    for s, k in zip(shards, counts):
        if k == 0:
            continue
        rel = os.path.relpath(s, out.parent if str(out.parent) else ".")
        ecal_layout[start:start + k] = h5py.VirtualSource(rel, "ECAL", shape=(k, *shape_xyz))
        en_layout[start:start + k] = h5py.VirtualSource(rel, "energy", shape=(k,))
        start += k
    tmp = tmp_path(out)
    try:
        with h5py.File(tmp, "w", libver="latest") as h5:
            h5.create_virtual_dataset("ECAL", ecal_layout, fillvalue=np.nan)
            h5.create_virtual_dataset("energy", en_layout, fillvalue=np.nan)
            h5.attrs.update(attrs)
            h5.attrs["shards"] = [os.path.basename(s) for s in shards]
            h5.attrs["shard_counts"] = np.asarray(counts, dtype=np.int64)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
