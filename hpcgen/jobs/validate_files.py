"""``hpcgen validate calo|cosmo``: open and check two data files, then compare them (hpcgen.jobs.validate_calo,
hpcgen.jobs.validate_cosmo)."""

from __future__ import annotations

import math
from pathlib import Path

from hpcgen.data.calo_file import open_calo
from hpcgen.data.cosmo_file import open_cosmo
from hpcgen.errors import UserError


class _Head:
    """The first ``n`` samples of an h5py dataset, still read lazily slice by slice (no full load)."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.shape = ds, (n, *ds.shape[1:])

    def __getitem__(self, sl: slice):
        start, stop, _ = sl.indices(self.shape[0])
        return self.ds[start:stop]


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out: cannot create directory {out_dir} ({exc.strerror})") from None


def validate_calo_files(ref: Path, test: Path, out_dir: Path, max_showers: int = 0) -> dict:
    with open_calo(ref) as r, open_calo(test) as t:
        if r.geometry.shape != t.geometry.shape:
            raise UserError(f"{test}: geometry {t.geometry.shape} differs from the reference's {r.geometry.shape}")
        nr = min(len(r), max_showers) if max_showers else len(r)
        nt = min(len(t), max_showers) if max_showers else len(t)
        _make_out_dir(out_dir)
        from hpcgen.jobs.validate_calo import validate_calo

        return validate_calo(
            _Head(r.ecal, nr), r.energy_gev[:nr], _Head(t.ecal, nt), t.energy_gev[:nt], r.geometry, out_dir,
            ref_label=r.generator, test_label=t.generator, ref_name=str(ref), test_name=str(test))


def validate_cosmo_files(ref: Path, test: Path, out_dir: Path, max_maps: int = 0) -> dict:
    with open_cosmo(ref) as r, open_cosmo(test) as t:
        (h, w), (th, tw) = r.image_shape, t.image_shape
        if h != w:
            raise UserError(f"{ref}: maps are {h}×{w} pixels; validation needs square maps")
        if (th, tw) != (h, w):
            raise UserError(f"{test}: maps are {th}×{tw} pixels but the reference's are {h}×{w}; compare maps of one size")
        arcmin = float(r.attrs["pixel_arcmin"]), float(t.attrs["pixel_arcmin"])
        if not math.isclose(*arcmin, rel_tol=1e-6):
            raise UserError(f"{test}: pixel_arcmin is {arcmin[1]:.6g} but the reference's is {arcmin[0]:.6g}; "
                            "compare maps of one pixel scale")
        nr = min(len(r), max_maps) if max_maps else len(r)
        nt = min(len(t), max_maps) if max_maps else len(t)
        for path, n in ((ref, nr), (test, nt)):
            if n < 2:
                raise UserError(f"{path}: {n} map(s) to compare; validation needs at least 2 per file")
        _make_out_dir(out_dir)
        from hpcgen.jobs.validate_cosmo import validate_cosmo

        return validate_cosmo(
            _Head(r.kappa, nr), _Head(t.kappa, nt), math.radians(arcmin[0] / 60.0), out_dir,
            ref_label=str(r.attrs["generator"]), test_label=str(t.attrs["generator"]), ref_name=str(ref),
            test_name=str(test))
