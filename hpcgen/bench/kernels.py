"""Fused-op speed: the compiled kernels vs the eager pure-torch reference vs torch.compile(reference), fwd + bwd.

Ops (hpcgen.ops): ``ecal_moments`` on (B, 25, 25, 25) float32 showers, every output in the loss (total, three
profiles, means, variances), power 1 (the 3DGAN ECAL head) and 0.85; ``radial_power_spectrum`` on (B, 256, 256)
float32 κ maps (CosmoGAN's size), both the whole op (FFT + binning, 20 log bins) and the binning alone (the part the
kernel fuses: rfft2 output → C_ℓ and batch sums, fwd + bwd). Batches 16, 64, 128; all implementations timed in the
same run, round-robin per repetition so that drift on a shared machine hits each alike; median and min/max of
``--repeats`` timings after ``--warmup`` untimed calls. Inductor's generated-kernel count is recorded per compiled
function, and the fused kernel's achieved bandwidth (bytes it must move ÷ time) is compared with a copy of the same
bytes timed in the same run (the machine's practical roofline for a memory-bound pass; the copy reuses its buffers,
so for small batches it runs from cache while the fwd+bwd step also allocates its gradient).

    hpcgen bench kernels [--batches 16,64,128] [--repeats 15] [--threads 2] [--device cpu|cuda] --out F.json
    (or benchmarks/bench_fused_ops.py, which writes benchmarks/results/fused_ops.json)

Writes an hpcgen.bench/1 result of kind "fused_ops". On CPU the fwd+bwd time of every implementation
includes allocating x's gradient; with glibc's default malloc a buffer of a few MB is mmapped and unmapped on every
step, so each step also pays its page faults. The results record the MALLOC_* environment they ran under; to see
the kernels without that cost, run once more with
``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296`` and ``--out .../fused_ops_malloc_tuned.json``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from hpcgen.bench.harness import device_sync, time_calls
from hpcgen.bench.results import host_info, make_result, summarise, write_result
from hpcgen.errors import UserError


def ecal_cases(batch, device, power):
    from hpcgen import ops
    from hpcgen.ops.ecal_moments import ecal_moments_ref

    x = (torch.rand(batch, 25, 25, 25, device=device) * 2.0).requires_grad_()

    def loss_of(m):
        return (m.total.sum() + m.profile_x.sum() + m.profile_y.sum() + m.profile_z.sum() + m.mean_cells.sum()
                + m.var_cells2.sum())

    def fused():
        loss_of(ops.ecal_moments(x, power, impl=device.type)).backward()

    def ref_loss(t):
        return loss_of(ecal_moments_ref(t, power))

    def eager():
        ref_loss(x).backward()

    compiled_loss = torch.compile(ref_loss, dynamic=False)

    def compiled():
        compiled_loss(x).backward()

    # forward reads x; backward writes dx and, for power != 1, reads x again (x^p' needs it)
    nbytes = (2 if power == 1.0 else 3) * x.numel() * x.element_size()
    return x, {"fused": fused, "eager": eager, "torch.compile": compiled}, nbytes


def spectrum_cases(batch, device, binning_only):
    from hpcgen import ops
    from hpcgen.ops.power_spectrum import _kernel_tables, binned_cl_ref, spectrum_bins

    n, pix = 256, 3.5 / 60 * torch.pi / 180 * 20 / 256  # 256² at 0.27 arcmin; the value does not change the cost
    maps = torch.randn(batch, n, n, device=device).requires_grad_()
    edges, idx, weight, modes, _ = spectrum_bins(n, pix)
    idx_t, modes_t = torch.as_tensor(idx, device=device), torch.as_tensor(modes, device=device)
    weight_t = torch.as_tensor(weight, dtype=torch.float32, device=device)
    if not binning_only:
        def ref_loss(m):  # the reference's tensor work with its tables precomputed (torch.compile cannot trace numpy)
            cl = binned_cl_ref(torch.fft.rfft2(m), pix, idx_t, weight_t, modes_t)
            return cl.sum() + cl.square().sum(0).sum()

        def fused():
            ps = ops.radial_power_spectrum(maps, pix, impl=device.type)
            (ps.cl.sum() + ps.sum_cl2.sum()).backward()

        arg, nbytes = maps, None
    else:
        tables = _kernel_tables(n, pix, tuple(edges.tolist()), torch.float32, device)
        f = torch.fft.rfft2(maps.detach()).requires_grad_()
        spectrum = torch.view_as_real(f.detach()).reshape(batch, -1, 2).contiguous().requires_grad_()

        def ref_loss(fc):
            cl = binned_cl_ref(fc, pix, idx_t, weight_t, modes_t)
            return cl.sum() + cl.square().sum(0).sum()

        def fused():
            spectrum.grad = None
            cl, _, s2 = torch.ops.hpcgen.radial_power_bin(spectrum, *tables)
            (cl.sum() + s2.sum()).backward()

        fused.grad_of = lambda: torch.view_as_complex(spectrum.grad.reshape(*f.shape, 2))  # f's layout, for comparison
        arg = f
        nbytes = 3 * spectrum.numel() * spectrum.element_size()  # read spectrum; backward reads it, writes grad

    def eager():
        ref_loss(arg).backward()

    compiled_loss = torch.compile(ref_loss, dynamic=False)

    def compiled():
        compiled_loss(arg).backward()

    return arg, {"fused": fused, "eager": eager, "torch.compile": compiled}, nbytes


def copy_time(nbytes, device, repeats):
    """Median seconds of a copy that moves the same traffic: nbytes/2 read + nbytes/2 written."""
    src = torch.empty(max(1, nbytes // 8), dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    return summarise(time_calls(lambda: dst.copy_(src), warmup=3, repeats=repeats, sync=device_sync(device)))["median"]


def time_cases(arg, cases, device, warmup, repeats):
    inductor_kernels = {}
    for name, fn in cases.items():
        before = _kernel_count()
        for _ in range(warmup):
            arg.grad = None
            fn()
        if name == "torch.compile":
            inductor_kernels[name] = _kernel_count() - before
    times = {name: [] for name in cases}
    sync = device_sync(device) or (lambda: None)
    for _ in range(repeats):
        for name, fn in cases.items():
            arg.grad = None
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times, inductor_kernels.get("torch.compile")


def gradient_agreement(arg, cases) -> dict[str, float]:
    """Fidelity beside the speed: max |∂loss/∂input of each implementation − the eager reference's|, relative to the
    reference's largest entry, from one call of each on the timed input."""
    grads = {}
    for name, fn in cases.items():
        arg.grad = None
        fn()
        # a case whose gradient lands elsewhere (the binning kernel's real-view spectrum) says where, as grad_of
        grads[name] = getattr(fn, "grad_of", lambda: arg.grad)().detach().clone()
    ref = grads["eager"]
    scale = float(ref.abs().max()) or 1.0
    return {name: float((g - ref).abs().max()) / scale for name, g in grads.items() if name != "eager"}


def _kernel_count():
    from torch._inductor import metrics

    return metrics.generated_kernel_count


def run_kernels(out: Path, batches=(16, 64, 128), repeats: int = 15, warmup: int = 3, threads: int = 2,
                device: str = "cpu", log=print) -> dict:
    """Time every op and implementation; write the result to ``out`` and return it."""
    from hpcgen import ops

    if repeats < 1 or warmup < 0 or threads < 1 or not batches or min(batches) < 1:
        raise UserError("bench kernels: expected --repeats >= 1, --threads >= 1 and batch sizes >= 1")
    torch.set_num_threads(threads)
    device = torch.device(device)
    status = ops.status()
    from hpcgen.ops import library

    if not library.has_kernels(device.type):
        raise UserError(f"bench kernels: the compiled {device.type} kernels are not live ({status}); run `make ops` first")
    batches = [int(b) for b in batches]
    malloc = " ".join(f"{k}={v}" for k, v in os.environ.items() if k.startswith("MALLOC_")) or "default malloc"
    log(f"# fused ops vs eager vs torch.compile, fwd+bwd | torch {torch.__version__} | {threads} threads | "
        f"{device} | {repeats} repeats after {warmup} warm-up | {malloc} | {status}")
    rows = []
    specs = [("ecal_moments", "power=1", lambda b: ecal_cases(b, device, 1.0)),
             ("ecal_moments", "power=0.85", lambda b: ecal_cases(b, device, 0.85)),
             ("radial_power_spectrum", "binning only", lambda b: spectrum_cases(b, device, True)),
             ("radial_power_spectrum", "fft + binning", lambda b: spectrum_cases(b, device, False))]
    log(f"{'op':<22} {'variant':<14} {'B':>4} {'fused ms':>14} {'eager ms':>14} {'compile ms':>14} "
        f"{'×eager':>7} {'×compile':>8} {'GB/s':>6} {'roofline':>8}")
    for op, variant, make in specs:
        for batch in batches:
            torch._dynamo.reset()
            arg, cases, nbytes = make(batch)
            times, n_kernels = time_cases(arg, cases, device, warmup, repeats)
            stats = {k: summarise([t * 1e3 for t in v]) for k, v in times.items()}
            fused = stats["fused"]["median"]
            row = {"op": op, "variant": variant, "batch": batch, "device": device.type, "dtype": "float32",
                   "time_ms": stats, "speedup_vs_eager": stats["eager"]["median"] / fused,
                   "speedup_vs_compile": stats["torch.compile"]["median"] / fused,
                   "inductor_kernels": n_kernels,
                   "grad_max_rel_diff_vs_eager": gradient_agreement(arg, cases)}
            line_bw = ""
            if nbytes:
                copy_s = copy_time(nbytes, device, repeats)
                row.update(bytes_moved=nbytes, achieved_gbps=nbytes / (fused * 1e-3) / 1e9,
                           copy_gbps=nbytes / copy_s / 1e9, roofline_fraction=copy_s / (fused * 1e-3))
                line_bw = f"{row['achieved_gbps']:6.1f} {row['roofline_fraction']:8.0%}"
            rows.append(row)

            def fmt(s):
                return f"{s['median']:6.2f} ({s['min']:.2f}-{s['max']:.2f})"[:14]

            log(f"{op:<22} {variant:<14} {batch:>4} {fmt(stats['fused']):>14} {fmt(stats['eager']):>14} "
                  f"{fmt(stats['torch.compile']):>14} {row['speedup_vs_eager']:7.2f} {row['speedup_vs_compile']:8.2f} "
                f"{line_bw}")
    config = {"batches": batches, "repeats": repeats, "warmup": warmup, "threads": threads,
              "device": device.type, "torch": torch.__version__, "ops_status": status,
              "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
              "targets": {"ecal_moments": "fused >= 3x eager and >= 1.5x torch.compile (2 CPU cores)",
                          "radial_power_spectrum binning": "fused >= 2x eager"}}
    result = make_result("fused_ops", config, rows, host=host_info())
    write_result(out, result)
    return result



