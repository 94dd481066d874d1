"""The cascade convergence benchmark (benchmarks/bench_cascade_convergence.py): its error and pull arithmetic on
synthetic numbers, its settings reaching the simulation, and a tiny run giving a contract-valid row."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from hpcgen.bench.results import check_result, make_result
from hpcgen.physics.calo_geometry import DEFAULT_GEOMETRY as G
from hpcgen.seeding import stream
from hpcgen.sim.calo_cascade import CascadeCuts, simulate_cascade

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
HOST = {"cpu": "test cpu", "cores": 2, "gpu": None, "torch": None, "mpi_library": None, "engine": None}


@pytest.fixture(scope="module")
def bench():
    """The benchmark script as a module (it imports its sibling bench_common); the thread variables it sets on
    import are put back, so other tests see the environment they started with."""
    saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    sys.path.insert(0, str(BENCH_DIR))
    try:
        yield importlib.import_module("bench_cascade_convergence")
    finally:
        sys.path.remove(str(BENCH_DIR))
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _row(sf, sf_err, profile, profile_err):
    scalar = {"value": 1.0, "error": 0.1}
    return {"sampling_fraction": {"value": sf, "error": sf_err}, "resolution": scalar,
            "depth_centroid_mm": {"value": 30.0, "error": 0.3}, "lateral_width_mm": scalar,
            "longitudinal_profile": {"fraction": profile, "error": profile_err}}


def test_pull_is_the_difference_in_combined_standard_errors(bench):
    assert bench.pull(1.0, 0.3, 0.5, 0.4) == pytest.approx(1.0)  # 0.5 / hypot(0.3, 0.4)
    assert bench.pull(0.5, 0.4, 1.0, 0.3) == pytest.approx(-1.0)
    ref = _row(0.0180, 0.00004, [0.5, 0.3, 0.2], [0.01, 0.01, 0.0])
    row = _row(0.0182, 0.00003, [0.53, 0.26, 0.2], [0.0, 0.0, 0.0])
    row["depth_centroid_mm"] = {"value": 29.2, "error": 0.6}
    p = bench.pulls_against(row, ref)
    assert p["sampling_fraction"] == pytest.approx(4.0)  # 0.0002 / 0.00005
    assert p["sampling_fraction_relative_shift"] == pytest.approx(0.0182 / 0.0180 - 1)
    assert p["depth_centroid_mm"] == pytest.approx(-0.8 / math.hypot(0.6, 0.3))
    assert p["resolution"] == 0.0 and p["lateral_width_mm"] == 0.0
    # layers with no error on either side (an empty tail layer) are left out of the profile's pulls
    assert p["profile_max_abs_layer_pull"] == pytest.approx(4.0)
    assert p["profile_chi2_per_layer"] == pytest.approx((3.0**2 + 4.0**2) / 2)


# a Gaussian, and a gamma distribution with σ/μ = 0.2 and skewness 0.4 (a shower sample's leakage tail is milder)
@pytest.mark.parametrize("draw", [lambda r, n: r.normal(1.0, 0.06, n), lambda r, n: r.gamma(25.0, 0.04, n)],
                         ids=["gaussian", "skewed"])
def test_errors_match_the_spread_of_repeated_samples(bench, draw):
    rng = np.random.default_rng(5)
    samples = [draw(rng, 200) for _ in range(1500)]
    for fn in (bench.mean_and_error, bench.relative_width_and_error):
        values, errors = np.array([fn(x) for x in samples]).T
        assert errors.mean() == pytest.approx(values.std(ddof=1), rel=0.06), fn.__name__


def test_resolution_error_reduces_to_the_gaussian_formula(bench):
    # for a Gaussian (skewness 0, kurtosis 3): se(σ/μ) = r/√(2N)·√(1 + 2r²); r = 0.06, N = 20000
    x = np.random.default_rng(8).normal(1.0, 0.06, 20000)
    r, err = bench.relative_width_and_error(x)
    assert err == pytest.approx(r / math.sqrt(2 * x.size) * math.sqrt(1 + 2 * r * r), rel=0.03)


def test_settings_name_real_cuts_and_differ_from_the_default(bench):
    default = CascadeCuts()
    assert bench.SETTINGS["default"] == {}
    for name, changed in bench.SETTINGS.items():
        cuts = CascadeCuts(**changed)  # a misspelt field is a TypeError here
        assert (cuts != default) == (name != "default"), name


def test_a_changed_cut_changes_the_run():
    e = np.full(3, 2.0)
    a = simulate_cascade(e, G, stream(4, 0))
    b = simulate_cascade(e, G, stream(4, 0), CascadeCuts(brems_threshold_mev=0.5))
    c = simulate_cascade(e, G, stream(4, 0), CascadeCuts(range_fraction=0.15))
    assert not np.array_equal(a.ecal_gev, b.ecal_gev) and not np.array_equal(a.ecal_gev, c.ecal_gev)
    assert a.tallies["n_steps"].sum() < c.tallies["n_steps"].sum()  # shorter steps: more of them


def test_tiny_run_gives_a_contract_valid_row_with_pulls(bench):
    ref = bench.run_setting("default", 1.0, 6, 2, 3, G)
    row = bench.run_setting("brems_kc_0.5", 1.0, 6, 2, 3, G)
    assert row["changed"] == {"brems_threshold_mev": 0.5} and row["n_showers"] == 6
    assert row["cpu_s_per_shower"]["n"] == 2 and row["steps_per_shower"] > 0
    assert sum(row["longitudinal_profile"]["fraction"]) == pytest.approx(1.0)
    assert len(row["longitudinal_profile"]["fraction"]) == G.n_layers
    row["pull_vs_default"] = bench.pulls_against(row, ref)
    assert all(math.isfinite(v) for v in row["pull_vs_default"].values())
    check_result(make_result("cascade_convergence", {}, [row], host=HOST), "tiny")


def test_default_cuts_are_recorded_as_used(bench):
    # the benchmark's config records dataclasses.asdict(CascadeCuts()): every field must be JSON-plain
    for v in dataclasses.asdict(CascadeCuts()).values():
        assert isinstance(v, (bool, int, float))
