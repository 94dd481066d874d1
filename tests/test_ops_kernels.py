"""The compiled fused ops (csrc/, `make ops`) against their pure-torch reference twins.

Tolerances, Liger-Kernel style, by dtype of the input: float64 1e-12 (rounding of a different summation order);
float32 rtol 1e-5 / atol 1e-5 × the output's scale; bfloat16 inputs are read exactly and accumulated in float32
by both paths, so outputs meet the float32 tolerance while dx (stored in bfloat16) may differ by one bf16 ulp
(rtol 1.6e-2). Every compiled-op test skips when the library is not built, and fails instead under
HPCGEN_REQUIRE_OPS=1 (CI). CUDA variants run only where a GPU is present (see the closing notes for what was run).
"""

from __future__ import annotations

import pytest
import torch

from hpcgen import ops
from hpcgen.models.gan3d import Discriminator3D
from hpcgen.ops.ecal_moments import ecal_moments_ref
from hpcgen.ops.power_spectrum import _kernel_tables, radial_power_spectrum_ref, spectrum_bins
from hpcgen.train.spectral_loss import spectral_edges, spectral_loss
from tests.conftest import require_ops

PIXEL_RAD = 1e-3
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _library():
    require_ops()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _tol(dtype):
    return {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-5}


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "non-contiguous":  # a strided view: every other sample of a larger batch, last two axes swapped
        y = torch.cat([x, x]).reshape(2, *x.shape).transpose(0, 1)[:, 0]
        return y.transpose(2, 3).contiguous().transpose(2, 3)
    if layout == "channels-last":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def _assert_moments_close(a, b, dtype):
    for name, u, v in zip(a._fields, a, b):
        scale = max(1.0, float(v.detach().abs().max())) if v.numel() else 1.0
        tol = _tol(dtype)
        torch.testing.assert_close(u, v, rtol=tol["rtol"], atol=tol["atol"] * scale, msg=lambda m, n=name: f"{n}: {m}")


ECAL_SHAPES = [(1, 25, 25, 25), (16, 25, 25, 25), (3, 7, 5, 9), (2, 1, 1, 1)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", ECAL_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "non-contiguous", "channels-last"])
@pytest.mark.parametrize("power", [1.0, 0.85])
def test_ecal_moments_kernel_matches_reference_forward_and_backward(device, shape, dtype, layout, power):
    x0 = torch.rand(shape, generator=_gen(1)) * 2.0 - 0.2  # a few negative cells: the power rule drops them
    x = _layout(x0.to(dtype).to(device), layout)
    xr, xk = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    ref = ecal_moments_ref(xr, power)
    out = ops.ecal_moments(xk, power, impl=device)
    _assert_moments_close(out, ref, dtype)
    grads = [torch.randn(t.shape, generator=_gen(2), dtype=t.dtype).to(device) for t in ref]
    torch.autograd.backward(tuple(ref), grads)
    torch.autograd.backward(tuple(out), grads)
    assert xk.grad.dtype == dtype and xk.grad.shape == x.shape
    if dtype == torch.bfloat16:
        torch.testing.assert_close(xk.grad.float(), xr.grad.float(), rtol=1.6e-2, atol=1e-5 * float(xr.grad.abs().max().float()))
    else:
        tol = _tol(dtype)
        torch.testing.assert_close(xk.grad, xr.grad, rtol=tol["rtol"], atol=tol["atol"] * max(1.0, float(xr.grad.abs().max())))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("power", [1.0, 0.85])
def test_ecal_moments_kernel_gradcheck_float64(device, power):
    x = (torch.rand(2, 4, 5, 3, dtype=torch.float64, generator=_gen(3)) + 0.1).to(device).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: tuple(ops.ecal_moments(t, power, impl=device)), (x,))


@pytest.mark.parametrize("power", [0.5, 0.85, 1.7])
def test_ecal_moments_power_path_is_accurate_over_the_calorimeter_energy_range(power):
    # Each cell its own z-profile bin (X = Y = 1), so profile_z is the kernel's x^p cell by cell.
    x = torch.logspace(-8, 5, 20001, dtype=torch.float64)
    got = ops.ecal_moments(x.float().reshape(1, 1, 1, -1), power, impl="cpu").profile_z[0].double()
    exact = x.float().double().pow(power)
    assert float(((got - exact).abs() / exact).max()) < 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_ecal_moments_passes_opcheck(device):
    x = (torch.rand(3, 6, 5, 4, generator=_gen(4)) + 0.1).to(device).requires_grad_()
    for power in (1.0, 0.85):
        torch.library.opcheck(torch.ops.hpcgen.ecal_moments.default, (x, power))
    g = [torch.ones(s, device=device) for s in ((3,), (3, 6), (3, 5), (3, 4), (3, 3), (3, 3))]
    out = torch.ops.hpcgen.ecal_moments(x.detach(), 0.85)
    torch.library.opcheck(torch.ops.hpcgen.ecal_moments_backward.default,
                          (x.detach(), 0.85, out[0], out[4], out[5], *g))


@pytest.mark.parametrize("device", DEVICES)
def test_ecal_moments_kernel_is_bitwise_reproducible_on_any_thread_count(device):
    x = torch.rand(16, 25, 25, 25, generator=_gen(5)).to(device).requires_grad_()
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (threads, 1, threads):
            torch.set_num_threads(n)
            out = ops.ecal_moments(x, 0.85, impl=device)
            (dx,) = torch.autograd.grad(out.total.sum() + out.var_cells2.sum(), x)
            results.append((*out, dx))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other))


def _maps(shape, dtype, device, layout, seed=6):
    m = torch.randn(shape, generator=_gen(seed), dtype=torch.float64).to(dtype).to(device)
    return m.transpose(1, 2).contiguous().transpose(1, 2) if layout == "non-contiguous" else m


SPECTRUM_CASES = [((1, 16, 16), 20), ((4, 33, 33), 8), ((8, 64, 64), "edges"), ((3, 32, 32), "linear")]


def _bins(case, n):
    if case == "edges":  # explicit edges, one of them holding no mode
        return {"bins": [10.0, 100.0, 100.5, 1000.0, 3000.0]}
    if case == "linear":
        return {"bins": 6, "log_bins": False}
    return {"bins": case}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape, bins", SPECTRUM_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "non-contiguous"])
def test_power_spectrum_kernel_matches_reference_forward_and_backward(device, shape, bins, dtype, layout):
    maps = _maps(shape, dtype, device, layout)
    mr, mk = maps.detach().clone().requires_grad_(), maps.detach().clone().requires_grad_()
    kw = _bins(bins, shape[-1])
    ref = radial_power_spectrum_ref(mr, PIXEL_RAD, **kw)
    out = ops.radial_power_spectrum(mk, PIXEL_RAD, impl=device, **kw)
    tol = _tol(torch.float64 if dtype == torch.float64 else torch.float32)
    for name, u, v in zip(ref._fields, out, ref):
        scale = max(float(v.detach().abs().max()), 1e-30) if v.is_floating_point() else 1
        torch.testing.assert_close(u, v, rtol=tol["rtol"], atol=tol["atol"] * scale, msg=lambda m, n=name: f"{n}: {m}")
    g = [torch.randn(t.shape, generator=_gen(7), dtype=t.dtype).to(device) for t in (ref.cl, ref.sum_cl, ref.sum_cl2)]
    torch.autograd.backward((ref.cl, ref.sum_cl, ref.sum_cl2), g)
    torch.autograd.backward((out.cl, out.sum_cl, out.sum_cl2), g)
    gtol = {"rtol": 1.6e-2, "atol": 1e-4} if dtype == torch.bfloat16 else tol
    torch.testing.assert_close(mk.grad.float(), mr.grad.float(), rtol=gtol["rtol"],
                               atol=gtol["atol"] * float(mr.grad.abs().max()))


@pytest.mark.parametrize("device", DEVICES)
def test_power_spectrum_kernel_gradcheck_float64(device):
    maps = torch.randn(3, 12, 12, dtype=torch.float64, generator=_gen(8)).to(device).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda m: tuple(ops.radial_power_spectrum(m, PIXEL_RAD, bins=4, impl=device)[i] for i in (2, 4, 5)), (maps,))


@pytest.mark.parametrize("device", DEVICES)
def test_radial_power_bin_passes_opcheck(device):
    n = 16
    edges, *_ = spectrum_bins(n, PIXEL_RAD, 5)
    factor, bin_index, order, offsets = _kernel_tables(n, PIXEL_RAD, tuple(edges.tolist()), torch.float32, torch.device(device))
    spectrum = torch.randn(3, factor.numel(), 2, generator=_gen(9)).to(device).requires_grad_()
    torch.library.opcheck(torch.ops.hpcgen.radial_power_bin.default, (spectrum, factor, bin_index, order, offsets))
    cl, s1, s2 = torch.ops.hpcgen.radial_power_bin(spectrum.detach(), factor, bin_index, order, offsets)
    torch.library.opcheck(torch.ops.hpcgen.radial_power_bin_backward.default,
                          (spectrum.detach(), factor, bin_index, cl, torch.ones_like(cl), torch.ones_like(s1), torch.ones_like(s2)))


@pytest.mark.parametrize("device", DEVICES)
def test_power_spectrum_kernel_is_bitwise_reproducible(device):
    maps = torch.randn(8, 64, 64, generator=_gen(10)).to(device).requires_grad_()
    runs = []
    for _ in range(2):
        ps = ops.radial_power_spectrum(maps, PIXEL_RAD, impl=device)
        (g,) = torch.autograd.grad(ps.cl.sum() + ps.sum_cl2.sum(), maps)
        runs.append((ps.cl, ps.sum_cl, ps.sum_cl2, g))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (scripts/gpu-check.sh runs it)")
def test_cuda_kernels_are_correct_under_cuda_graphs():
    # mode="reduce-overhead" captures a CUDA graph: a kernel launched on the default stream instead of torch's
    # current one would read stale memory on replay (pytorch#157363).
    x = torch.rand(64, 25, 25, 25, generator=_gen(14)).cuda()
    maps = torch.randn(16, 64, 64, generator=_gen(15)).cuda()
    ecal = torch.compile(lambda t: ops.ecal_moments(t, 0.85, impl="cuda").var_cells2, mode="reduce-overhead")
    spectrum = torch.compile(lambda m: ops.radial_power_spectrum(m, PIXEL_RAD, impl="cuda").sum_cl2, mode="reduce-overhead")
    for step in range(4):  # warm-up, capture, then replays on fresh inputs
        x.uniform_()
        maps.normal_()
        torch.testing.assert_close(ecal(x), ecal_moments_ref(x, 0.85).var_cells2, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(spectrum(maps), radial_power_spectrum_ref(maps, PIXEL_RAD).sum_cl2, rtol=1e-5, atol=0)


def test_3dgan_discriminator_gives_the_same_outputs_and_gradients_with_ref_and_cpu_ops():
    torch.manual_seed(0)
    d = Discriminator3D(dropout=0.0).eval()
    x = torch.rand(4, 25, 25, 25, generator=_gen(11)) * 3.0
    energy = torch.tensor([10.0, 50.0, 100.0, 200.0])
    results = {}
    for impl in ("ref", "cpu"):
        d.zero_grad()
        d.ops_impl = impl
        xi = x.clone().requires_grad_()
        logit, e_pred, ecal = d(xi)
        # the 3DGAN loss terms: BCE + MAPE on E_p + MAPE on the ECAL sum (sampling fraction 1 for the test)
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
                + ((e_pred - energy) / energy).abs().mean() + ((ecal - energy) / energy).abs().mean())
        loss.backward()
        results[impl] = (loss.detach(), ecal.detach(), xi.grad, [p.grad.clone() for p in d.parameters()])
    (l_r, e_r, gx_r, gp_r), (l_c, e_c, gx_c, gp_c) = results["ref"], results["cpu"]
    torch.testing.assert_close(l_c, l_r, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(e_c, e_r, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(gx_c, gx_r, rtol=1e-5, atol=1e-7)
    for a, b in zip(gp_c, gp_r):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_cosmogan_spectral_loss_gives_the_same_value_and_gradient_with_ref_and_cpu_ops():
    fake = torch.rand(6, 64, 64, generator=_gen(12))
    real = torch.rand(6, 64, 64, generator=_gen(13)) * 1.1
    edges = spectral_edges(64, PIXEL_RAD)
    out = {}
    for impl in ("ref", "cpu"):
        f = fake.clone().requires_grad_()
        loss = spectral_loss(f, real, PIXEL_RAD, edges, lambda t: t, impl=impl)
        loss.backward()
        out[impl] = (loss.detach(), f.grad)
    torch.testing.assert_close(out["cpu"][0], out["ref"][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out["cpu"][1], out["ref"][1], rtol=1e-5, atol=1e-5 * float(out["ref"][1].abs().max()))


def test_auto_runs_the_compiled_kernel_when_it_is_built():
    assert "compiled (cpu" in ops.status()
    x = torch.rand(2, 3, 4, 5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        ops.ecal_moments(x)
    assert any(e.name == "hpcgen::ecal_moments" for e in prof.events())


@pytest.mark.parametrize("case", ["ecal power=1", "ecal power=0.85", "spectrum binning only"])
def test_kernel_benchmark_reports_each_implementations_gradient_against_eager(case):
    """The gradient-agreement column of `hpcgen bench kernels` is small for the fused op (each case's own gradient
    layout included) and large for an implementation with a wrong gradient."""
    from hpcgen.bench.kernels import ecal_cases, gradient_agreement, spectrum_cases

    cpu = torch.device("cpu")
    if case.startswith("ecal"):
        arg, cases, _ = ecal_cases(2, cpu, 1.0 if case.endswith("=1") else 0.85)
    else:
        arg, cases, _ = spectrum_cases(2, cpu, binning_only=True)
    del cases["torch.compile"]  # compiling is the slow part; its column is computed the same way

    def wrong():
        (arg.abs() * 3.0).sum().backward()

    diffs = gradient_agreement(arg, {**cases, "wrong": wrong})
    assert set(diffs) == {"fused", "wrong"}
    assert diffs["fused"] < 1e-5
    assert diffs["wrong"] > 0.1
