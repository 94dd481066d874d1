"""Sharded HDF5 writing: rank r writes ``<name>.r<r>.h5``; rank 0 then writes ``<name>.h5`` as virtual datasets.

Every file is first written under ``<final>.tmp`` and renamed only when complete, so a crash never leaves a file
under a final name that looks complete. The merged file maps the shards in rank order with *relative* source
paths, so the directory can be moved or copied as a whole (HDF5 resolves relative VDS sources against the
directory of the virtual file).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from hpcgen.errors import UserError

# Images: gzip level 1 + byte shuffle, one sample per chunk (11x smaller than raw on showers; random-batch reads
# within 10 % of uncompressed: benchmarks/results/hdf5_layout.json).
IMAGE_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}



class ShardSlot(NamedTuple):
    """One shard of a run split into ``count`` independent processes (a Slurm array job): shard ``index`` holds
    exactly what rank ``index`` of a ``count``-rank MPI run would write, so the two ways give the same data."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "ShardSlot":
        """``"K/M"`` (0-based K < M)."""
        k, sep, m = str(text).partition("/")
        try:
            slot = cls(int(k), int(m))
        except ValueError:
            slot = None
        if not sep or slot is None or not (slot.count >= 1 and 0 <= slot.index < slot.count):
            raise UserError(f"--shard: expected INDEX/COUNT with 0 <= INDEX < COUNT, got {text!r}")
        return slot


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


@dataclass(frozen=True)
class DatasetSpec:
    """One per-sample dataset of a schema: ``name`` with per-sample shape ``sample_shape`` (``()`` for scalars)."""

    name: str
    sample_shape: tuple[int, ...]
    dtype: str = "float32"

    def create(self, h5: h5py.File, n: int = 0, maxshape_n=None) -> h5py.Dataset:
        if self.sample_shape:  # images: one sample per chunk, compressed (benchmarks/results/hdf5_layout.json)
            return h5.create_dataset(self.name, shape=(n, *self.sample_shape), maxshape=(maxshape_n, *self.sample_shape),
                                     dtype=self.dtype, chunks=(1, *self.sample_shape), **IMAGE_COMPRESSION)
        chunk = 4096 if maxshape_n is None else max(1, min(4096, n))
        return h5.create_dataset(self.name, shape=(n,), maxshape=(maxshape_n,), dtype=self.dtype, chunks=(chunk,))


def write_h5_atomic(path: str | os.PathLike, specs: tuple[DatasetSpec, ...], arrays: dict[str, np.ndarray],
                    attrs: dict) -> Path:
    """Write a complete single file (one dataset per spec) under a temporary name, then rename it."""
    path = Path(path)
    tmp = tmp_path(path)
    n = len(arrays[specs[0].name])
    try:
        with h5py.File(tmp, "w") as h5:
            for spec in specs:
                spec.create(h5, n=n, maxshape_n=n)[...] = np.asarray(arrays[spec.name], dtype=spec.dtype)
            h5.attrs.update(attrs)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class ShardWriter:
    """Append samples to one rank's shard; ``commit()`` renames it to its final name."""

    def __init__(self, out: str | os.PathLike, rank: int, specs: tuple[DatasetSpec, ...], attrs: dict,
                 expected_n: int) -> None:
        self.final = shard_path(out, rank)
        self.tmp = tmp_path(self.final)
        self.specs = specs
        self.h5 = h5py.File(self.tmp, "w")
        for spec in specs:
            spec.create(self.h5, n=0, maxshape_n=None)
        self.h5.attrs.update(attrs)
        self.h5.attrs["rank"] = int(rank)
        self.expected_n = int(expected_n)
        self.n = 0

    def append(self, **arrays: np.ndarray) -> None:
        if set(arrays) != {s.name for s in self.specs}:
            raise ValueError(f"append needs exactly {[s.name for s in self.specs]}, got {sorted(arrays)}")
        k = len(next(iter(arrays.values())))
        if k == 0:
            return
        for spec in self.specs:
            ds = self.h5[spec.name]
            ds.resize(self.n + k, axis=0)
            ds[self.n:self.n + k] = np.asarray(arrays[spec.name], dtype=spec.dtype)
        self.n += k

    def commit(self) -> Path:
        if self.n != self.expected_n:
            raise RuntimeError(f"{self.final}: wrote {self.n} samples, expected {self.expected_n}")
        self.h5.close()
        os.replace(self.tmp, self.final)
        return self.final

    def abort(self) -> None:
        try:
            self.h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_virtual_merge(out: str | os.PathLike, shards: list[Path], specs: tuple[DatasetSpec, ...],
                        attrs: dict, counts: list[int] | None = None) -> Path:
    """Write ``out`` holding one virtual dataset per spec over ``shards`` in order (atomic). ``counts``: samples per
    shard when the caller has read them already (else each shard is opened for its length)."""
    out = Path(out)
    if counts is None:
        counts = []
        for s in shards:
            with h5py.File(s, "r") as h5:
                counts.append(h5[specs[0].name].shape[0])
    n = int(sum(counts))
    layouts = {sp.name: h5py.VirtualLayout(shape=(n, *sp.sample_shape), dtype=sp.dtype) for sp in specs}
    start = 0
    for s, k in zip(shards, counts):
        if k == 0:
            continue
        rel = os.path.relpath(s, out.parent if str(out.parent) else ".")
        for sp in specs:
            layouts[sp.name][start:start + k] = h5py.VirtualSource(rel, sp.name, shape=(k, *sp.sample_shape))
        start += k
    tmp = tmp_path(out)
    try:
        with h5py.File(tmp, "w", libver="latest") as h5:
            for name, layout in layouts.items():
                h5.create_virtual_dataset(name, layout, fillvalue=np.nan)
            h5.attrs.update(attrs)
            h5.attrs["shards"] = [os.path.basename(s) for s in shards]
            h5.attrs["shard_counts"] = np.asarray(counts, dtype=np.int64)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def merge_shards(out: str | os.PathLike, count: int, overwrite: bool = False) -> Path:
    """Write ``out`` as virtual datasets over the ``count`` shards ``<name>.r<k>.h5`` that separate processes wrote
    (``--shard k/count``, e.g. the tasks of a Slurm array job). The datasets and root attributes are shard 0's; every
    shard must exist and carry the same schema, generator and seed. Returns ``out``.
    """
    out = Path(out)
    if count < 1:
        raise UserError(f"--shards: expected >= 1, got {count}")
    shards = [shard_path(out, k) for k in range(count)]
    missing = [s for s in shards if not s.is_file()]
    if missing:
        raise UserError(f"merge: {len(missing)} of {count} shards are missing, first {missing[0]} "
                        "(did every array task finish?)")
    if out.exists() and not overwrite:
        raise UserError(f"merge: {out} already exists; pass --overwrite to replace it")
    with h5py.File(shards[0], "r") as h5:
        attrs = {k: v for k, v in h5.attrs.items() if k != "rank"}
        specs = tuple(DatasetSpec(name, ds.shape[1:], ds.dtype.str) for name, ds in h5.items())
    if int(attrs.get("world_size", count)) != count:
        raise UserError(f"merge: the shards were written as {_text(attrs['world_size'])} shards, not --shards {count}")
    counts = []
    for k, s in enumerate(shards):
        with h5py.File(s, "r") as h5:
            for key in ("schema", "generator", "seed", "world_size"):
                if key in attrs and (key not in h5.attrs or str(h5.attrs[key]) != str(attrs[key])):
                    raise UserError(f"merge: {s} has {key}={_text(h5.attrs.get(key))} but shard 0 has "
                                    f"{_text(attrs[key])}; shards of one run must share them")
            if int(h5.attrs.get("rank", k)) != k:
                raise UserError(f"merge: {s} says it is shard {_text(h5.attrs['rank'])}, expected {k}")
            counts.append(h5[specs[0].name].shape[0])
    return write_virtual_merge(out, shards, specs, attrs, counts)


def _text(value) -> str:
    return "(none)" if value is None else str(value.item() if hasattr(value, "item") else value)
