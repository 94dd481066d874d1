"""hpcgen.bench.harness and the throughput/demo verbs: what is timed, what is reported, and the main job end to end."""

from __future__ import annotations

import subprocess

import pytest

from hpcgen.bench.demo import SHIPPED_CHECKPOINT
from hpcgen.bench.harness import rates, relative_error, time_calls, time_until_precise
from hpcgen.bench.results import load_result, summarise
from hpcgen.train.checkpoint import load_checkpoint
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


def test_timing_goes_on_until_the_rate_is_precise_or_the_time_is_up():
    clock = FakeClock()
    durations = iter([1.0, 2.0, 1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.0] + [1.0] * 100)

    def fn():
        clock.now += next(durations)

    secs = time_until_precise(fn, 10, min_repeats=3, target_rel_error=0.05, max_seconds=1e9, clock=clock)
    assert len(secs) > 3 and relative_error(rates(10, secs)) <= 0.05
    assert relative_error(rates(10, secs[:-1])) > 0.05  # it stopped as soon as the target was met
    # a noisy generator stops at max_seconds of timed calls, and the decision is collective
    noisy = iter([1.0, 3.0] * 100)
    secs = time_until_precise(lambda: setattr(clock, "now", clock.now + next(noisy)), 1, 2, 1e-6, 10.0, clock=clock)
    assert sum(secs) >= 10.0 and sum(secs[:-1]) < 10.0
    asked = []
    secs = time_until_precise(lambda: None, 1, 1, 0.5, 1e9, agree=lambda more: asked.append(more) or len(asked) < 4)
    assert len(secs) == 4 and asked[0] is True  # one timed call has no error estimate: this rank wants more


@pytest.mark.parametrize("args, words", [
    (["bench", "throughput", "--domain", "jets", "--out", "x.json"], "--domain: expected calo, cosmo or ising"),
    (["bench", "throughput", "--domain", "cosmo", "--out", "x.json"], "--checkpoint: throughput --domain cosmo needs"),
    (["bench", "throughput", "--energies-gev", "10,abc", "--out", "x.json"], "--energies-gev: expected comma-separated numbers"),
    (["bench", "throughput", "--energies-gev", "5000", "--out", "x.json"], "--energies-gev: expected energies within 1-1000 GeV"),
    (["bench", "throughput", "--checkpoint", "/nonexistent", "--out", "x.json"], "--checkpoint: /nonexistent holds no checkpoint.pt"),
    (["bench", "scaling", "--model", "calo", "--ranks", "2", "--out", "x.json"], "--ranks: must include 1"),
    (["report", "/nonexistent.json", "--out", "r"], "report: /nonexistent.json: no such file"),
    (["bench", "throughput", "--threads", "0", "--out", "x.json"], "--threads: expected thread counts >= 1"),
    (["demo", "--domain", "jets"], "--domain: expected calo, cosmo or ising"),
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
    # 2 ranks and the shipped checkpoint: the demo continues it by the tiny run's 2 steps
    shipped = load_checkpoint(SHIPPED_CHECKPOINT)["step"]
    assert f"gan:run@{shipped + 2}" in gens and f"fine-tuned the shipped checkpoint calo_gan from step {shipped}" in res.stdout


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


@pytest.mark.mpi
def test_throughput_gives_every_generator_the_same_cores_and_times_the_gan_at_each_native_precision(tmp_path):
    from hpcgen.bench.results import host_info

    out = tmp_path / "t.json"
    res = subprocess.run(mpirun_cmd(2, "bench", "throughput", "--energies-gev", "10", "--gan-batches", "4",
                                    "--fidelity-n", "10", "--seconds", "0.05", "--repeats", "2", "--max-seconds",
                                    "1", "--device", "cpu", "--out", str(out)),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = load_result(out)
    cfg = result["config"]
    assert cfg["ranks"] == 2 and cfg["threads_per_rank"] == 1 and cfg["cores_per_generator"] == 2
    energy_rows = [r for r in result["rows"] if not r.get("scan")]
    assert {r["kind_of_generator"] for r in energy_rows} == {"mc", "gan"}
    assert all(r["cores"] == cfg["cores_per_generator"] for r in energy_rows)
    for r in energy_rows:
        per_core = r["samples_per_s_per_core"]["median"]
        assert per_core == pytest.approx(r["samples_per_s"]["median"] / 2, rel=1e-9)
        assert r["timed_batches"] >= 2 and r["rate_rel_error"] >= 0
        assert r["batch"] >= (10 if r["kind_of_generator"] == "mc" else 4)  # --min-showers default 10
    native_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(host_info()["isa"]))
    gan_precisions = {r["precision"] for r in energy_rows if r["kind_of_generator"] == "gan"}
    assert gan_precisions == ({"fp32", "bf16"} if native_bf16 else {"fp32"})
    assert ("bf16" in cfg["precisions_skipped"]) != native_bf16
    for r in energy_rows:  # every precision carries the fidelity of showers generated at that precision
        assert 0 <= r["fidelity"]["AUC_high_level"]["value"] <= 1
    assert "every generator on the same 2 core(s)" in res.stdout


def test_throughput_scans_the_gan_over_batch_sizes_and_cpu_threads(tmp_path):
    out = tmp_path / "t.json"
    res = run_cli("bench", "throughput", "--energies-gev", "10", "--gan-batches", "1,4", "--threads", "1,2",
                  "--fidelity-n", "10", "--seconds", "0.05", "--repeats", "1", "--device", "cpu", "--out", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    rows = load_result(out)["rows"]
    assert sorted(r["batch"] for r in rows if r.get("scan") == "batch") == [1, 4]
    assert sorted(r["threads"] for r in rows if r.get("scan") == "threads") == [1, 2]
    assert sorted(r["cores"] for r in rows if r.get("scan") == "threads") == [1, 2]
    assert all(r["device"] == "cpu" for r in rows)
    assert f"gan:run@{load_checkpoint(SHIPPED_CHECKPOINT)['step']}" in res.stdout and "AUC [floor p95]" in res.stdout
