"""The convergence-map fidelity monitor: its quick score separates a wrong generator from an independent sample of
the reference, and `hpcgen train cosmo --eval-data` logs it into metrics.jsonl."""

from __future__ import annotations

import json
import math

import numpy as np

from hpcgen.fidelity.monitor import COSMO_TARGETS, quick_score_cosmo
from hpcgen.physics.map_statistics import gaussian_field
from tests.conftest import run_cli, write_small_cosmo

PIXELS = 32
PIXEL_RAD = math.radians(3.5) / PIXELS


def _maps(n: int, seed: int) -> np.ndarray:
    def cl(ell):  # lensing-like, damped at high ℓ
        return 1e-9 * (ell / 1000.0) ** -1.2 * np.exp(-((ell / 1500.0) ** 2))

    return gaussian_field(cl, n, PIXELS, PIXEL_RAD, np.random.default_rng(seed)).astype(np.float32)


def test_quick_score_passes_an_independent_sample_and_fails_a_rescaled_one():
    ref = _maps(200, seed=1)
    same = quick_score_cosmo(ref, _maps(100, seed=2), PIXEL_RAD, seed=0)
    assert set(COSMO_TARGETS) <= set(same)
    for k in ("S_pixel_histogram_over_floor_p95", "S_peak_heights_over_floor_p95", "minkowski_excess_sigma_max"):
        assert same[k] <= COSMO_TARGETS[k], (k, same[k])
    assert same["cl_max_abs_rel_err_valid"] < 0.3  # sampling noise of the few-mode lowest bins only
    wrong = quick_score_cosmo(ref, 1.5 * _maps(100, seed=2), PIXEL_RAD, seed=0)  # C_ℓ × 2.25, pixels 1.5× wider
    assert wrong["cl_max_abs_rel_err_valid"] > 1.0
    assert wrong["S_pixel_histogram_over_floor_p95"] > COSMO_TARGETS["S_pixel_histogram_over_floor_p95"]
    assert wrong["minkowski_excess_sigma_max"] > COSMO_TARGETS["minkowski_excess_sigma_max"]
    assert not wrong["meets_targets"]


def test_train_cosmo_logs_the_monitor_and_rejects_held_out_maps_of_another_size(tmp_path):
    data = write_small_cosmo(tmp_path / "train.h5", n=16)
    held_out = write_small_cosmo(tmp_path / "held_out.h5", n=16, seed=5)
    res = run_cli("train", "cosmo", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2",
                  "--batch-size", "4", "--eval-data", str(held_out), "--eval-every", "2", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval" in x]
    assert [e["step"] for e in evals] == [0, 2]
    for e in evals:
        assert set(COSMO_TARGETS) | {"meets_targets", "ell_valid_range"} <= set(e["eval"])
        assert e["eval"]["n_ref"] == 16 and e["eval"]["n_test"] == 8

    other = write_small_cosmo(tmp_path / "other.h5", n=16, size=64)
    res = run_cli("train", "cosmo", "--data", str(data), "--out", str(tmp_path / "run2"), "--steps", "1",
                  "--eval-data", str(other), "--eval-every", "1", "--no-progress")
    assert res.returncode == 2 and "--eval-data" in res.stderr and "64×64" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_half_width_cosmogan_trains_and_resumes_only_at_its_width(tmp_path):
    data = write_small_cosmo(tmp_path / "train.h5", n=16)
    run = tmp_path / "run"
    base = ("train", "cosmo", "--data", str(data), "--out", str(run), "--batch-size", "4", "--no-progress")
    res = run_cli(*base, "--steps", "1", "--cosmo-width", "0.5")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["cosmo_width"] == 0.5
    res = run_cli(*base, "--steps", "2", "--resume")
    assert res.returncode == 2 and "resume it with --cosmo-width 0.5" in res.stderr
    res = run_cli(*base, "--steps", "2", "--resume", "--cosmo-width", "0.5")
    assert res.returncode == 0, res.stderr[-2000:]
