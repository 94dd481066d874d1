"""The fused-kernel face of hpcgen: the one place models, losses and validation call for the ops they share.

Each op is one public function with an ``impl=`` switch, after StyleGAN2-ADA's ``torch_utils/ops``: ``"ref"`` is the
pure-torch twin in :mod:`hpcgen.ops.reference`; ``"auto"`` takes the compiled library when it is loaded and the
reference otherwise. The compiled library (C++ CPU and CUDA kernels registered with ``TORCH_LIBRARY``, selected as
``impl="cpu"`` / ``"cuda"``) arrives with the fused-kernel issue; until then every call runs the reference. Models
call only this face, never the reference or the library directly, so swapping in the kernels changes no caller.
"""

from __future__ import annotations

import functools

import torch

from hpcgen.ops.reference import ecal_sum_ref

IMPLS = ("auto", "ref")


@functools.cache
def _compiled_library():
    """The loaded fused-op namespace, or None; loaded at most once per process. No library is built yet."""
    return None


def _resolve(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(repr(i) for i in IMPLS)}; got {impl!r}")
    if impl == "auto":
        return "ref" if _compiled_library() is None else "compiled"
    return impl


def ecal_sum(x: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Total visible energy per shower (the 3DGAN discriminator's analytic ECAL-sum head).

    Args:
        x: (B, X, Y, Z) floating-point cell energies, e.g. (B, 25, 25, 25) in GeV.
        impl: ``"auto"`` (compiled kernel when built, else the reference) or ``"ref"`` (pure torch).

    Returns:
        (B,) totals accumulated in float32 (float64 when ``x`` is float64). Differentiable: d out_b / d x_bijk = 1.
    """
    if _resolve(impl) == "ref":
        return ecal_sum_ref(x)
    raise NotImplementedError("the compiled ecal_sum kernel is not part of this build")  # pragma: no cover


def status() -> str:
    """One line for ``hpcgen info``: which implementation ``impl="auto"`` runs."""
    if _compiled_library() is None:
        return "reference (pure torch); compiled library not built"
    return "compiled library loaded"  # pragma: no cover - arrives with the fused-kernel issue


__all__ = ["IMPLS", "ecal_sum", "ecal_sum_ref", "status"]
