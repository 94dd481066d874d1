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


SMALL_GEOMETRY_KW = dict(n_layers=8, n_cells_xy=8)  # 8×8×8 cells: 30× cheaper than 25³ for training tests


def write_small_calo(path: Path, n: int = 16, seed: int = 0) -> Path:
    """Real (GFlash) showers in a small 8×8×8 calorimeter, so GAN training tests take seconds."""
    from hpcgen.physics.calo_geometry import SamplingCalorimeter
    from hpcgen.seeding import stream
    from hpcgen.sim.calo_gflash import simulate_gflash

    geo = SamplingCalorimeter(**SMALL_GEOMETRY_KW)
    rng = stream(seed, 0)
    energies = rng.uniform(10, 100, n)
    showers = simulate_gflash(energies, geo, rng)
    return write_calo_file(path, showers.ecal_gev, energies.astype(np.float32), calo_attrs("gflash", geo, seed))


def write_small_cosmo(path: Path, n: int = 16, size: int = 32, seed: int = 0) -> Path:
    """Gaussian κ maps (σ 0.017, clipped at the empty-beam bound) — stand-ins for training-loop tests only."""
    from hpcgen.data.cosmo_file import COSMOGAN_COSMOLOGY, cosmo_attrs, write_cosmo_file

    rng = np.random.default_rng(seed)
    kappa = np.clip(rng.normal(0.0, 0.017, size=(n, size, size)), -0.059, None).astype(np.float32)
    return write_cosmo_file(path, kappa, cosmo_attrs("test-gaussian", COSMOGAN_COSMOLOGY, 1.0, 3.5, size, seed))


@pytest.fixture
def one_torch_thread():
    """Tiny torch work (PM steps, small GANs) is dominated by thread hand-offs on a shared machine: use one thread."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def skip_or_fail(require_var: str, reason: str) -> None:
    """Skip with ``reason``, or fail when ``require_var`` is set (not empty, not 0): CI sets it for every real
    component it provides (HPCGEN_REQUIRE_OPS, _HOROVOD, _SLURM), so a missing one can never pass as a skip."""
    if os.environ.get(require_var, "") not in ("", "0"):
        pytest.fail(f"{require_var} is set but {reason}")
    pytest.skip(f"{reason}; {require_var}=1 turns this skip into a failure")


def require_ops() -> None:
    """Skip when the compiled fused-op library is not live, unless HPCGEN_REQUIRE_OPS is set: then fail."""
    from hpcgen.ops import library

    if not library.has_kernels("cpu"):
        skip_or_fail("HPCGEN_REQUIRE_OPS",
                     f"the compiled fused-op library is not live ({library.status()}); `make ops` builds it")


def require_horovod() -> None:
    """Skip when Horovod is not built here, unless HPCGEN_REQUIRE_HOROVOD is set: then fail."""
    try:
        import horovod.torch  # noqa: F401
    except Exception as exc:  # a broken build fails with OSError/undefined symbols, not only ImportError
        skip_or_fail("HPCGEN_REQUIRE_HOROVOD",
                     f"`import horovod.torch` failed ({exc}); `make horovod` builds Horovod")
