"""hpcgen.ops: the public face of the fused ops and its pure-torch reference twin."""

from __future__ import annotations

import pytest
import torch

from hpcgen import ops
from hpcgen.ops.reference import ecal_sum_ref


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ecal_sum_equals_the_sum_over_all_cells(impl, dtype):
    x = torch.rand(3, 25, 25, 25, dtype=dtype, generator=torch.Generator().manual_seed(0))
    out = ops.ecal_sum(x, impl=impl)
    assert out.shape == (3,) and out.dtype == dtype
    torch.testing.assert_close(out, x.sum(dim=(1, 2, 3)))


def test_ecal_sum_accumulates_half_precision_inputs_in_float32():
    # 4096 cells of 1.0 in bfloat16: a bfloat16 accumulator would stall at 256 (8 mantissa bits).
    x = torch.ones(2, 16, 16, 16, dtype=torch.bfloat16)
    out = ops.ecal_sum(x)
    assert out.dtype == torch.float32
    assert out.tolist() == [4096.0, 4096.0]


def test_ecal_sum_gradient_is_one_for_every_cell():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops.ecal_sum, (x,))
    ops.ecal_sum(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_ecal_sum_rejects_an_unknown_impl_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'auto'.*'ref'.*'cuda'"):
        ops.ecal_sum(torch.zeros(1, 2, 2, 2), impl="cuda")


def test_ecal_sum_rejects_inputs_that_are_not_a_float_batch_of_3d_images():
    with pytest.raises(ValueError, match=r"\(B, X, Y, Z\)"):
        ecal_sum_ref(torch.zeros(25, 25, 25))
    with pytest.raises(ValueError, match="floating-point"):
        ecal_sum_ref(torch.zeros(1, 2, 2, 2, dtype=torch.int64))


def test_status_reports_the_reference_while_no_library_is_built():
    assert ops.status() == "reference (pure torch); compiled library not built"
