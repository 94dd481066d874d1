"""Shared fixtures: small synthetic calorimeter files and a helper to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpcgen.data.calo_file import calo_attrs, write_calo_file
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY

VENV_BIN = Path(sys.executable).parent


def hpcgen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpcgen.cli", *args]


def run_cli(*args: str, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1")
    return subprocess.run(hpcgen_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


def mpirun_cmd(n: int, *args: str) -> list[str]:
    mpirun = str(VENV_BIN / "mpirun") if (VENV_BIN / "mpirun").exists() else "mpirun"
    return [mpirun, "-n", str(n), "--oversubscribe", "--allow-run-as-root", "-x", "OMP_NUM_THREADS=1",
            "-x", "HPCGEN_NO_PROGRESS=1", *hpcgen_cmd(*args)]


def synthetic_ecal(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ecal = rng.exponential(1e-3, size=(n, *DEFAULT_GEOMETRY.shape)).astype(np.float32)
    energy = rng.uniform(10, 100, size=n).astype(np.float32)
    return ecal, energy


@pytest.fixture
def calo_file(tmp_path: Path) -> Path:
    ecal, energy = synthetic_ecal(12)
    return write_calo_file(tmp_path / "synthetic.h5", ecal, energy, calo_attrs("test", DEFAULT_GEOMETRY, seed=1))
