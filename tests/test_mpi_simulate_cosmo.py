"""`hpcgen simulate cosmo` over real Open MPI: sharded κ maps, reproducibility, one-line errors before work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from hpcgen.data.cosmo_file import open_cosmo

from conftest import mpirun_cmd, run_cli


def _simulate(tmp: Path, name: str, generator: str, seed: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = mpirun_cmd(2, "simulate", "cosmo", "--generator", generator, "--n", "3", "--seed", str(seed),
                     "--out", str(tmp / name), *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.mpi
@pytest.mark.parametrize("generator, extra", [
    ("lognormal", ["--pixels", "64"]),
    ("pm", ["--pixels", "32", "--field-deg", "2", "--particles", "32", "--steps", "5"]),
])
def test_two_ranks_write_reproducible_convergence_maps(tmp_path, generator, extra):
    for name, seed in (("a.h5", 4), ("b.h5", 4), ("c.h5", 5)):
        res = _simulate(tmp_path, name, generator, seed, *extra)
        assert res.returncode == 0, res.stderr[-3000:]
    maps = {}
    for name in ("a.h5", "b.h5", "c.h5"):
        with open_cosmo(tmp_path / name) as f:
            assert len(f) == 3 and f.attrs["generator"] == generator and f.attrs["world_size"] == 2
            maps[name] = f.kappa[...]
    np.testing.assert_array_equal(maps["a.h5"], maps["b.h5"])
    assert not np.array_equal(maps["a.h5"], maps["c.h5"])
    assert np.isfinite(maps["a.h5"]).all() and 0.001 < maps["a.h5"].std() < 0.2
    assert (tmp_path / "a.r0.h5").exists() and (tmp_path / "a.r1.h5").exists()


@pytest.mark.parametrize("args, words", [
    (["--generator", "nbody"], "--generator: expected one of pm, lognormal"),
    (["--generator", "lognormal", "--pixels", "-4"], "--pixels"),
    (["--generator", "lognormal", "--z-source", "0"], "--z-source"),
    (["--generator", "lognormal", "--field-deg", "-1"], "--field-deg"),
    (["--generator", "lognormal", "--sigma8", "5"], "sigma8"),
    (["--generator", "pm", "--particles", "-8"], "particles"),
    (["--generator", "pm", "--particles", "64", "--mesh", "32"], "mesh"),
    (["--generator", "pm", "--box-mpc", "100", "--field-deg", "3.5"], "box"),
])
def test_bad_cosmo_parameters_are_one_line_before_any_work(tmp_path, args, words):
    res = run_cli("simulate", "cosmo", "--n", "2", "--out", str(tmp_path / "m.h5"), *args)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert not list(tmp_path.iterdir())
