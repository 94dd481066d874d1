"""The training-scaling benchmark: config validation, point reduction, probe parsing, and end-to-end runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hpcgen.bench import scaling_model as sm
from hpcgen.bench.results import load_result
from hpcgen.bench.scaling import (ScalingConfig, calibrate_engine, parse_probe, probe_sizes, read_metrics,
                                  reduce_point, run_scaling)
from hpcgen.errors import UserError

from conftest import require_horovod, write_small_calo


@pytest.mark.parametrize("kwargs, flag", [
    ({"engines": ("ddp", "mpi")}, "--engine"),
    ({"ranks": (0, 2)}, "--ranks"),
    ({"ranks": (2, 4)}, "--ranks"),  # no 1-rank point
    ({"mode": "strong", "global_batch": 8, "ranks": (1, 3)}, "--global-batch"),
    ({"mode": "sideways"}, "--mode"),
    ({"model": "cifar"}, "--model"),
    ({"steps": 2, "warmup_steps": 2}, "--steps"),
    ({"networks": ("token-ring",)}, "--network"),
    ({"predict_ranks": (1, -4)}, "--predict-ranks"),
])
def test_bad_config_is_a_one_line_error_naming_the_flag(tmp_path, kwargs, flag):
    args = {"model": "calo", "out": tmp_path / "s.json", **kwargs}
    with pytest.raises(UserError) as exc:
        ScalingConfig(**args)
    msg = str(exc.value)
    assert msg.startswith(flag) and "\n" not in msg


def test_strong_mode_splits_the_global_batch_and_weak_mode_keeps_it(tmp_path):
    strong = ScalingConfig("cosmo", tmp_path / "s.json", mode="strong", global_batch=12, ranks=(1, 2, 3))
    assert [strong.batch_at(r) for r in strong.ranks] == [12, 6, 4]
    weak = ScalingConfig("calo", tmp_path / "s.json", engines="ddp", ranks=[2, 1])
    assert weak.ranks == (1, 2) and weak.engines == ("ddp",) and weak.batch_at(2) == 4


def test_metrics_reduction_drops_warmup_and_probe_output_is_parsed(tmp_path):
    lines = [{"step": s, "step_time_s": t, "world_size": 2} for s, t in [(1, 9.0), (2, 0.5), (3, 0.25), (4, 1.0)]]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    point = reduce_point(read_metrics(tmp_path), ranks=2, batch_per_rank=4, warmup_steps=1)
    assert point["step_s"] == {"median": 0.5, "min": 0.25, "max": 1.0, "n": 3}
    assert point["samples_per_s_total"] == {"median": 16.0, "min": 8.0, "max": 32.0, "n": 3}
    assert point["samples_per_s_per_rank"]["median"] == 8.0
    with pytest.raises(RuntimeError, match="no timed steps"):
        reduce_point(read_metrics(tmp_path), ranks=2, batch_per_rank=4, warmup_steps=4)

    probe = {"probe": "allreduce", "engine": "ddp", "ranks": 2,
             "sizes": [{"bytes": 4096, "median": 1e-4, "min": 1e-4, "max": 2e-4, "n": 10}]}
    out = "[rank warning] something\n" + json.dumps(probe) + "\n"
    assert parse_probe(out) == probe
    with pytest.raises(RuntimeError, match="no all-reduce probe"):
        parse_probe("just noise\n")
    sizes = probe_sizes(4 * 1_000_003)
    assert sizes[0] == 4_000_012 and len(sizes) == 4 and all(s % 4 == 0 for s in sizes)


@pytest.mark.parametrize("batch_1, batch_2", [(4, 4), (8, 4)])  # weak, strong (global batch 8)
def test_calibration_reproduces_points_that_follow_the_model(batch_1, batch_2):
    host = sm.Network("h", 1e-4, 1e-9, "test")
    grad = 4_000_000
    ar2 = sm.ring_allreduce_seconds(grad, 2, host)
    probe = [{"bytes": n, "median": sm.ring_allreduce_seconds(n, 2, host)} for n in (grad, grad // 8, 4096)]
    rows = [{"ranks": 1, "batch_per_rank": batch_1, "step_s": {"median": 0.1 * batch_1}},
            {"ranks": 2, "batch_per_rank": batch_2, "step_s": {"median": 0.1 * batch_2 + 0.5 * ar2},
             "allreduce_s": {"median": ar2}, "allreduce_probe": probe}]
    cal, record = calibrate_engine(rows, grad)
    assert cal.overlap == pytest.approx(0.5) and cal.compute_s_per_sample == pytest.approx(0.1)
    assert record["host_network"]["alpha_s"] == pytest.approx(1e-4) and record["calibration_ranks"] == [1, 2]
    assert record["reproduction_error"] == pytest.approx(0.0, abs=1e-9)
    cal1, record1 = calibrate_engine(rows[:1], grad)  # one rank only: no overlap measured, no host network
    assert cal1.overlap == 0.0 and record1["host_network"] is None and record1["reproduction_error"] == 0.0


def _check_scaling_result(result: dict, out: Path, engines: tuple, ranks: tuple, networks: tuple, predict: tuple):
    assert load_result(out)["kind"] == "scaling"  # the file passes the hpcgen.bench/1 contract
    rows = result["rows"]
    assert sorted((r["engine"], r["ranks"]) for r in rows) == sorted((e, r) for e in engines for r in ranks)
    for r in rows:
        assert r["efficiency"] > 0 and r["step_s"]["n"] == 2 and r["samples_per_s_total"]["median"] > 0
        assert r["allreduce_s"]["median"] > 0 if r["ranks"] > 1 else r["allreduce_s"]["median"] == 0
        # beside each rate: which network was trained, and the data-parallel invariant held on every rank
        assert r["calo_arch"] == "factorised" and r["params_identical_across_ranks"] is True
    assert all(r["efficiency"] == 1.0 for r in rows if r["ranks"] == 1)
    preds = result["predictions"]
    for e in engines:
        for net in networks:
            mine = {p["ranks"]: p for p in preds if p["engine"] == e and p["network"] == net}
            assert sorted(mine) == sorted(predict)
            assert mine[1]["efficiency"] == pytest.approx(1.0)
        cal = result["config"]["calibration"][e]
        assert math.isfinite(cal["reproduction_error"]) and 0 <= cal["overlap"] <= 1
        assert cal["host_network"]["alpha_s"] >= 0 and cal["grad_bytes"] == result["config"]["grad_bytes"] > 0
    assert set(result["config"]["assumptions"]["networks"]) == set(networks)
    assert all(v["source"] for v in result["config"]["assumptions"]["networks"].values())


def _e2e(tmp_path: Path, engines: tuple) -> None:
    data = write_small_calo(tmp_path / "calo.h5", n=16)
    networks, predict = ("slingshot-11", "ethernet-25g", "custom:1e-5:10"), (1, 2, 8, 64)
    cfg = ScalingConfig("calo", tmp_path / "scaling.json", engines=engines, ranks=(1, 2), steps=3, warmup_steps=1,
                        batch_per_rank=2, data=data, networks=networks, predict_ranks=predict)
    result = run_scaling(cfg)
    _check_scaling_result(result, cfg.out, engines, (1, 2), networks, predict)


@pytest.mark.mpi
def test_end_to_end_ddp_scaling_run_measures_calibrates_and_predicts(tmp_path):
    _e2e(tmp_path, ("ddp",))


@pytest.mark.mpi
def test_end_to_end_horovod_scaling_run_measures_calibrates_and_predicts(tmp_path):
    require_horovod()
    _e2e(tmp_path, ("horovod",))  # the engines loop is shared: DDP beside it is the test above
