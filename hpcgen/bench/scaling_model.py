"""Calibrated analytic scaling model for data-parallel GAN training (a prediction, not a measurement).

Communication uses the alpha-beta (latency-bandwidth) cost model of Thakur, Rabenseifner & Gropp (2005),
"Optimization of collective communication operations in MPICH", with the bandwidth-optimal ring all-reduce
of Patarasuk & Yuan (2009), "Bandwidth optimal all-reduce algorithms for clusters of workstations":
``t = 2(p-1)·alpha + 2(p-1)/p·n·beta``. Part of that time is hidden behind the backward pass, as Horovod
(Sergeev & Del Balso 2018, arXiv:1802.05799) and PyTorch DDP (Li et al. 2020, VLDB) overlap gradient
all-reduce with compute; the model folds this into one measured fraction ``overlap`` (phi):
``t_step(p, b) = compute_s_per_sample·b + (1 - phi)·t_allreduce(grad_bytes, p)``.

Units throughout: seconds, bytes, samples. No torch here: the inputs are numbers measured elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    """An alpha-beta network: ``alpha_s`` seconds per message, ``beta_s_per_byte`` seconds per byte (1/bandwidth)."""

    name: str
    alpha_s: float
    beta_s_per_byte: float
    source: str


_NOMINAL = "nominal per-NIC link figure and assumed latency, not a measurement"
NETWORKS: dict[str, Network] = {
    "slingshot-11": Network("slingshot-11", 2e-6, 1 / 25e9, f"HPE Slingshot-11 200 Gb/s vendor spec; {_NOMINAL}"),
    "hdr-infiniband": Network("hdr-infiniband", 1.5e-6, 1 / 25e9, f"InfiniBand HDR 200 Gb/s spec; {_NOMINAL}"),
    "ethernet-25g": Network("ethernet-25g", 25e-6, 1 / 3.125e9, f"25 Gb/s Ethernet; {_NOMINAL}"),
}
_SPEC_HELP = f"expected one of {', '.join(NETWORKS)} or custom:ALPHA_S:BANDWIDTH_GBPS (e.g. custom:2e-6:100)"


def network(name_or_spec: str) -> Network:
    """A preset by name, or ``custom:ALPHA_S:BANDWIDTH_GBPS`` (latency in seconds, bandwidth in Gb/s)."""
    if name_or_spec in NETWORKS:
        return NETWORKS[name_or_spec]
    parts = str(name_or_spec).split(":")
    if len(parts) == 3 and parts[0] == "custom":
        try:
            alpha, gbps = float(parts[1]), float(parts[2])
        except ValueError:
            alpha = gbps = float("nan")
        if alpha >= 0 and gbps > 0:  # NaN fails both comparisons
            return Network(name_or_spec, alpha, 8 / (gbps * 1e9), "user-set custom network (assumption)")
    raise ValueError(f"unknown network {name_or_spec!r}: {_SPEC_HELP}")


def ring_allreduce_seconds(nbytes: float, ranks: int, net: Network) -> float:
    """Seconds for a ring all-reduce of ``nbytes`` bytes over ``ranks`` ranks; 0 for one rank."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ValueError(f"ranks must be an integer >= 1, got {ranks!r}")
    if not nbytes >= 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes!r}")
    p = ranks
    return 2 * (p - 1) * net.alpha_s + 2 * (p - 1) / p * nbytes * net.beta_s_per_byte


@dataclass(frozen=True)
class Calibration:
    """Measured inputs: seconds of compute per sample on one rank, bytes all-reduced per step, overlap phi."""

    compute_s_per_sample: float
    grad_bytes: float
    overlap: float
    notes: str = ""


def step_time(cal: Calibration, net: Network, ranks: int, batch_per_rank: float) -> float:
    """Modelled seconds per training step at ``ranks`` ranks with ``batch_per_rank`` samples on each."""
    if not batch_per_rank > 0:
        raise ValueError(f"batch_per_rank must be > 0, got {batch_per_rank!r}")
    comm = ring_allreduce_seconds(cal.grad_bytes, ranks, net)
    return cal.compute_s_per_sample * batch_per_rank + (1 - cal.overlap) * comm


def calibrate(step_s_1rank: float, step_s_2rank: float, allreduce_s_2rank: float, batch_per_rank: float,
              grad_bytes: float, notes: str = "") -> Calibration:
    """Calibration from measured 1- and 2-rank step seconds and the 2-rank all-reduce seconds of ``grad_bytes``."""
    for arg, value in (("step_s_1rank", step_s_1rank), ("step_s_2rank", step_s_2rank),
                       ("allreduce_s_2rank", allreduce_s_2rank), ("batch_per_rank", batch_per_rank),
                       ("grad_bytes", grad_bytes)):
        if not value > 0:
            raise ValueError(f"{arg} must be > 0, got {value!r}")
    # Same per-rank batch on both runs: what the second rank added to the step is the exposed communication.
    phi = 1 - (step_s_2rank - step_s_1rank) / allreduce_s_2rank
    return Calibration(step_s_1rank / batch_per_rank, grad_bytes, min(1.0, max(0.0, phi)), notes)


def fit_network(sizes_bytes: list[float], times_s: list[float], ranks: int, name: str = "this host") -> Network:
    """Least-squares alpha, beta (clipped >= 0) from all-reduce seconds measured at several byte sizes."""
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 2:
        raise ValueError(f"ranks must be an integer >= 2 to fit a network, got {ranks!r}")
    if len(sizes_bytes) != len(times_s) or len(set(sizes_bytes)) < 2:
        raise ValueError("fit_network needs equally many sizes and times, with at least 2 distinct sizes")
    # t = c0 + c1·n with c0 = 2(p-1)·alpha and c1 = 2(p-1)/p·beta: an ordinary straight-line fit.
    k = len(sizes_bytes)
    mean_n, mean_t = sum(sizes_bytes) / k, sum(times_s) / k
    c1 = (sum((n - mean_n) * (t - mean_t) for n, t in zip(sizes_bytes, times_s))
          / sum((n - mean_n) ** 2 for n in sizes_bytes))
    c0 = mean_t - c1 * mean_n
    alpha, beta = max(0.0, c0 / (2 * (ranks - 1))), max(0.0, c1 * ranks / (2 * (ranks - 1)))
    return Network(name, alpha, beta, f"least-squares fit to {k} all-reduce timings at {ranks} ranks (measured)")


def predict(cal: Calibration, net: Network, ranks: list[int], mode: str, batch_per_rank: float | None = None,
            global_batch: float | None = None) -> list[dict]:
    """Predicted rows per rank count. ``weak``: ``batch_per_rank`` fixed. ``strong``: ``global_batch`` fixed and
    split evenly, so the per-rank batch ``global_batch/p`` may be fractional (the model is linear in it)."""
    if mode == "weak":
        if batch_per_rank is None:
            raise ValueError("weak scaling needs batch_per_rank")
        t1 = step_time(cal, net, 1, batch_per_rank)
    elif mode == "strong":
        if global_batch is None:
            raise ValueError("strong scaling needs global_batch")
        t1 = step_time(cal, net, 1, global_batch)
    else:
        raise ValueError(f"mode must be 'weak' or 'strong', got {mode!r}")
    rows = []
    for p in ranks:
        b = batch_per_rank if mode == "weak" else global_batch / p
        step = step_time(cal, net, p, b)
        comm = ring_allreduce_seconds(cal.grad_bytes, p, net)
        rows.append({"ranks": p, "mode": mode, "step_s": step, "samples_per_s_total": p * b / step,
                     "samples_per_s_per_rank": b / step,
                     "efficiency": t1 / step if mode == "weak" else t1 / (p * step),
                     "comm_s": comm, "exposed_comm_s": (1 - cal.overlap) * comm,
                     "network": net.name, "kind": "prediction"})
    return rows


def reproduction_error(cal: Calibration, net: Network, measured: list[dict]) -> float:
    """Largest relative error |predicted - measured| / measured of step seconds over the measured rows
    (each with ``ranks``, ``step_s``, ``batch_per_rank``). It is 0 on the calibration points only when ``net``
    reproduces the all-reduce seconds used in :func:`calibrate` (e.g. a :func:`fit_network` of this host)."""
    if not measured:
        raise ValueError("reproduction_error needs at least one measured row")
    return max(abs(step_time(cal, net, m["ranks"], m["batch_per_rank"]) - m["step_s"]) / m["step_s"]
               for m in measured)
