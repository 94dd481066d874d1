"""validate_calo to the CaloChallenge standard: a sample against itself sits at the floor, a 2 % energy-scale shift
and a half-layer depth shift are caught, files and the verdict table are written, data streams from h5py."""

from __future__ import annotations

import json
from dataclasses import replace

import h5py
import numpy as np
import pytest

from hpcgen.fidelity.calo import FidelityConfig
from hpcgen.fidelity.classifier import ClassifierConfig
from hpcgen.jobs.validate_calo import PLOTS, validate_calo
from hpcgen.jobs.report_common import SCHEMA
from hpcgen.physics.calo_geometry import SamplingCalorimeter

GEOM = SamplingCalorimeter(n_layers=8, n_cells_xy=7, cell_size_mm=5.1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The full procedure at test size: 20 resamples of every histogram floor, k = 5 folds; fewer classifier seeds and
# classifier-floor resamples and a narrow DNN, so that it runs in seconds on 2 cores.
FAST = FidelityConfig(resamples=20, classifier_resamples=4, cross_check=False,
                      classifier=ClassifierConfig(hidden=32, seeds=2, epochs=60, patience=8))


def toy_showers(n: int, seed: int, *, x_shift_mm: float = 0.0, scale: float = 1.0, depth_shift_layers: float = 0.0,
                energies=(10.0, 50.0), resolution: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-profile × Gaussian-core showers with cell fluctuations and a per-shower response of relative width
    ``resolution`` around a 1 % sampling fraction × ``scale``; the profile can be moved ``depth_shift_layers``."""
    rng = np.random.default_rng(seed)
    e = rng.choice(np.asarray(energies), n)
    t = (GEOM.layer_centres_mm() + depth_shift_layers * GEOM.layer_thickness_mm) / GEOM.x0_eff_mm
    c = GEOM.cell_centres_mm()
    tmax = np.log(e * 1e3 / GEOM.ec_eff_mev) - 0.5
    lp = t[None, :] ** (0.5 * tmax[:, None]) * np.exp(-0.5 * t[None, :])
    px = np.exp(-0.5 * ((c - x_shift_mm) / 6.0) ** 2)
    py = np.exp(-0.5 * (c / 6.0) ** 2)
    cube = px[None, :, None, None] * py[None, None, :, None] * lp[:, None, None, :]
    cube *= rng.gamma(4.0, 0.25, cube.shape)
    response = 0.01 * scale * e * (1.0 + resolution * rng.standard_normal(n))
    cube *= (response / cube.sum(axis=(1, 2, 3)))[:, None, None, None]
    return cube.astype(np.float32), e


def _run(tmp_path, test_kwargs, name, n_ref=600, n_test=300, config=FAST, **kw):
    ref, e_ref = toy_showers(n_ref, seed=1)
    test, e_test = toy_showers(n_test, seed=2, **test_kwargs)
    return tmp_path / name, validate_calo(ref, e_ref, test, e_test, GEOM, tmp_path / name, "toy-G4", "toy-GAN",
                                          "ref.h5", "gan.h5", config=config, chunk_size=128, **kw)


@pytest.fixture(scope="module")
def same_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("same"), {}, "same", config=replace(FAST, cross_check=True))


def _pooled(m):
    return {r["metric"]: r for r in m["groups"][-1]["verdict"]}, m["groups"][-1]["metrics"]


def test_a_sample_against_another_of_the_same_law_scores_chance_and_sits_within_its_floor(same_run):
    verdict, every = _pooled(same_run[1])
    assert same_run[1]["groups"][-1]["label"] == "pooled"
    assert verdict["AUC_high_level"]["value"] == pytest.approx(0.5, abs=0.06)
    assert verdict["AUC_high_level_gbdt"]["value"] == pytest.approx(0.5, abs=0.06)
    for name in ("S_e_vis_over_e_p", "S_layer_energy_median", "S_depth_mean_mm", "S_x_std_mm"):
        assert verdict[name]["within_floor_p95"], (name, verdict[name])
    # floors are distributions over ≥ 20 resamples with p50 <= p95
    for name, row in every.items():
        assert len(row["floor_values"]) == (4 if "AUC" in name or "JSD" in name else 20)
        assert row["floor_p50"] <= row["floor_p95"]


@pytest.mark.parametrize("shift", [{"scale": 1.02}, {"depth_shift_layers": 0.5}], ids=["2% energy scale", "half layer"])
def test_a_small_shift_is_caught_by_the_classifier_and_the_histograms(tmp_path, shift):
    _, m = _run(tmp_path, shift, "shifted", config=replace(FAST, fpd=False))  # FPD: tests/test_fidelity_metrics.py
    verdict, every = _pooled(m)
    assert verdict["AUC_high_level"]["value"] >= 0.7
    assert not verdict["AUC_high_level"]["within_floor_p95"]
    key = "S_e_vis_over_e_p" if "scale" in shift else "S_depth_mean_mm"
    assert every[key]["value"] > every[key]["floor_p95"]


def test_metrics_json_report_and_plots_are_written_with_the_verdict_first(same_run):
    out, returned = same_run
    m = json.loads((out / "metrics.json").read_text())
    assert m == returned
    assert m["schema"] == SCHEMA and m["domain"] == "calo"
    assert m["ref"] == {"file": "ref.h5", "label": "toy-G4", "n": 600}
    assert m["test"] == {"file": "gan.h5", "label": "toy-GAN", "n": 300}
    assert [g["label"] for g in m["groups"]] == ["10 GeV", "50 GeV", "pooled"]
    report = (out / "report.md").read_text()
    lines = report.splitlines()
    assert lines[2].startswith("## Verdict") and lines[4] == "| metric | value | floor p50 | floor p95 | within floor p95 |"
    assert lines[6].startswith("| AUC_high_level |")
    for name in PLOTS.values():
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name})" in report, name
    g10 = m["groups"][0]
    assert g10["response"]["ref"]["mean"] == pytest.approx(0.01, rel=0.01)
    assert g10["response"]["ref"]["rel_width"] == pytest.approx(0.01, rel=0.2)


def test_few_showers_warn_with_the_width_of_the_floor(tmp_path):
    warnings = []
    _run(tmp_path, {}, "few", n_ref=120, n_test=60, plots=False, warn=warnings.append)
    assert any("wide floor" in w and "p95" in w for w in warnings)


def test_streaming_h5py_datasets_in_chunks_matches_in_memory_arrays(tmp_path):
    ref, e_ref = toy_showers(80, seed=4)
    test, e_test = toy_showers(40, seed=5, x_shift_mm=2.0)
    cfg = FidelityConfig(resamples=3, classifier=ClassifierConfig(hidden=8, seeds=1, epochs=3), cross_check=False)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["ref/ECAL"], f["ref/energy"], f["test/ECAL"], f["test/energy"] = ref, e_ref, test, e_test
    with h5py.File(tmp_path / "data.h5", "r") as f:
        streamed = validate_calo(f["ref/ECAL"], f["ref/energy"], f["test/ECAL"], f["test/energy"], GEOM,
                                 tmp_path / "h5", config=cfg, chunk_size=7, plots=False)
    in_memory = validate_calo(ref, e_ref, test, e_test, GEOM, tmp_path / "mem", config=cfg, plots=False)
    assert streamed["groups"] == in_memory["groups"]
    assert streamed["plots"] == [] and not list((tmp_path / "h5").glob("*.png"))


def test_showers_that_do_not_match_the_geometry_are_rejected_with_the_expected_shape(tmp_path):
    ref, e_ref = toy_showers(5, seed=6)
    with pytest.raises(ValueError, match=r"test \(test\) ECAL has shape \(5, 7, 7, 4\)"):
        validate_calo(ref, e_ref, ref[..., :4], e_ref, GEOM, tmp_path)
    with pytest.raises(ValueError, match=r"reference \(ref\) energy"):
        validate_calo(ref, e_ref[:3], ref, e_ref, GEOM, tmp_path)
    bad = ref.copy()
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"test \(test\) showers 0\.\.4: cell energies must be finite"):
        validate_calo(ref, e_ref, bad, e_ref, GEOM, tmp_path)


def test_the_low_level_classifier_reads_the_voxels_and_sees_a_transverse_shift(tmp_path):
    cfg = FidelityConfig(resamples=3, classifier_resamples=3, low_level=True, cross_check=False, fpd=False,
                         classifier=ClassifierConfig(hidden=16, seeds=2, epochs=40, patience=5))
    _, m = _run(tmp_path, {"x_shift_mm": 3.0}, "voxels", n_ref=300, n_test=150, config=cfg, plots=False)
    verdict, _ = _pooled(m)
    assert verdict["AUC_low_level"]["value"] > 0.75 and not verdict["AUC_low_level"]["within_floor_p95"]
    assert 0.4 < verdict["AUC_low_level"]["floor_p50"] < 0.6
