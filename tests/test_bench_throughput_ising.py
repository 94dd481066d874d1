"""``hpcgen bench throughput --domain ising``: every generator on the same cores, independent samples/s = sweeps/s
÷ 2τ_int on every Monte Carlo row, fidelity and speed-up beside the GAN, the report's Ising table, one-line errors for
bad flags, and the tiny ``hpcgen demo --domain ising`` on two ranks."""

from __future__ import annotations

import math
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import mpirun_cmd, run_cli
from test_ising_gan import write_ising

from hpcgen.bench.report import render_report
from hpcgen.bench.results import load_result
from hpcgen.bench.throughput_ising import (
    FIDELITY_OBSERVABLES,
    IsingThroughputConfig,
    run_ising_throughput,
)
from hpcgen.dist.world import World

GAN_L, MC_ONLY_L, T = 8, 4, 2.5


@pytest.fixture(scope="module")
def result_file(tmp_path_factory) -> Path:
    """A tiny Ising throughput run in this process: a 1-step GAN at L = 8 and Metropolis/Wolff at L = 4 and 8."""
    import torch

    root = tmp_path_factory.mktemp("ising_tp")
    write_ising(root / "train.h5", n=8, size=GAN_L, temps=(2.0, 3.0), seed=0)
    res = run_cli("train", "ising", "--data", str(root / "train.h5"), "--out", str(root / "run"), "--steps", "1",
                  "--batch-size", "4", "--seed", "1", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    cfg = IsingThroughputConfig(out=root / "tp.json", checkpoint=root / "run", L_list=(MC_ONLY_L,), temperatures=(T,),
                                gan_batches=(1, 4), seconds=0.02, repeats=2, max_seconds=0.1, tau_min_sweeps=256,
                                thermalise_sweeps=100, fidelity_n=8, classifier=False, precisions=("fp32",))
    before = torch.get_num_threads()
    try:
        run_ising_throughput(cfg, World(), log=lambda line: None)
    finally:
        torch.set_num_threads(before)
    return root / "tp.json"


def _main_rows(result: dict) -> list[dict]:
    return [r for r in result["rows"] if not r.get("scan")]


def test_every_ising_generator_is_timed_on_the_same_cores(result_file):
    result = load_result(result_file)
    cores = result["config"]["cores_per_generator"]
    assert cores == result["config"]["ranks"] * result["config"]["threads_per_rank"] == 1
    assert {r["cores"] for r in result["rows"]} == {cores}
    gens = {(r["L"], r["kind_of_generator"], r["generator"].split(":")[0]) for r in _main_rows(result)}
    assert gens == {(GAN_L, "mc", "metropolis"), (GAN_L, "mc", "wolff"), (GAN_L, "gan", "gan"),
                    (MC_ONLY_L, "mc", "metropolis"), (MC_ONLY_L, "mc", "wolff")}  # no GAN at the MC-only size
    assert result["host"]["cpu"] and isinstance(result["host"]["isa"], list) and result["host"]["cores"] >= 1
    assert result["config"]["precisions"] == ["fp32"] and result["provenance"]


def test_monte_carlo_rows_give_independent_samples_per_s_as_sweeps_per_s_over_two_tau(result_file):
    mc = [r for r in _main_rows(load_result(result_file)) if r["kind_of_generator"] == "mc"]
    assert len(mc) == 4
    for r in mc:
        taus = {k: v["tau_sweeps"] for k, v in r["tau_int"].items()}
        assert set(taus) == {"E", "absM"} and r["tau_used"] == max(taus, key=taus.get)
        tau = taus[r["tau_used"]]
        assert r["tau_int_used_sweeps"] == tau and tau >= 0.5 - 1e-9
        assert r["sweeps_per_s"] == r["samples_per_s"]
        assert r["independent_samples_per_s"] == pytest.approx(r["samples_per_s"]["median"] / (2 * tau), rel=1e-12)
        sigma = r["tau_int"][r["tau_used"]]["error"]
        assert r["independent_samples_per_s_rel_error"] == pytest.approx(
            math.hypot(r["rate_rel_error"], sigma / tau), rel=1e-12)
        assert r["tau_int"]["E"]["series_sweeps_per_rank"] >= 256


def test_gan_rows_carry_fidelity_against_wolff_and_their_speed_up_over_each_monte_carlo(result_file):
    result = load_result(result_file)
    rows = _main_rows(result)
    gan = [r for r in rows if r["kind_of_generator"] == "gan"]
    assert len(gan) == 1
    g = gan[0]
    assert g["independent_samples_per_s"] == g["samples_per_s"]["median"] and g["tau_int_used_sweeps"] == 0.5
    assert g["batch"] == max((r for r in result["rows"] if r.get("scan") == "batch"),
                             key=lambda r: r["samples_per_s"]["median"])["batch"]
    f = g["fidelity"]
    assert f["reference"] == "wolff" and f["n_test"] == 8 and f["n_reference"] == 16
    for k in FIDELITY_OBSERVABLES:
        assert set(f[k]) >= {"rel_diff", "value", "floor_p50", "floor_p95", "within_floor_p95"}
    for r in (r for r in rows if r["kind_of_generator"] == "mc"):  # each Monte Carlo against the other one
        assert r["fidelity"]["reference"] == {"metropolis": "wolff", "wolff": "metropolis"}[r["generator"]]
    for mc in (r for r in rows if r["kind_of_generator"] == "mc" and r["L"] == GAN_L):
        m = mc["generator"]
        ratio = g["independent_samples_per_s"] / mc["independent_samples_per_s"]
        assert g["speed_up"][f"speed_up_vs_{m}"] == pytest.approx(ratio, rel=1e-12)
        assert g["speed_up"][f"gan_wins_vs_{m}"] == (ratio > 1)
    assert [s["L"] for s in result["speed_up"]] == [GAN_L]


def test_the_report_renders_the_ising_result_as_a_table_with_speed_ups_and_a_plot(result_file, tmp_path):
    assert result_file.with_suffix(".png").stat().st_size > 0
    report = render_report([result_file], tmp_path).read_text()
    assert "could not draw" not in report
    assert "independent samples/s" in report and "τ_int used" in report
    assert "Speed-up of the GAN in independent samples/s" in report
    assert (tmp_path / "tp_independent_rate.png").exists()


@pytest.mark.parametrize("args, words", [
    (["--L-list", "3"], "--L-list: expected lattice sides >= 4"),
    (["--L-list", "8", "--temperatures", "0"], "--temperatures: expected"),
    (["--L-list", "8", "--temperatures", "2.0,-1"], "--temperatures: expected"),
])
def test_bad_ising_throughput_flags_are_one_line_exit_2_and_write_nothing(tmp_path, args, words):
    res = run_cli("bench", "throughput", "--domain", "ising", "--out", str(tmp_path / "x.json"), *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.mpi
def test_tiny_ising_demo_runs_every_step_on_two_ranks(tmp_path):
    out = tmp_path / "demo"
    cmd = mpirun_cmd(2, "demo", "--domain", "ising", "--tiny", "--out", str(out))
    # DDP's rendezvous on a port of its own: another job may hold the default 29500
    cmd[1:1] = ["-x", f"MASTER_PORT={_free_port()}"]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = load_result(out / "throughput.json")
    assert result["config"]["domain"] == "ising" and result["config"]["cores_per_generator"] == 2
    gens = {r["generator"].split(":")[0] for r in _main_rows(result)}
    assert gens == {"metropolis", "wolff", "gan"}
    assert all(r["independent_samples_per_s"] > 0 for r in result["rows"])
    assert (out / "validation_gan" / "metrics.json").exists() and (out / "report" / "report.md").exists()
    assert "Speed-up of the GAN" in (out / "report" / "report.md").read_text()
