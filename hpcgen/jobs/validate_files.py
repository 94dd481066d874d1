"""``hpcgen validate calo``: open and validate two calorimeter files, then compare them (hpcgen.jobs.validate_calo)."""

from __future__ import annotations

from pathlib import Path

from hpcgen.data.calo_file import open_calo
from hpcgen.errors import UserError


class _Head:
    """The first ``n`` showers of an h5py dataset, still read lazily slice by slice (no full load)."""

    def __init__(self, ds, n: int) -> None:
        self.ds, self.shape = ds, (n, *ds.shape[1:])

    def __getitem__(self, sl: slice):
        start, stop, _ = sl.indices(self.shape[0])
        return self.ds[start:stop]


def validate_calo_files(ref: Path, test: Path, out_dir: Path, max_showers: int = 0) -> dict:
    with open_calo(ref) as r, open_calo(test) as t:
        if r.geometry.shape != t.geometry.shape:
            raise UserError(f"{test}: geometry {t.geometry.shape} differs from the reference's {r.geometry.shape}")
        nr = min(len(r), max_showers) if max_showers else len(r)
        nt = min(len(t), max_showers) if max_showers else len(t)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--out: cannot create directory {out_dir} ({exc.strerror})") from None
        from hpcgen.jobs.validate_calo import validate_calo

        return validate_calo(
            _Head(r.ecal, nr), r.energy_gev[:nr], _Head(t.ecal, nt), t.energy_gev[:nt], r.geometry, out_dir,
            ref_label=r.generator, test_label=t.generator, ref_name=str(ref), test_name=str(test))
