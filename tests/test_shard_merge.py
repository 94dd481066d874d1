"""`simulate --shard K/M` (one Slurm array task each) and `hpcgen merge`: the shards of M single processes merge
into exactly the file an M-rank MPI run writes; bad shard sets are refused with one line."""

from __future__ import annotations

import subprocess

import h5py
import numpy as np
import pytest

from hpcgen.data.sharded import ShardSlot, merge_shards
from hpcgen.errors import UserError

from conftest import mpirun_cmd, run_cli

SIM = ("simulate", "calo", "--generator", "gflash", "--n", "11", "--seed", "5", "--energy-gev", "20:80")


def _shards(out, count, *extra):
    for k in range(count):
        res = run_cli(*SIM, *extra, "--out", str(out), "--shard", f"{k}/{count}")
        assert res.returncode == 0, res.stderr
        assert f"shard {k} of {count}" in res.stdout


@pytest.mark.mpi
def test_array_shards_merge_to_the_mpi_run_bit_for_bit(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _shards(tmp_path / "a" / "s.h5", 3)
    assert not (tmp_path / "a" / "s.h5").exists()  # a shard task never merges
    res = run_cli("merge", str(tmp_path / "a" / "s.h5"), "--shards", "3")
    assert res.returncode == 0, res.stderr
    mpi = subprocess.run(mpirun_cmd(3, *SIM, "--out", str(tmp_path / "b" / "s.h5")), capture_output=True, text=True,
                         timeout=300)
    assert mpi.returncode == 0, mpi.stderr
    with h5py.File(tmp_path / "a" / "s.h5") as a, h5py.File(tmp_path / "b" / "s.h5") as b:
        for name in ("ECAL", "energy"):
            assert np.array_equal(a[name][:], b[name][:])
        assert a[name].is_virtual and list(a.attrs["shard_counts"]) == [4, 4, 3]
        for key in ("schema", "generator", "seed", "world_size"):
            assert str(a.attrs[key]) == str(b.attrs[key])


def test_shard_slots_parse_and_refuse_nonsense():
    assert ShardSlot.parse("2/5") == ShardSlot(2, 5)
    for bad in ("5/5", "-1/3", "a/b", "3", "1/0"):
        with pytest.raises(UserError, match="--shard: expected INDEX/COUNT"):
            ShardSlot.parse(bad)


def test_merge_refuses_incomplete_or_mixed_shards(tmp_path):
    out = tmp_path / "s.h5"
    _shards(out, 2)
    with pytest.raises(UserError, match=r"1 of 3 shards are missing, first .*s.r2.h5"):
        merge_shards(out, 3)
    merge_shards(out, 2)
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        merge_shards(out, 2)
    res = run_cli(*SIM[:-4], "--seed", "6", "--energy-gev", "20:80", "--out", str(out), "--shard", "1/2",
                  "--overwrite")
    assert res.returncode == 0, res.stderr
    with pytest.raises(UserError, match="has seed=6 but shard 0 has 5"):
        merge_shards(out, 2, overwrite=True)


def test_an_existing_shard_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "s.h5"
    _shards(out, 1)
    again = run_cli(*SIM, "--out", str(out), "--shard", "0/1")
    assert again.returncode == 2 and "s.r0.h5 already exists; pass --overwrite" in again.stderr


@pytest.mark.mpi
def test_a_shard_is_one_process(tmp_path):
    res = subprocess.run(mpirun_cmd(2, *SIM, "--out", str(tmp_path / "s.h5"), "--shard", "0/2"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--shard: one process writes one shard, but 2 MPI ranks" in res.stderr
