"""Parallel generation under real Open MPI (mpirun -n 2): shards, virtual merge, reproducibility, failure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpcgen.data.calo_file import open_calo
from hpcgen.data.sharded import shard_path

from conftest import mpirun_cmd

pytestmark = pytest.mark.mpi


def mpirun_simulate(tmp: Path, name: str, *extra: str, n: int = 11, generator: str = "gflash", seed: int = 7,
                    energies: str = "10,50,100", np_: int = 2) -> subprocess.CompletedProcess:
    cmd = mpirun_cmd(np_, "simulate", "calo", "--generator", generator, "--n", str(n), "--energy-gev", energies,
                     "--seed", str(seed), "--out", str(tmp / name), *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def read_all(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open_calo(path) as cf:
        return cf.ecal[...], cf.energy_gev.copy()


def test_two_ranks_write_shards_and_a_virtual_union(tmp_path):
    res = mpirun_simulate(tmp_path, "g.h5")
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "g.h5"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.h5", "g.r0.h5", "g.r1.h5"]  # no temporaries left
    with h5py.File(out, "r") as h5:
        assert h5["ECAL"].is_virtual and h5.attrs["world_size"] == 2
    shards = [read_all(shard_path(out, r)) for r in (0, 1)]
    assert [len(s[1]) for s in shards] == [6, 5]  # 11 showers: rank 0 takes the extra one
    ecal, energy = read_all(out)
    np.testing.assert_array_equal(ecal, np.concatenate([s[0] for s in shards]))
    np.testing.assert_array_equal(energy, np.tile([10, 50, 100], 4)[:11])  # round-robin over global index
    assert (ecal.sum(axis=(1, 2, 3)) > 0).all()
    # the two ranks used different random streams: same-energy showers differ
    assert not np.array_equal(ecal[0], ecal[6 if energy[6] == energy[0] else 9])


def test_same_seed_and_rank_count_reproduce_identical_content(tmp_path):
    for name, seed in (("a.h5", 7), ("b.h5", 7), ("c.h5", 8)):
        assert mpirun_simulate(tmp_path, name, seed=seed).returncode == 0
    a, b, c = (read_all(tmp_path / f) for f in ("a.h5", "b.h5", "c.h5"))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_detailed_cascade_runs_under_mpirun(tmp_path):
    res = mpirun_simulate(tmp_path, "casc.h5", generator="cascade", n=4, energies="10")
    assert res.returncode == 0, res.stderr[-3000:]
    ecal, energy = read_all(tmp_path / "casc.h5")
    assert ecal.shape == (4, 25, 25, 25) and np.all(energy == 10)
    sf = ecal.sum(axis=(1, 2, 3)) / energy
    assert np.all((sf > 0.005) & (sf < 0.05))  # a percent-level sampling fraction, not zeros or garbage


def test_a_failing_rank_fails_the_command_without_hanging_or_final_files(tmp_path):
    # rank 1 cannot create its temporary shard (a directory is in the way): a real I/O failure on one rank
    (tmp_path / "f.r1.h5.tmp").mkdir()
    res = mpirun_simulate(tmp_path, "f.h5")
    assert res.returncode != 0
    assert "1 of 2 ranks failed" in res.stderr
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["f.r1.h5.tmp"], left  # nothing under a final name, rank 0 removed its temporary shard
