"""CLI and config: every bad input is one line naming the flag and what is allowed, exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen.config import EnergySpec
from hpcgen.errors import UserError
from hpcgen.seeding import stream

from conftest import run_cli


def test_energy_spec_forms():
    rng = np.random.default_rng(0)
    u = EnergySpec.parse("10:500").sample(0, 1000, rng)
    assert u.min() >= 10 and u.max() <= 500 and abs(np.median(u) - 255) < 30
    lg = EnergySpec.parse("log:10:1000").sample(0, 2000, rng)
    assert abs(np.median(np.log10(lg)) - 2.0) < 0.1 and abs(np.mean(np.log10(lg) < 1.5) - 0.25) < 0.05
    lst = EnergySpec.parse("10,100,500").sample(4, 6, rng)
    np.testing.assert_array_equal(lst, [100, 500, 10, 100, 500, 10])  # round-robin by global index


@pytest.mark.parametrize("text", ["500:10", "abc", "0:10", "log:5", "10,-1", "2000", "1:nan"])
def test_bad_energy_spec_names_the_flag(text):
    with pytest.raises(UserError, match="--energy-gev"):
        EnergySpec.parse(text)


def test_rank_streams_differ_and_repeat():
    a, b = stream(7, 0).random(4), stream(7, 1).random(4)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, stream(7, 0).random(4))


@pytest.mark.parametrize("args, words", [
    (["simulate", "calo", "--generator", "geant", "--n", "2", "--out", "x.h5"], "--generator: expected one of cascade, gflash"),
    (["simulate", "calo", "--generator", "gflash", "--n", "0", "--out", "x.h5"], "--n: expected"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "x.txt"], "--out: expected a file name ending in .h5"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "/no/such/dir/x.h5"], "does not exist"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "x.h5", "--seed", "-1"], "--seed"),
    (["simulate", "calo", "--generator", "gflash", "--n", "two", "--out", "x.h5"], "argument --n: invalid int value"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "x.h5", "--impact-jitter-mm", "-1"], "--impact-jitter-mm"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "x.h5", "--energy-gev", "3:1"], "--energy-gev"),
    (["simulate", "calo", "--generator", "cascade", "--n", "2", "--out", "x.h5", "--gflash-tune", "cascade"], "--gflash-tune: only applies to --generator gflash"),
    (["simulate", "calo", "--generator", "gflash", "--n", "2", "--out", "x.h5", "--gflash-tune", "best"], "--gflash-tune: expected one of literature, cascade"),
    (["simulate", "cosmos"], "invalid choice"),
    (["validate", "calo", "--ref", "a.h5", "--test", "b.h5", "--out", "d", "--max-showers", "-1"], "--max-showers"),
])
def test_bad_flags_give_one_line_and_exit_2(tmp_path, args, words):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert not list(tmp_path.glob("*.h5*"))


def test_existing_output_is_not_overwritten_without_flag(tmp_path, calo_file):
    before = calo_file.read_bytes()
    res = run_cli("simulate", "calo", "--generator", "gflash", "--n", "2", "--out", str(calo_file))
    assert res.returncode == 2 and "--overwrite" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert calo_file.read_bytes() == before


def test_info_reports_versions_and_capabilities():
    res = run_cli("info")
    assert res.returncode == 0, res.stderr
    for key in ("hpcgen", "torch", "numpy", "h5py", "mpi4py", "MPI library", "horovod", "fused ops", "GPU", "sbatch", "srun"):
        assert any(line.startswith(key) for line in res.stdout.splitlines()), key
    assert "Open MPI" in res.stdout or "MPICH" in res.stdout


def test_info_models_reports_parameters_and_flops_of_both_gans():
    res = run_cli("info", "--models")
    assert res.returncode == 0, res.stderr
    rows = {line.split("(")[0].strip(): line for line in res.stdout.splitlines() if line.startswith(("3DGAN", "CosmoGAN"))}
    assert "872,808" in rows["3DGAN"]  # generator parameters of the fixed-angle 3DGAN
    assert any("12,824,449" in line and "5.102 G" in line for line in res.stdout.splitlines())
