"""The benchmark report is made from results files alone: tables with the right numbers, plots, literature apart."""

from __future__ import annotations

from pathlib import Path

from hpcgen.bench.report import render_report
from hpcgen.bench.results import make_result, summarise, write_result

HOST = {"cpu": "test cpu", "cores": 2, "gpu": None, "torch": "2.0", "mpi_library": None, "engine": None}
REAL = sorted((Path(__file__).parents[1] / "benchmarks" / "results").glob("*.json"))
LIT_SOURCE = "Paganini et al. 2018, CaloGAN (PRD 97, 014021)"


def _throughput() -> dict:
    rows = [
        {"generator": "mc", "kind_of_generator": "mc", "energy_gev": 50.0, "batch": 10,
         "samples_per_s": summarise([9.0, 10.0, 11.0]), "fidelity": {"chi2_longitudinal": None}},
        {"generator": "mc", "kind_of_generator": "mc", "energy_gev": 100.0, "batch": 5,
         "samples_per_s": summarise([4.0, 5.0, 6.0]), "fidelity": {"chi2_longitudinal": None}},
        {"generator": "gan", "kind_of_generator": "gan", "energy_gev": None, "batch": 128, "device": "cpu",
         "samples_per_s": summarise([990.0, 1000.0, 1010.0]), "fidelity": {"chi2_longitudinal": 1.23}},
    ]
    literature = [{"source": LIT_SOURCE, "generator": "CaloGAN (literature)", "speed_up": 100000.0}]
    return make_result("throughput", {"reference": "mc"}, rows, host=HOST, literature=literature)


def _fused() -> dict:
    t = {"fused": summarise([1.0, 1.1]), "eager": summarise([3.0, 3.0]), "torch.compile": summarise([2.0, 2.0])}
    return make_result("fused_ops", {}, [{"op": "moments", "variant": "power=1", "batch": 16, "time_ms": t}], host=HOST)


def _scaling() -> dict:
    rows = [{"model": "calo", "engine": "ddp", "ranks": p, "mode": "weak", "efficiency": e,
             "samples_per_s_total": summarise([p * e * 2.0])} for p, e in ((1, 1.0), (2, 0.9), (4, 0.8))]
    predictions = [{"ranks": p, "efficiency": 1 - 0.04 * p, "network": "slingshot-11", "mode": "weak", "engine": "ddp",
                    "kind": "prediction"} for p in (1, 2, 4, 8)]
    return make_result("scaling", {}, rows, host=HOST, predictions=predictions)


def _mystery() -> dict:
    return make_result("mystery", {}, [{"name": "x", "a": {"b": summarise([7.0, 8.0, 9.0])}}], host=HOST)


def _write_all(tmp_path: Path) -> list[Path]:
    paths = []
    for name, result in (("tp", _throughput()), ("fused", _fused()), ("scaling", _scaling()), ("mystery", _mystery())):
        write_result(tmp_path / "in" / f"{name}.json", result)
        paths.append(tmp_path / "in" / f"{name}.json")
    return paths


def _section(report: str, heading: str) -> str:
    start = report.index(heading)
    nxt = [i for i in (report.find("\n## ", start + 1), report.find("\n### ", start + 1)) if i != -1]
    return report[start:min(nxt) if nxt else len(report)]


def test_report_from_fixed_results(tmp_path):
    out = tmp_path / "out"
    report_path = render_report(_write_all(tmp_path), out)
    assert report_path == out / "report.md"
    report = report_path.read_text()
    assert report.splitlines()[0].startswith("Benchmark report from 4 results file(s)")
    for name, kind in (("tp", "throughput"), ("fused", "fused_ops"), ("scaling", "scaling"), ("mystery", "mystery")):
        sec = _section(report, f"## {name}.json")
        assert f"kind `{kind}`" in sec and f"in/{name}.json`" in sec
        assert "cpu test cpu, 2 cores, gpu —, torch 2.0" in sec

    speed = _section(report, "### Speed-up at fidelity")
    assert "| gan | gan | cpu | 50.0 | 128 | 1000 | 10.0 | 100 | 1.23 |" in speed  # 1000/s over 10/s
    assert "| gan | gan | cpu | 100 | 128 | 1000 | 5.00 | 200 | 1.23 |" in speed
    measured = _section(report, "## tp.json")
    assert "| mc | mc | — | 50.0 | 10 | 10.0 [9.00–11.0], n=3 | — |" in measured

    assert report.count(LIT_SOURCE) == 1
    assert LIT_SOURCE in _section(report, "### Literature anchors")
    assert "| moments | power=1 | 16 | 1.05 | 3.00 | 2.00 | 2.86 | 1.90 |" in report
    assert "| calo | ddp | weak | 2 | 3.60 [3.60–3.60], n=1 | 0.900 |" in _section(report, "## scaling.json")
    assert "slingshot-11" in _section(report, "### Predictions")
    assert "| x | 8.00 [7.00–9.00], n=3 |" in _section(report, "## mystery.json") and "| name | a.b |" in report

    pngs = {p.name: p.stat().st_size for p in out.glob("*.png")}
    assert set(pngs) == {"tp_throughput.png", "fused_speedups.png", "scaling_efficiency.png"}
    assert all(size > 1000 for size in pngs.values())
    for name in pngs:
        assert f"]({name})" in report


def test_report_from_committed_results(tmp_path):
    report = render_report(REAL, tmp_path).read_text()
    assert report.startswith(f"Benchmark report from {len(REAL)} results file(s)")
    for path in REAL:
        assert f"## {path.name}" in report
    assert "(could not draw" not in report
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)


def test_a_fidelity_result_renders_one_verdict_table_per_generator_with_floors(tmp_path):
    def row(gen, group, metric, value, p95):
        return {"generator": gen, "energy_gev": None, "group": group, "metric": metric,
                "value": summarise([value, value]), "floor_p50": p95 / 2, "floor_p95": p95,
                "within_floor_p95": value <= p95, "half_size": 1000}

    rows = [row("cascade", "10 GeV", "S_e_vis_over_e_p", 0.02, 0.03), row("gflash", "10 GeV", "S_e_vis_over_e_p", 0.2, 0.03),
            row("gflash", "pooled", "AUC_high_level", 0.93, 0.52)]
    path = tmp_path / "fid.json"
    write_result(path, make_result("fidelity", {"reference": "cascade"}, rows, host=HOST))
    text = render_report([path], tmp_path / "out").read_text()
    assert "### `cascade` vs `cascade`" in text and "### `gflash` vs `cascade`" in text
    assert "| S_e_vis_over_e_p | 0.0200 [0.0300] ✓ | — |" in text
    assert "| S_e_vis_over_e_p | 0.200 [0.0300] | — |" in text and "| AUC_high_level | — | 0.930 [0.520] |" in text
