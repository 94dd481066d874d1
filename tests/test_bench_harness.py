"""hpcgen.bench.harness and the throughput/demo verbs: what is timed, what is reported, and the main job end to end."""

from __future__ import annotations

import subprocess

import pytest

from hpcgen.bench.harness import rates, time_calls
from hpcgen.bench.results import load_result, summarise
from tests.conftest import mpirun_cmd, run_cli


class FakeClock:
    """A clock that advances only when the timed function says so: call k of fn takes durations[k] seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_warm_up_calls_are_run_but_not_timed_and_the_median_is_of_the_timed_calls():
    clock = FakeClock()
    durations = iter([100.0, 100.0, 3.0, 1.0, 2.0])  # two slow warm-up calls (JIT), then 3 timed ones
    calls = []

    def fn():
        calls.append(1)
        clock.now += next(durations)

    secs = time_calls(fn, warmup=2, repeats=3, clock=clock)
    assert len(calls) == 5 and secs == [3.0, 1.0, 2.0]
    assert summarise(secs) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert rates(10, secs) == [10 / 3.0, 10.0, 5.0]


def test_sync_runs_around_every_timed_call():
    events = []
    time_calls(lambda: events.append("call"), warmup=1, repeats=2, sync=lambda: events.append("sync"))
    assert events == ["call", "sync", "call", "sync", "sync", "call", "sync"]


def test_time_calls_rejects_no_repeats():
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_calls(lambda: None, warmup=0, repeats=0)


@pytest.mark.parametrize("args, words", [
    (["bench", "throughput", "--domain", "jets", "--out", "x.json"], "--domain: expected calo or cosmo"),
    (["bench", "throughput", "--domain", "cosmo", "--out", "x.json"], "--checkpoint: throughput --domain cosmo needs"),
    (["bench", "throughput", "--energies-gev", "10,abc", "--out", "x.json"], "--energies-gev: expected comma-separated numbers"),
    (["bench", "throughput", "--energies-gev", "5000", "--out", "x.json"], "--energies-gev: expected energies within 1-1000 GeV"),
    (["bench", "throughput", "--checkpoint", "/nonexistent", "--out", "x.json"], "--checkpoint: /nonexistent holds no checkpoint.pt"),
    (["bench", "scaling", "--model", "calo", "--ranks", "2", "--out", "x.json"], "--ranks: must include 1"),
    (["report", "/nonexistent.json", "--out", "r"], "report: /nonexistent.json: no such file"),
    (["bench", "throughput", "--threads", "0", "--out", "x.json"], "--threads: expected thread counts >= 1"),
    (["demo", "--domain", "jets"], "--domain: expected calo or cosmo"),
])
def test_bad_bench_input_is_one_line_exit_2(tmp_path, args, words):
    res = run_cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr


def test_report_verb_renders_the_committed_results(tmp_path):
    from pathlib import Path

    results = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "results").glob("*.json"))
    res = run_cli("report", *map(str, results), "--out", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr[-2000:]
    text = (tmp_path / "r" / "report.md").read_text()
    assert all(p.name in text for p in results)


@pytest.mark.mpi
def test_tiny_demo_runs_every_step_on_two_ranks_and_reports_speed_up_at_fidelity(tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run(mpirun_cmd(2, "demo", "--tiny", "--out", str(out)), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = load_result(out / "throughput.json")  # validates the hpcgen.bench/1 contract
    gens = {r["generator"] for r in result["rows"]}
    assert {"cascade", "gflash"} <= gens and any(g.startswith("gan:") for g in gens)
    assert result["config"]["ranks"] == 2 and result["literature"]
    for row in result["rows"]:
        assert row["samples_per_s"]["median"] > 0
        assert set(row["fidelity"]) >= {"AUC_high_level", "S_e_vis_over_e_p", "S_layer_energy_median"}
        for metric in ("AUC_high_level", "S_e_vis_over_e_p", "S_layer_energy_median"):
            m = row["fidelity"][metric]
            assert 0 <= m["floor_p50"] <= m["floor_p95"] <= 1 and 0 <= m["value"] <= 1
    # the cascade's own row is an independent sample of it, scored against the same reference halves as the others
    assert {r["energy_gev"] for r in result["rows"] if r["generator"] == "cascade"} == {10.0, 50.0}
    assert result["config"]["fidelity_reference_n"] == 2 * result["config"]["fidelity_n"]
    report = (out / "report" / "report.md").read_text()
    assert "Speed-up at fidelity" in report and "Literature" in report
    assert (out / "validation_gan" / "metrics.json").exists() and (out / "gan.h5").exists()
    assert "× cascade" in res.stdout and f"report: {out}/report/report.md" in res.stdout
    # 2 ranks and the shipped 500-step checkpoint: the demo fine-tunes it by the tiny run's 2 steps
    assert "gan:run@502" in gens and "fine-tuned the shipped checkpoint" in res.stdout


@pytest.mark.mpi
def test_tiny_cosmo_demo_compares_lognormal_and_cosmogan_with_pm_at_its_floor(tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run(mpirun_cmd(2, "demo", "--domain", "cosmo", "--tiny", "--out", str(out)),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = load_result(out / "throughput.json")
    assert result["config"]["domain"] == "cosmo" and result["config"]["reference"] == "pm"
    gens = {r["generator"] for r in result["rows"]}
    assert {"pm", "lognormal"} <= gens and any(g.startswith("gan:") for g in gens)
    assert all(r["samples_per_s"]["median"] > 0 for r in result["rows"])
    assert "max_abs_rel_err_power_spectrum" in result["config"]["fidelity_floor"]
    assert (out / "validation_gan" / "metrics.json").exists() and (out / "report" / "report.md").exists()
    assert "(floor: pm vs pm)" in res.stdout


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the error a GPU-less machine gives")
def test_cuda_device_without_a_gpu_is_one_line_exit_2(tmp_path):
    res = run_cli("bench", "throughput", "--device", "cuda", "--energies-gev", "10", "--out", str(tmp_path / "x.json"))
    assert res.returncode == 2 and res.stderr.strip().splitlines() == ["hpcgen: error: --device: cuda requested but torch sees no GPU here"]


def test_throughput_scans_the_gan_over_batch_sizes_and_cpu_threads(tmp_path):
    out = tmp_path / "t.json"
    res = run_cli("bench", "throughput", "--energies-gev", "10", "--gan-batches", "1,4", "--threads", "1,2",
                  "--fidelity-n", "10", "--seconds", "0.05", "--repeats", "1", "--device", "cpu", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = load_result(out)["rows"]
    assert sorted(r["batch"] for r in rows if r.get("scan") == "batch") == [1, 4]
    assert sorted(r["threads"] for r in rows if r.get("scan") == "threads") == [1, 2]
    assert all(r["device"] == "cpu" for r in rows)
    assert "gan:run@500" in res.stdout and "AUC [floor p95]" in res.stdout
