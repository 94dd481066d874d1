"""hpcgen.ops.ecal_moments (and ecal_sum): what the energy moments mean, checked on the reference twin; and what a
user without the compiled library gets (these run whether or not the library is built).

Kernel-vs-reference parity, opcheck and gradcheck of the compiled op are in tests/test_ops_kernels.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hpcgen import ops
from hpcgen.ops.ecal_moments import ecal_moments_ref


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ecal_sum_equals_the_sum_over_all_cells(impl, dtype):
    x = torch.rand(3, 25, 25, 25, dtype=dtype, generator=_gen())
    out = ops.ecal_sum(x, impl=impl)
    assert out.shape == (3,) and out.dtype == dtype
    torch.testing.assert_close(out, x.sum(dim=(1, 2, 3)))


@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_half_precision_inputs_accumulate_in_float32(impl):
    # 4096 cells of 1.0 in bfloat16: a bfloat16 accumulator would stall at 256 (8 mantissa bits).
    x = torch.ones(2, 16, 16, 16, dtype=torch.bfloat16)
    out = ops.ecal_moments(x, impl=impl)
    assert out.total.dtype == torch.float32
    assert out.total.tolist() == [4096.0, 4096.0]
    assert out.profile_z.tolist() == [[256.0] * 16] * 2


def test_ecal_sum_gradient_is_one_for_every_cell():
    x = torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ops.ecal_sum, (x,))
    ops.ecal_sum(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_profiles_are_the_marginal_sums_and_add_up_to_the_total():
    x = torch.rand(4, 5, 6, 7, dtype=torch.float64, generator=_gen(1))
    m = ecal_moments_ref(x)
    torch.testing.assert_close(m.profile_x, x.sum((2, 3)))
    torch.testing.assert_close(m.profile_y, x.sum((1, 3)))
    torch.testing.assert_close(m.profile_z, x.sum((1, 2)))
    for prof in (m.profile_x, m.profile_y, m.profile_z):
        torch.testing.assert_close(prof.sum(1), m.total)


def test_a_single_hot_cell_has_its_index_as_mean_and_zero_variance():
    x = torch.zeros(1, 25, 25, 25, dtype=torch.float64)
    x[0, 3, 12, 20] = 7.0
    m = ecal_moments_ref(x)
    assert m.mean_cells.tolist() == [[3.0, 12.0, 20.0]]
    assert m.var_cells2.tolist() == [[0.0, 0.0, 0.0]]


def test_two_equal_cells_have_the_midpoint_as_mean_and_half_the_gap_squared_as_variance():
    x = torch.zeros(1, 9, 9, 9, dtype=torch.float64)
    x[0, 2, 4, 4] = x[0, 8, 4, 4] = 1.0  # gap 6 along x: mean 5, variance 3² = 9
    m = ecal_moments_ref(x)
    torch.testing.assert_close(m.mean_cells, torch.tensor([[5.0, 4.0, 4.0]], dtype=torch.float64))
    torch.testing.assert_close(m.var_cells2, torch.tensor([[9.0, 0.0, 0.0]], dtype=torch.float64))


def test_power_raises_positive_cells_and_drops_the_rest():
    x = torch.tensor([[[[4.0, -1.0], [0.0, 9.0]]]], dtype=torch.float64)  # (1, 1, 2, 2)
    assert ecal_moments_ref(x, power=0.5).total.item() == pytest.approx(2.0 + 3.0)
    assert ecal_moments_ref(x, power=1.0).total.item() == pytest.approx(4.0 - 1.0 + 9.0)


def test_an_empty_shower_has_zero_moments_and_finite_gradients():
    x = torch.zeros(2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    m = ecal_moments_ref(x, power=0.8)
    assert m.mean_cells.abs().sum().item() == 0 and m.var_cells2.abs().sum().item() == 0
    (m.total.sum() + m.mean_cells.sum() + m.var_cells2.sum()).backward()
    assert bool(torch.isfinite(x.grad).all())


def test_reference_gradients_are_exact_in_float64():
    x = (torch.rand(2, 4, 5, 3, dtype=torch.float64, generator=_gen(2)) + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: tuple(ecal_moments_ref(t, 0.85)), (x,))


def test_rejects_an_unknown_impl_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="'auto'.*'ref'.*'cpu'.*'cuda'"):
        ops.ecal_sum(torch.zeros(1, 2, 2, 2), impl="gpu")


def test_cuda_impl_on_a_cpu_tensor_is_an_error_naming_the_device():
    with pytest.raises(ValueError, match="impl='cuda' runs on cuda tensors, got a tensor on cpu"):
        ops.ecal_moments(torch.zeros(1, 2, 2, 2), impl="cuda")


@pytest.mark.parametrize("x, match", [
    (torch.zeros(25, 25, 25), r"\(B, X, Y, Z\)"),
    (torch.zeros(1, 2, 2, 2, dtype=torch.int64), "floating point"),
])
def test_rejects_inputs_that_are_not_a_float_batch_of_3d_images(x, match):
    with pytest.raises(ValueError, match=match):
        ops.ecal_moments(x)


@pytest.mark.parametrize("power", [0.0, -1.0, float("nan"), float("inf"), "one"])
def test_rejects_a_power_that_is_not_a_positive_number(power):
    with pytest.raises(ValueError, match="power must be a finite number > 0"):
        ops.ecal_moments(torch.ones(1, 2, 2, 2), power=power)


def test_train_config_accepts_exactly_the_ops_impls():
    from hpcgen.config import OPS_IMPLS

    assert OPS_IMPLS == ops.IMPLS


def test_a_missing_library_warns_once_and_falls_back_to_the_reference():
    code = (
        "import warnings, torch\n"
        "from hpcgen import ops\n"
        "x = torch.rand(2, 5, 5, 5, dtype=torch.float64)\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = ops.ecal_moments(x); b = ops.ecal_moments(x); ops.radial_power_spectrum(torch.rand(1, 8, 8), 1e-3)\n"
        "print(len([m for m in w if 'fused ops unavailable' in str(m.message)]))\n"
        "print(bool(torch.allclose(a.total, x.sum((1, 2, 3)), rtol=1e-12)))\n"
        "print(ops.status())\n"
        "try:\n"
        "    ops.ecal_moments(x, impl='cpu')\n"
        "except RuntimeError as e:\n"
        "    print('error:', e)\n"
    )
    env = {**os.environ, "HPCGEN_OPS_LIBRARY": "/nonexistent/_hpcgen_ops.so"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "1" and lines[1] == "True"
    assert lines[2].startswith("reference (pure torch): /nonexistent/_hpcgen_ops.so is not built")
    assert lines[3].startswith("error: impl='cpu' needs the compiled cpu kernels") and "make ops" in lines[3]


def test_build_without_a_compiler_warns_and_leaves_the_reference_path(tmp_path):
    # A PATH holding only `dirname`: no cmake, no c++. The build must not fail the setup.
    (tmp_path / "dirname").symlink_to(shutil.which("dirname"))
    script = Path(__file__).resolve().parent.parent / "scripts" / "build-ops.sh"
    res = subprocess.run(["/bin/bash", str(script)], env={"PATH": str(tmp_path), "VENV": "/nonexistent"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "cmake and a C++ compiler (c++) not found" in res.stderr and "pure-torch reference" in res.stderr
