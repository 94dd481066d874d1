"""Autograd and fake (meta) kernels of the compiled ``hpcgen::`` ops, registered from Python once the library loads.

This is the registration path of pytorch/extension-cpp: the schema and device kernels live in C++ (csrc/), the shape
functions and the power-spectrum binning's gradient formula here, so the ops work under autograd, ``torch.compile``
and ``torch.library.opcheck``. ``ecal_moments`` has its autograd in C++ (csrc/ecal_moments_autograd.cpp): at 3DGAN
batch sizes the Python wrapper cost as much as the kernels. Each backward is itself a compiled op (one read of the
input, one write of its gradient); gradients are first order only.
"""

from __future__ import annotations

import torch


def _acc(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _ecal_fake(x, power):
    b, nx, ny, nz = x.shape
    acc = _acc(x.dtype)
    return (x.new_empty(b, dtype=acc), x.new_empty(b, nx, dtype=acc), x.new_empty(b, ny, dtype=acc),
            x.new_empty(b, nz, dtype=acc), x.new_empty(b, 3, dtype=acc), x.new_empty(b, 3, dtype=acc))


def _ecal_backward_fake(x, power, total, mean, var, g_total, g_px, g_py, g_pz, g_mean, g_var):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _bin_fake(spectrum, factor, bin_index, order, offsets):
    nb = offsets.shape[0] - 1
    return spectrum.new_empty(spectrum.shape[0], nb), spectrum.new_empty(nb), spectrum.new_empty(nb)


def _bin_backward_fake(spectrum, factor, bin_index, cl, g_cl, g_sum_cl, g_sum_cl2):
    return torch.empty_like(spectrum, memory_format=torch.contiguous_format)


def _bin_setup(ctx, inputs, output):
    spectrum, factor, bin_index, _, _ = inputs
    ctx.save_for_backward(spectrum, factor, bin_index, output[0])


def _bin_backward(ctx, g_cl, g_sum_cl, g_sum_cl2):
    spectrum, factor, bin_index, cl = ctx.saved_tensors
    nb = cl.shape[1]

    def grad(g, *shape):
        return torch.zeros(shape, dtype=cl.dtype, device=cl.device) if g is None else g

    g_spectrum = torch.ops.hpcgen.radial_power_bin_backward(
        spectrum, factor, bin_index, cl, grad(g_cl, cl.shape[0], nb), grad(g_sum_cl, nb), grad(g_sum_cl2, nb))
    return g_spectrum, None, None, None, None


def register() -> None:
    """Register fake and autograd kernels for the ops the library defined (called once, by library.load)."""
    torch.library.register_fake("hpcgen::ecal_moments", _ecal_fake)
    torch.library.register_fake("hpcgen::ecal_moments_backward", _ecal_backward_fake)
    torch.library.register_fake("hpcgen::radial_power_bin", _bin_fake)
    torch.library.register_fake("hpcgen::radial_power_bin_backward", _bin_backward_fake)
    torch.library.register_autograd("hpcgen::radial_power_bin", _bin_backward, setup_context=_bin_setup)
