"""Loads hpcgen's compiled fused-op library once per process and says which kernels it holds.

The library (``hpcgen/ops/_hpcgen_ops.so``, built by the top-level CMakeLists.txt through ``make ops``) defines the
``hpcgen::`` ops with ``TORCH_LIBRARY`` and their CPU (and, in a CUDA build, CUDA) kernels. Loading it also registers
the ops' autograd and fake kernels (:mod:`hpcgen.ops.registrations`). If it is missing or was built against another
torch, the first use warns once and every ``impl="auto"`` call runs the pure-torch reference twins instead.
``HPCGEN_OPS_LIBRARY`` points at another build of the library.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import torch

LIBRARY_ENV = "HPCGEN_OPS_LIBRARY"
DEFAULT_LIBRARY = Path(__file__).with_name("_hpcgen_ops.so")
OPS = ("ecal_moments", "ecal_moments_backward", "radial_power_bin", "radial_power_bin_backward")


def library_path() -> Path:
    return Path(os.environ.get(LIBRARY_ENV) or DEFAULT_LIBRARY)


@functools.cache
def load() -> str | None:
    """Load the library (first call only). Returns None when it is live, else why not — warned once."""
    path = library_path()
    if not path.is_file():
        reason = f"{path} is not built (run `make ops`)"
    else:
        try:
            torch.ops.load_library(str(path))
        except (OSError, RuntimeError) as exc:
            reason = f"{path} failed to load: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        else:
            from hpcgen.ops import registrations

            registrations.register()
            return None
    warnings.warn(f"hpcgen fused ops unavailable: {reason}; using the pure-torch reference kernels",
                  RuntimeWarning, stacklevel=3)
    return reason


@functools.cache
def has_kernels(device_type: str) -> bool:
    """Whether the loaded library has kernels for every op on ``device_type`` ("cpu" or "cuda")."""
    if load() is not None:
        return False
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    return key is not None and all(torch._C._dispatch_has_kernel_for_dispatch_key(f"hpcgen::{op}", key) for op in OPS)


def status() -> str:
    """One line for ``hpcgen info``: which implementation ``impl="auto"`` runs on each device."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reason = load()
    if reason is not None:
        return f"reference (pure torch): {reason}"
    devices = [d for d in ("cpu", "cuda") if has_kernels(d)]
    return f"compiled ({', '.join(devices)}) from {library_path()}; reference elsewhere"
