"""validate_calo: metrics.json schema, plots and report, and that its distances see a real difference."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hpcgen.jobs.validate_calo import PLOTS, SCHEMA, validate_calo
from hpcgen.physics.calo_geometry import SamplingCalorimeter
from hpcgen.physics.shower_features import SCALAR_FEATURES

GEOM = SamplingCalorimeter(n_layers=8, n_cells_xy=7, cell_size_mm=5.1)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROFILE_FEATURES = ("longitudinal_profile", "x_profile", "y_profile", "cell_energy_spectrum")


def toy_showers(n: int, seed: int, x_shift_mm: float = 0.0, energies=(10.0, 50.0)) -> tuple[np.ndarray, np.ndarray]:
    """Gamma-profile × Gaussian-core showers with gamma-distributed cell fluctuations, ≈1 % sampling fraction."""
    rng = np.random.default_rng(seed)
    e = rng.choice(np.asarray(energies), n)
    t = GEOM.layer_centres_mm() / GEOM.x0_eff_mm
    c = GEOM.cell_centres_mm()
    tmax = np.log(e * 1e3 / GEOM.ec_eff_mev) - 0.5
    lp = t[None, :] ** (0.5 * tmax[:, None]) * np.exp(-0.5 * t[None, :])
    px = np.exp(-0.5 * ((c - x_shift_mm) / 6.0) ** 2)
    py = np.exp(-0.5 * (c / 6.0) ** 2)
    cube = px[None, :, None, None] * py[None, None, :, None] * lp[:, None, None, :]
    cube *= (0.01 * e / cube.sum(axis=(1, 2, 3)))[:, None, None, None]
    cube *= rng.gamma(4.0, 0.25, cube.shape)
    return cube.astype(np.float32), e


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shifted")
    ref, e_ref = toy_showers(120, seed=1)
    test, e_test = toy_showers(70, seed=2, x_shift_mm=4.0)
    m = validate_calo(ref, e_ref, test, e_test, GEOM, out, "toy-G4", "toy-GAN", "ref.h5", "gan.h5", chunk_size=32)
    return out, m


@pytest.fixture(scope="module")
def identical_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("identical")
    ref, e_ref = toy_showers(90, seed=3)
    return out, validate_calo(ref, e_ref, ref.copy(), e_ref.copy(), GEOM, out)


def test_metrics_json_has_the_schema_keys_and_both_sample_descriptions(shifted_run):
    out, returned = shifted_run
    m = json.loads((out / "metrics.json").read_text())
    assert m == returned
    assert m["schema"] == SCHEMA and m["domain"] == "calo"
    assert m["ref"] == {"file": "ref.h5", "label": "toy-G4", "n": 120}
    assert m["test"] == {"file": "gan.h5", "label": "toy-GAN", "n": 70}
    for k in SCALAR_FEATURES:
        assert 0.0 <= m["separation_power"][k] <= 1.0
        assert m["wasserstein1"][k] >= 0.0
        assert set(m["ks"][k]) == {"statistic", "pvalue"} and 0.0 <= m["ks"][k]["pvalue"] <= 1.0
    for k in PROFILE_FEATURES:
        assert 0.0 <= m["separation_power"][k] <= 1.0 and k in m["wasserstein1"]


def test_discrete_primary_energies_get_one_sampling_fraction_row_each(shifted_run):
    sf = shifted_run[1]["sampling_fraction_by_energy"]
    assert sf["discrete"] is True
    assert [row["energy_gev"] for row in sf["bins"]] == [10.0, 50.0]
    assert sum(row["ref"]["n"] for row in sf["bins"]) == 120
    assert sum(row["test"]["n"] for row in sf["bins"]) == 70
    for row in sf["bins"]:
        assert row["ref"]["mean"] == pytest.approx(0.01, rel=0.05)


def test_every_plot_is_a_valid_png_and_embedded_in_the_report(shifted_run):
    out, m = shifted_run
    report = (out / "report.md").read_text()
    assert set(m["plots"]) == set(PLOTS.values())
    for name in m["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name})" in report, name
    for text in ("toy-G4", "toy-GAN", "ref.h5", "gan.h5", "| 120 |", "| 70 |", "sampling_fraction"):
        assert text in report


def test_identical_inputs_have_zero_separation_power_and_distance(identical_run):
    m = identical_run[1]
    for k, s in m["separation_power"].items():
        assert s == pytest.approx(0.0, abs=1e-12), k
    for k, w in m["wasserstein1"].items():
        assert w == pytest.approx(0.0, abs=1e-9), k
    for k, ks in m["ks"].items():
        assert ks["statistic"] == 0.0 and ks["pvalue"] == pytest.approx(1.0), k


def test_a_transverse_shift_shows_up_in_x_but_not_in_y(shifted_run, identical_run):
    sep, w1 = shifted_run[1]["separation_power"], shifted_run[1]["wasserstein1"]
    assert sep["x_mean_mm"] > 0.9
    assert w1["x_mean_mm"] == pytest.approx(4.0, rel=0.1)
    assert sep["x_profile"] > 10 * sep["y_profile"]
    assert shifted_run[1]["ks"]["x_mean_mm"]["pvalue"] < 1e-6
    assert sep["x_mean_mm"] > identical_run[1]["separation_power"]["x_mean_mm"]


def test_streaming_h5py_datasets_in_chunks_matches_in_memory_arrays(tmp_path):
    continuous = np.geomspace(2.0, 200.0, 200)
    ref, e_ref = toy_showers(50, seed=4, energies=continuous)
    test, e_test = toy_showers(37, seed=5, energies=continuous)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["ref/ECAL"], f["ref/energy"], f["test/ECAL"], f["test/energy"] = ref, e_ref, test, e_test
    with h5py.File(tmp_path / "data.h5", "r") as f:
        streamed = validate_calo(
            f["ref/ECAL"], f["ref/energy"], f["test/ECAL"], f["test/energy"], GEOM, tmp_path / "h5",
            chunk_size=8, plots=False,
        )
    in_memory = validate_calo(ref, e_ref, test, e_test, GEOM, tmp_path / "mem", chunk_size=1000, plots=False)
    for key in ("separation_power", "wasserstein1"):
        assert streamed[key] == pytest.approx(in_memory[key], rel=1e-9, abs=1e-12), key
    assert streamed["ks"] == in_memory["ks"]
    # Many distinct energies: the energy axis is binned (log-spaced) instead of listed.
    sf = streamed["sampling_fraction_by_energy"]
    assert sf["discrete"] is False
    assert sum(row["ref"]["n"] for row in sf["bins"]) == 50 and sum(row["test"]["n"] for row in sf["bins"]) == 37
    assert sf["bins"][0]["energy_lo_gev"] == pytest.approx(min(e_ref.min(), e_test.min()))
    assert streamed["plots"] == [] and not list((tmp_path / "h5").glob("*.png"))


def test_showers_that_do_not_match_the_geometry_are_rejected_with_the_expected_shape(tmp_path):
    ref, e_ref = toy_showers(5, seed=6)
    with pytest.raises(ValueError, match=r"test \(test\) ECAL has shape \(5, 7, 7, 4\)"):
        validate_calo(ref, e_ref, ref[..., :4], e_ref, GEOM, tmp_path)
    with pytest.raises(ValueError, match=r"reference \(ref\) energy"):
        validate_calo(ref, e_ref[:3], ref, e_ref, GEOM, tmp_path)
