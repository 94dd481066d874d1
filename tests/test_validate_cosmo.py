"""validate_cosmo and `hpcgen validate cosmo`: metrics.json layout, plots, report, and that the statistics see a
change of amplitude while passing samples of one distribution."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from conftest import run_cli

from hpcgen.cli import main
from hpcgen.data.cosmo_file import COSMOGAN_COSMOLOGY, cosmo_attrs, write_cosmo_file
from hpcgen.jobs.validate_cosmo import PLOTS, SCHEMA, validate_cosmo
from hpcgen.physics.map_statistics import gaussian_field

PIXELS = 32
PIXEL_RAD = math.radians(3.5) / PIXELS
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cl_kappa(ell):
    """A lensing-like spectrum: ℓ(ℓ+1)C_ℓ/2π rising to ~1e-4, damped at high ℓ so the maps are smooth."""
    return 1e-9 * (ell / 1000.0) ** -1.2 * np.exp(-((ell / 1500.0) ** 2))


def maps(n: int, seed: int) -> np.ndarray:
    return gaussian_field(cl_kappa, n, PIXELS, PIXEL_RAD, np.random.default_rng(seed)).astype(np.float32)


@pytest.fixture(scope="module")
def ref_maps():
    return maps(48, seed=1)


@pytest.fixture(scope="module")
def same_run(tmp_path_factory, ref_maps):
    out = tmp_path_factory.mktemp("same")
    return out, validate_cosmo(ref_maps, maps(40, seed=2), PIXEL_RAD, out, "gauss-A", "gauss-B", "a.h5", "b.h5",
                               chunk_size=16)


@pytest.fixture(scope="module")
def scaled_run(tmp_path_factory, ref_maps):
    out = tmp_path_factory.mktemp("scaled")
    return out, validate_cosmo(ref_maps, 1.3 * ref_maps, PIXEL_RAD, out, "gauss", "gauss×1.3", plots=False)


def test_metrics_json_has_the_schema_keys_and_both_sample_descriptions(same_run):
    out, returned = same_run
    m = json.loads((out / "metrics.json").read_text())
    assert m == returned
    assert m["schema"] == SCHEMA == "hpcgen.validate/1" and m["domain"] == "cosmo"
    assert m["ref"] == {"file": "a.h5", "label": "gauss-A", "n": 48}
    assert m["test"] == {"file": "b.h5", "label": "gauss-B", "n": 40}
    ps = m["power_spectrum"]
    nb = len(ps["ell"])
    assert nb > 5 and all(len(ps[k]) == nb for k in ("ref_mean", "test_mean", "rel_err", "modes"))
    assert m["power_spectrum_rel_err"] == ps["rel_err"]
    assert set(m["chi2_power_spectrum"]) == {"chi2", "dof", "pvalue"} and m["chi2_power_spectrum"]["dof"] == nb
    nt = len(m["thresholds"]["nu"])
    ks = m["ks"]
    assert len(ks["power_spectrum"]) == nb and len(ks["peaks"]) == nt
    assert len(ks["pixel_histogram"]) == len(m["pixel_histogram"]["edges"]) - 1
    assert set(ks["minkowski"]) == {"V0", "V1", "V2"} and all(len(v) == nt for v in ks["minkowski"].values())
    for row in ks["power_spectrum"] + ks["peaks"] + ks["minkowski"]["V2"]:
        assert set(row) == {"statistic", "pvalue"} and 0.0 <= row["pvalue"] <= 1.0
    assert 0.0 <= m["separation_power"]["pixel_histogram"] <= 1.0
    assert m["maps"]["pixels"] == PIXELS and m["maps"]["field_deg"] == pytest.approx(3.5)


def test_every_plot_is_a_valid_png_and_embedded_in_the_report(same_run):
    out, m = same_run
    report = (out / "report.md").read_text()
    assert set(m["plots"]) == set(PLOTS.values())
    for name in m["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({name})" in report, name
    for text in ("gauss-A", "gauss-B", "a.h5", "| 48 |", "| 40 |", "rel. error", "KS p"):
        assert text in report


def test_same_distribution_gives_small_spectrum_errors_and_high_ks_pvalues(same_run):
    m = same_run[1]
    ps = m["power_spectrum"]
    # cosmic variance of the difference of two sample means, relative: √(2/modes)·√(1/N_ref + 1/N_test)
    sigma = np.sqrt(2.0 / np.array(ps["modes"])) * math.sqrt(1 / 48 + 1 / 40)
    assert np.all(np.abs(ps["rel_err"]) < 4 * sigma)
    assert m["chi2_power_spectrum"]["pvalue"] > 1e-3
    for name, s in m["ks_summary"].items():
        assert s["n_pvalue_above_0.05"] >= 0.8 * s["n"], name
    assert m["separation_power"]["pixel_histogram"] < 0.01


def test_amplitude_times_1p3_gives_rel_err_0p69_in_every_bin_and_fails_the_tests(scaled_run, same_run):
    m = scaled_run[1]
    np.testing.assert_allclose(m["power_spectrum_rel_err"], 1.3**2 - 1, rtol=1e-5)
    assert m["chi2_power_spectrum"]["pvalue"] < 1e-10
    assert m["ks_summary"]["power_spectrum"]["n_pvalue_above_0.05"] < m["ks_summary"]["power_spectrum"]["n"] // 2
    assert m["ks_summary"]["minkowski_V0"]["min_pvalue"] < 1e-6
    # thresholds are absolute (ν·σ_ref): the louder maps have more high peaks
    nu = np.array(m["thresholds"]["nu"])
    high = nu >= 2
    assert np.all(np.array(m["peaks"]["test_mean"])[high] >= np.array(m["peaks"]["ref_mean"])[high])
    assert m["separation_power"]["pixel_histogram"] > 10 * same_run[1]["separation_power"]["pixel_histogram"]
    assert m["plots"] == [] and not list(scaled_run[0].glob("*.png"))


def test_streaming_h5py_datasets_in_chunks_matches_in_memory_arrays(tmp_path, ref_maps):
    test = maps(21, seed=3)
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["ref"], f["test"] = ref_maps, test
    with h5py.File(tmp_path / "data.h5", "r") as f:
        streamed = validate_cosmo(f["ref"], f["test"], PIXEL_RAD, tmp_path / "h5", chunk_size=5, plots=False)
    in_memory = validate_cosmo(ref_maps, test, PIXEL_RAD, tmp_path / "mem", chunk_size=1000, plots=False)
    for key in ("power_spectrum", "chi2_power_spectrum", "peaks", "minkowski", "separation_power", "ks"):
        np.testing.assert_allclose(leaves(streamed[key]), leaves(in_memory[key]), rtol=1e-9, atol=1e-15, err_msg=key)


def leaves(x) -> list[float]:
    """The numbers of a nested metrics entry, in a fixed order."""
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in leaves(x[k])]
    if isinstance(x, list):
        return [v for item in x for v in leaves(item)]
    return [float(x)]


def test_maps_of_another_size_are_refused_in_one_line(tmp_path, ref_maps):
    with pytest.raises(ValueError, match=r"^test maps are 16×16 pixels but the reference maps are 32×32[^\n]*$"):
        validate_cosmo(ref_maps, ref_maps[:, :16, :16], PIXEL_RAD, tmp_path)


def write_maps(path, kappa, generator: str, field_deg: float = 3.5):
    attrs = cosmo_attrs(generator, COSMOGAN_COSMOLOGY, 1.0, field_deg, kappa.shape[-1], seed=0)
    return write_cosmo_file(path, kappa, attrs)


def test_cli_validate_cosmo_end_to_end_with_real_files(tmp_path, ref_maps):
    write_maps(tmp_path / "ref.h5", ref_maps, "lognormal")
    write_maps(tmp_path / "test.h5", maps(30, seed=4), "gan:abc")
    res = run_cli("validate", "cosmo", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "test.h5"),
                  "--out", str(tmp_path / "val"), "--max-maps", "24")
    assert res.returncode == 0, res.stderr
    assert "report.md" in res.stdout and "χ²" in res.stdout
    m = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert m["domain"] == "cosmo"
    assert m["ref"] == {"file": str(tmp_path / "ref.h5"), "label": "lognormal", "n": 24}
    assert m["test"] == {"file": str(tmp_path / "test.h5"), "label": "gan:abc", "n": 24}
    assert all((tmp_path / "val" / p).read_bytes()[:8] == PNG_MAGIC for p in m["plots"])


def test_cli_refuses_a_calorimeter_file_as_reference_in_one_line(tmp_path, calo_file, ref_maps, capsys):
    write_maps(tmp_path / "test.h5", ref_maps, "lognormal")
    code = main(["validate", "cosmo", "--ref", str(calo_file), "--test", str(tmp_path / "test.h5"),
                 "--out", str(tmp_path / "val")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "hpcgen.calo/1" in err and str(calo_file) in err
    assert not (tmp_path / "val").exists()


def test_cli_refuses_maps_of_another_pixel_scale_in_one_line(tmp_path, ref_maps, capsys):
    write_maps(tmp_path / "ref.h5", ref_maps, "lognormal")
    write_maps(tmp_path / "test.h5", ref_maps, "lognormal", field_deg=5.0)
    code = main(["validate", "cosmo", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "test.h5"),
                 "--out", str(tmp_path / "val")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "pixel_arcmin" in err and "test.h5" in err
