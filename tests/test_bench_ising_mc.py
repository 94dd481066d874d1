"""The Ising Monte Carlo benchmark (benchmarks/bench_ising_mc.py) in its --quick form: it writes a valid
hpcgen.bench/1 file with both sections and the fits, and its derived numbers (pulls, Binder differences, z) follow
from the row values it stores; `hpcgen report` renders it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpcgen.bench.report import render_report
from hpcgen.bench.results import load_result

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ising_mc.py"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("ising_mc") / "ising_mc.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    res = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--seed", "7", "--out", str(out)],
                         check=False, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_quick_run_writes_a_valid_result_with_both_sections_and_fits(quick):
    result = load_result(quick)  # raises unless the file follows the hpcgen.bench/1 contract
    assert result["kind"] == "ising_mc" and result["config"]["quick"] is True and result["config"]["seed"] == 7
    assert result["host"]["cpu"] and "isa" in result["host"]
    sections = {r["section"] for r in result["rows"]}
    assert sections == {"exact", "binder", "tau"}
    exact = [r for r in result["rows"] if r["section"] == "exact"]
    assert {r["check"] for r in exact} == {"onsager", "yang", "enumeration", "kaufman"}
    assert {r["algorithm"] for r in exact} == {"metropolis", "wolff"}
    assert {r["observable"] for r in exact if r["check"] == "enumeration"} == {"e", "abs_m", "C_v", "chi", "U4"}
    assert all(r["temperature"] < result["config"]["critical_temperature"] for r in exact if r["check"] == "yang")
    tau = [r for r in result["rows"] if r["section"] == "tau"]
    assert {(r["algorithm"], r["observable"]) for r in tau} == {(a, o) for a in ("metropolis", "wolff")
                                                                for o in ("abs_m", "e")}
    for r in tau:
        assert r["tau"] > 0.4 and r["error"] > 0 and len(r["windows"]) == r["n_chains"] == len(r["chains"])
        assert r["reliable"] == all(c["reliable"] for c in r["chains"])
    fits = result["fits"]
    assert {(f["algorithm"], f["observable"], f["L_min"]) for f in fits} == {
        (a, o, m) for a in ("metropolis", "wolff") for o in ("abs_m", "e") for m in (8, 16)}
    assert all(f["z"] is not None and f["z_err"] > 0 for f in fits)
    assert quick.with_suffix(".png").stat().st_size > 10000
    assert any("[lit]" in item["source"] and item.get("algorithm") == "wolff" for item in result["literature"])


def test_pulls_and_differences_follow_from_the_row_values(quick):
    result = load_result(quick)
    sigmas = result["config"]["sigmas"]
    for r in (r for r in result["rows"] if r["section"] == "exact"):
        assert r["error"] > 0
        assert r["pull"] == pytest.approx((r["value"] - r["exact"]) / r["error"], rel=1e-12, abs=1e-12)
        assert r["within_3sigma"] == (abs(r["pull"]) < sigmas)
    for r in (r for r in result["rows"] if r["section"] == "binder"):
        assert r["difference"] == pytest.approx(r["U4_large"]["value"] - r["U4_small"]["value"], abs=1e-15)
        assert r["difference_error"] == pytest.approx(math.hypot(r["U4_small"]["error"], r["U4_large"]["error"]))
        assert r["pull"] == pytest.approx(r["difference"] / r["difference_error"])


def test_z_is_the_weighted_least_squares_slope_of_the_stored_taus(quick):
    result = load_result(quick)
    for f in result["fits"]:
        rows = sorted((r for r in result["rows"] if r["section"] == "tau" and r["algorithm"] == f["algorithm"]
                       and r["observable"] == f["observable"] and r["L"] >= f["L_min"]), key=lambda r: r["L"])
        assert [r["L"] for r in rows] == f["L"]
        x = np.log([r["L"] for r in rows])
        y = np.log([r["tau"] for r in rows])
        w = np.array([(r["tau"] / r["error"]) ** 2 for r in rows])
        slope, _ = np.polyfit(x, y, 1, w=np.sqrt(w))  # polyfit weights multiply the residuals
        assert f["z"] == pytest.approx(slope, rel=1e-9, abs=1e-12)
        cov = np.linalg.inv([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
        assert f["z_err"] == pytest.approx(math.sqrt(cov[1, 1]), rel=1e-9)


def test_report_renders_the_exact_and_tau_tables(quick, tmp_path):
    text = render_report([quick], tmp_path).read_text()
    assert "(could not draw" not in text
    assert "### Exact checks:" in text and "### Binder crossing" in text and "### τ_int at T_c" in text
    assert "### Dynamic exponent z" in text and "Derived `fits`" not in text
    assert (tmp_path / "ising_mc_ising_mc.png").stat().st_size > 10000
