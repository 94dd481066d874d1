"""The hpcgen.calo/1 HDF5 contract: layout, atomic writes, validation errors, VDS merge, CaloChallenge export."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcgen.data.calo_file import SCHEMA_CALO, calo_attrs, export_calochallenge, open_calo, to_calochallenge, write_calo_file
from hpcgen.data.calo_file import calo_specs
from hpcgen.data.sharded import ShardWriter, shard_path, write_virtual_merge
from hpcgen.errors import UserError
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY

from conftest import run_cli, synthetic_ecal


def test_written_file_follows_the_schema(calo_file: Path):
    with h5py.File(calo_file, "r") as h5:
        assert h5.attrs["schema"] == SCHEMA_CALO
        assert h5["ECAL"].shape == (12, 25, 25, 25) and h5["ECAL"].dtype == np.float32
        assert h5["energy"].shape == (12,) and h5["energy"].dtype == np.float32
        assert h5["ECAL"].chunks == (1, 25, 25, 25) and h5["ECAL"].compression == "gzip"
        for key in ("generator", "geometry", "seed", "hpcgen_version"):
            assert key in h5.attrs
    with open_calo(calo_file) as cf:
        assert cf.geometry == DEFAULT_GEOMETRY and len(cf) == 12


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _corrupt(path: Path, how: str) -> None:
    with h5py.File(path, "a") as h5:
        if how == "no-schema":
            del h5.attrs["schema"]
        elif how == "wrong-schema":
            h5.attrs["schema"] = "hpcgen.cosmo/1"
        elif how == "no-ecal":
            del h5["ECAL"]
        elif how == "wrong-shape":
            del h5["ECAL"]
            h5.create_dataset("ECAL", data=np.zeros((12, 25, 25, 24), np.float32))
        elif how == "wrong-dtype":
            del h5["ECAL"]
            h5.create_dataset("ECAL", data=np.zeros((12, 25, 25, 25), np.float64))
        elif how == "nan-energy":
            h5["energy"][3] = np.nan
        elif how == "negative-energy":
            h5["energy"][5] = -1.0
        elif how == "nan-cell":
            h5["ECAL"][7, 1, 2, 3] = np.nan
        elif how == "negative-cell":
            h5["ECAL"][2, 0, 0, 0] = -1e-3


@pytest.mark.parametrize("how, words", [
    ("no-schema", "missing root attribute 'schema'"),
    ("wrong-schema", "schema is 'hpcgen.cosmo/1'"),
    ("no-ecal", "missing dataset 'ECAL'"),
    ("wrong-shape", "has shape (12, 25, 25, 24)"),
    ("wrong-dtype", "dtype float64, expected float32"),
    ("nan-energy", "NaN/inf values (first at index 3)"),
    ("negative-energy", "must be > 0 GeV"),
    ("nan-cell", "NaN/inf cell energies (first in shower 7)"),
    ("negative-cell", "negative cell energies (first in shower 2)"),
])
def test_bad_file_gives_one_line_naming_file_and_problem_exit_2_file_untouched(calo_file, tmp_path, how, words):
    _corrupt(calo_file, how)
    before = _sha(calo_file)
    with pytest.raises(UserError, match=None) as err:
        open_calo(calo_file)
    assert str(calo_file) in str(err.value) and words in str(err.value)
    res = run_cli("validate", "calo", "--ref", str(calo_file), "--test", str(calo_file), "--out", str(tmp_path / "v"))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(calo_file) in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert _sha(calo_file) == before


def test_not_hdf5_and_missing_file_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    for path, words in ((junk, "not a readable HDF5 file"), (tmp_path / "absent.h5", "no such file")):
        res = run_cli("validate", "calo", "--ref", str(path), "--test", str(path), "--out", str(tmp_path / "v"))
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and words in res.stderr


def test_atomic_write_leaves_no_final_file_when_writing_fails(tmp_path):
    target = tmp_path / "x.h5"
    with pytest.raises(Exception):
        # 3 showers but 2 energies: the ECAL write fails after the file was created
        write_calo_file(target, np.zeros((3, 25, 25, 25), np.float32), np.ones(2, np.float32),
                        calo_attrs("t", DEFAULT_GEOMETRY, 0))
    assert not target.exists() and not list(tmp_path.iterdir())


def _write_shards(out: Path, sizes: list[int]) -> list[np.ndarray]:
    attrs = calo_attrs("test", DEFAULT_GEOMETRY, seed=3)
    blocks = []
    for r, k in enumerate(sizes):
        ecal, energy = synthetic_ecal(k, seed=r)
        w = ShardWriter(out, r, calo_specs(DEFAULT_GEOMETRY.shape), attrs, expected_n=k)
        assert w.tmp.exists() and not w.final.exists()  # final name only after commit
        w.append(ECAL=ecal[: k // 2], energy=energy[: k // 2])
        w.append(ECAL=ecal[k // 2:], energy=energy[k // 2:])
        w.commit()
        blocks.append((ecal, energy))
    write_virtual_merge(out, [shard_path(out, r) for r in range(len(sizes))], calo_specs(DEFAULT_GEOMETRY.shape), attrs)
    return blocks


def test_virtual_merge_is_the_union_of_shards_in_rank_order_and_survives_a_move(tmp_path):
    out = tmp_path / "a" / "showers.h5"
    out.parent.mkdir()
    blocks = _write_shards(out, [5, 4, 0])
    moved = tmp_path / "b"
    shutil.move(str(out.parent), str(moved))
    with open_calo(moved / "showers.h5") as cf:
        assert len(cf) == 9
        np.testing.assert_array_equal(cf.ecal[...], np.concatenate([b[0] for b in blocks]))
        np.testing.assert_array_equal(cf.energy_gev, np.concatenate([b[1] for b in blocks]))


def test_missing_shard_is_reported_by_name(tmp_path):
    out = tmp_path / "showers.h5"
    _write_shards(out, [3, 3])
    shard_path(out, 1).unlink()
    with pytest.raises(UserError, match=r"shard 'showers.r1.h5' of this virtual dataset is missing"):
        open_calo(out)


def test_calochallenge_export_is_mev_and_layer_major(calo_file, tmp_path):
    dst = export_calochallenge(calo_file, tmp_path / "cc.h5")
    with h5py.File(dst, "r") as h5, open_calo(calo_file) as cf:
        inc, showers = h5["incident_energies"][...], h5["showers"][...]
        assert inc.shape == (12, 1) and showers.shape == (12, 25 ** 3)
        np.testing.assert_allclose(inc[:, 0], cf.energy_gev * 1e3, rtol=1e-6)
        ecal = cf.ecal[...]
        # voxel index (k * nx + i) * ny + j  ↔  ECAL[i, j, k]
        i, j, k = 3, 17, 21
        np.testing.assert_allclose(showers[:, (k * 25 + i) * 25 + j], ecal[:, i, j, k] * 1e3, rtol=1e-6)
        np.testing.assert_allclose(showers.sum(axis=1), ecal.sum(axis=(1, 2, 3)) * 1e3, rtol=1e-4)
    assert to_calochallenge(ecal[:2], cf_energy := np.ones(2))["showers"].dtype == np.float32 and cf_energy.size == 2
