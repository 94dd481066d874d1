"""The calibrated alpha-beta ring all-reduce scaling model: hand-computed cases and round trips."""

from __future__ import annotations

import pytest

from hpcgen.bench.scaling_model import (
    NETWORKS,
    Calibration,
    Network,
    calibrate,
    fit_network,
    network,
    predict,
    reproduction_error,
    ring_allreduce_seconds,
    step_time,
)

NET = Network("test", alpha_s=1e-6, beta_s_per_byte=1e-9, source="test figures")


def test_ring_allreduce_matches_hand_computed_cost():
    assert ring_allreduce_seconds(1e6, 4, NET) == pytest.approx(6e-6 + 1.5e-3, rel=1e-12)
    assert ring_allreduce_seconds(0, 2, NET) == pytest.approx(2e-6, rel=1e-12)


def test_ring_allreduce_on_one_rank_costs_nothing():
    assert ring_allreduce_seconds(1e9, 1, NET) == 0.0


def test_ring_allreduce_bandwidth_term_tends_to_twice_n_beta():
    no_latency = Network("bw", 0.0, 1e-9, "test")
    n = 1e8
    assert ring_allreduce_seconds(n, 1024, no_latency) == pytest.approx(2 * n * 1e-9, rel=1e-3)
    assert ring_allreduce_seconds(n, 1024, no_latency) < 2 * n * 1e-9


@pytest.mark.parametrize("nbytes, ranks", [(-1, 2), (10, 0), (10, 2.0), (10, True)])
def test_ring_allreduce_rejects_bad_sizes_and_rank_counts(nbytes, ranks):
    with pytest.raises(ValueError):
        ring_allreduce_seconds(nbytes, ranks, NET)


def _synthetic_measurements(phi, per_sample=0.01, batch=8, grad_bytes=4 * 872_808):
    truth = Calibration(per_sample, grad_bytes, phi)
    return truth, step_time(truth, NET, 1, batch), step_time(truth, NET, 2, batch), \
        ring_allreduce_seconds(grad_bytes, 2, NET)


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.75, 1.0])
def test_calibrate_recovers_overlap_and_per_sample_compute_from_model_step_times(phi):
    truth, s1, s2, ar2 = _synthetic_measurements(phi)
    cal = calibrate(s1, s2, ar2, batch_per_rank=8, grad_bytes=truth.grad_bytes)
    assert cal.overlap == pytest.approx(phi, abs=1e-9)
    assert cal.compute_s_per_sample == pytest.approx(truth.compute_s_per_sample, rel=1e-12)
    assert cal.grad_bytes == truth.grad_bytes


def test_calibrate_clips_overlap_to_unit_interval():
    assert calibrate(1.0, 0.9, 0.05, 8, 1000).overlap == 1.0  # 2 ranks faster than 1: all hidden
    assert calibrate(1.0, 1.5, 0.1, 8, 1000).overlap == 0.0  # more added than the all-reduce costs


@pytest.mark.parametrize("arg", ["step_s_1rank", "step_s_2rank", "allreduce_s_2rank", "batch_per_rank", "grad_bytes"])
def test_calibrate_rejects_nonpositive_input_naming_the_argument(arg):
    kwargs = dict(step_s_1rank=1.0, step_s_2rank=1.1, allreduce_s_2rank=0.2, batch_per_rank=8, grad_bytes=1000)
    kwargs[arg] = 0
    with pytest.raises(ValueError, match=arg):
        calibrate(**kwargs)


def test_weak_efficiency_is_one_at_one_rank_and_falls_monotonically_when_comm_is_exposed():
    cal = Calibration(0.01, 4 * 12_824_449, overlap=0.5)
    ranks = [1, 2, 4, 8, 64, 1024]
    eff = [r["efficiency"] for r in predict(cal, NETWORKS["slingshot-11"], ranks, "weak", batch_per_rank=4)]
    assert eff[0] == 1.0
    assert all(a > b for a, b in zip(eff, eff[1:]))
    assert 0 < eff[-1] < 1


def test_full_overlap_gives_weak_efficiency_one_at_every_rank_count():
    cal = Calibration(0.01, 4 * 12_824_449, overlap=1.0)
    rows = predict(cal, NETWORKS["ethernet-25g"], [1, 2, 16, 1024], "weak", batch_per_rank=4)
    assert [r["efficiency"] for r in rows] == [1.0] * 4
    assert all(r["exposed_comm_s"] == 0 and r["kind"] == "prediction" for r in rows)


def test_strong_scaling_matches_hand_computed_case():
    cal = Calibration(compute_s_per_sample=0.01, grad_bytes=1e6, overlap=0.5)
    (row,) = predict(cal, NET, [4], "strong", global_batch=64)
    comm = 6e-6 + 1.5e-3
    step = 0.01 * 16 + 0.5 * comm
    assert row["step_s"] == pytest.approx(step, rel=1e-12)
    assert row["comm_s"] == pytest.approx(comm, rel=1e-12)
    assert row["exposed_comm_s"] == pytest.approx(0.5 * comm, rel=1e-12)
    assert row["samples_per_s_total"] == pytest.approx(64 / step, rel=1e-12)
    assert row["samples_per_s_per_rank"] == pytest.approx(16 / step, rel=1e-12)
    assert row["efficiency"] == pytest.approx(0.64 / (4 * step), rel=1e-12)
    assert (row["ranks"], row["mode"], row["network"]) == (4, "strong", "test")


def test_fit_network_recovers_alpha_and_beta_from_synthetic_timings():
    truth = Network("truth", 3.7e-5, 1 / 1.3e9, "test")
    sizes = [1e3, 1e5, 3.5e6, 5.1e7]
    times = [ring_allreduce_seconds(n, 2, truth) for n in sizes]
    fit = fit_network(sizes, times, ranks=2)
    assert fit.alpha_s == pytest.approx(truth.alpha_s, rel=1e-9)
    assert fit.beta_s_per_byte == pytest.approx(truth.beta_s_per_byte, rel=1e-9)
    assert fit.name == "this host"


def test_fit_network_needs_two_distinct_sizes():
    with pytest.raises(ValueError, match="2 distinct sizes"):
        fit_network([1e6, 1e6], [1e-3, 1.1e-3], ranks=2)


def test_custom_network_spec_parses_latency_and_gigabits_per_second():
    net = network("custom:2e-6:100")
    assert net.alpha_s == 2e-6
    assert 1 / net.beta_s_per_byte == pytest.approx(12.5e9, rel=1e-12)
    assert network("slingshot-11") is NETWORKS["slingshot-11"]
    assert 1 / NETWORKS["ethernet-25g"].beta_s_per_byte == pytest.approx(3.125e9)


@pytest.mark.parametrize("spec", ["myrinet", "custom:2e-6", "custom:x:100", "custom:2e-6:0", "custom:-1:100"])
def test_bad_network_spec_raises_one_line_error_naming_presets(spec):
    with pytest.raises(ValueError) as err:
        network(spec)
    msg = str(err.value)
    assert "\n" not in msg
    assert all(name in msg for name in NETWORKS) and "custom:ALPHA_S:BANDWIDTH_GBPS" in msg


def test_reproduction_error_is_zero_on_calibration_points_and_positive_when_perturbed():
    truth, s1, s2, ar2 = _synthetic_measurements(0.4)
    cal = calibrate(s1, s2, ar2, batch_per_rank=8, grad_bytes=truth.grad_bytes)
    points = [{"ranks": 1, "step_s": s1, "batch_per_rank": 8}, {"ranks": 2, "step_s": s2, "batch_per_rank": 8}]
    assert reproduction_error(cal, NET, points) == pytest.approx(0.0, abs=1e-12)
    perturbed = [points[0], dict(points[1], step_s=s2 * 1.1)]
    assert reproduction_error(cal, NET, perturbed) == pytest.approx(1 - 1 / 1.1, rel=1e-9)


def test_predict_rejects_unknown_mode_and_missing_batch():
    cal = Calibration(0.01, 1e6, 0.5)
    with pytest.raises(ValueError, match="mode"):
        predict(cal, NET, [1, 2], "diagonal", batch_per_rank=4)
    with pytest.raises(ValueError, match="batch_per_rank"):
        predict(cal, NET, [1, 2], "weak")
    with pytest.raises(ValueError, match="global_batch"):
        predict(cal, NET, [1, 2], "strong")
