"""validate_cosmo and `hpcgen validate cosmo`: metrics.json layout, plots, report, and that the statistics see a
change of amplitude while passing samples of one distribution; bootstrap floors, the valid ℓ range (declared
resolution, shot noise) and the smoothing before peaks and Minkowski functionals."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from conftest import run_cli

from hpcgen.cli import main
from hpcgen.data.cosmo_file import COSMOGAN_COSMOLOGY, cosmo_attrs, pm_limit_attrs, write_cosmo_file
from hpcgen.jobs.report_common import md
from hpcgen.fidelity.cosmo import DEFAULT_SMOOTHING_ARCMIN, NOISE_FRACTION, VERDICT, GeneratorLimits
from hpcgen.jobs.report_common import SCHEMA
from hpcgen.jobs.validate_cosmo import PLOTS, validate_cosmo
from hpcgen.ops import cl_numpy
from hpcgen.physics.map_statistics import gaussian_field
from hpcgen.sim.cosmo_pm import RESOLUTION_CRITERION, PMConfig, resolution_ell, shot_noise
from hpcgen.sim.cosmo_spec import CosmoMapSpec

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


# ------------------------------------------------------------------------------------- floors, valid ℓ, smoothing
@pytest.fixture(scope="module")
def halves_run(tmp_path_factory):
    sample = maps(96, seed=5)
    return validate_cosmo(sample[:48], sample[48:], PIXEL_RAD, tmp_path_factory.mktemp("halves"), plots=False)


def verdict(m: dict) -> dict:
    return {row["key"]: row for row in m["verdict"]}


def test_report_opens_with_the_verdict_table_and_metrics_carry_floors(same_run):
    out, m = same_run
    lines = (out / "report.md").read_text().splitlines()
    assert lines[2] == "| metric | value | floor p50 | floor p95 | within floor p95 |"
    assert len(m["verdict"]) == len(VERDICT) and all(f"| {md(r['metric'])} |" in "\n".join(lines[4:14])
                                                     for r in m["verdict"])
    assert m["floors"]["n_resamples"] == 20 and m["floors"]["half_size"] == 24  # 48 reference maps → halves of 24
    for row in m["verdict"]:
        assert row["floor_p50"] <= row["floor_p95"] and isinstance(row["within_floor_p95"], bool), row
    assert m["ell_valid_range"] == [m["power_spectrum"]["edges"][0], m["power_spectrum"]["edges"][-1]]  # no limits
    assert m["smoothing"]["sigma_arcmin"] == DEFAULT_SMOOTHING_ARCMIN == 2.0
    # 24 maps per half are few: one warning line that states the floors' width
    (warning,) = m["warnings"]
    assert "\n" not in warning and "halves of 24 maps" in warning and "p50–p95" in warning
    assert f"**Warning:** {md(warning)}" in lines


def test_two_halves_of_one_sample_are_within_the_floor(halves_run):
    for row in halves_run["verdict"]:
        assert row["within_floor_p95"] is True, row


def test_a_sample_against_itself_is_within_the_floor(tmp_path, ref_maps):
    m = validate_cosmo(ref_maps, ref_maps, PIXEL_RAD, tmp_path, plots=False)
    for row in m["verdict"]:
        assert row["within_floor_p95"] is True, row


def test_a_ten_percent_amplitude_change_is_beyond_the_floor(tmp_path, ref_maps):
    m = validate_cosmo(ref_maps, 1.1 * maps(48, seed=6), PIXEL_RAD, tmp_path, plots=False)
    rows = verdict(m)
    # (the max |rel. err.| over bins is dominated by the noisiest low-ℓ bins of 4 modes: not a sharp test of 21 %)
    for key in ("cl_chi2_per_bin_valid", "S_pixel_histogram", "D_V0", "D_V1"):
        assert rows[key]["within_floor_p95"] is False, rows[key]
        assert rows[key]["value"] > rows[key]["floor_p95"]


def test_power_spectrum_claims_are_restricted_to_the_declared_resolution(tmp_path, ref_maps):
    """White noise adds power only where the reference 'does not resolve' (ℓ > 700): the valid-range C_ℓ metrics
    stay within the floor, the labelled full-range ones do not."""
    white = np.random.default_rng(8).standard_normal((48, PIXELS, PIXELS)) * (math.sqrt(2e-11) / PIXEL_RAD)
    m = validate_cosmo(ref_maps, maps(48, seed=7) + white, PIXEL_RAD, tmp_path, plots=False,
                       ref_limits=GeneratorLimits(ell_min=50.0, ell_max=700.0, criterion="declared for the test"))
    edges = np.array(m["power_spectrum"]["edges"])
    lo, hi = m["ell_valid_range"]
    assert lo == edges[0] and hi <= 700 and hi == edges[edges <= 700][-1]
    assert m["power_spectrum"]["valid"] == [bool(e <= 700) for e in edges[1:]]
    assert m["ell_valid"]["declared"]["ref"]["ell_max"] == 700.0
    rows = verdict(m)
    assert rows["cl_max_abs_rel_err_valid"]["within_floor_p95"] and rows["cl_chi2_per_bin_valid"]["within_floor_p95"]
    assert not rows["cl_chi2_per_bin_full"]["within_floor_p95"]
    assert f"valid ℓ {lo:.0f}–{hi:.0f}" in rows["cl_max_abs_rel_err_valid"]["metric"]


def test_shot_noise_above_the_fraction_of_the_signal_ends_the_valid_range(tmp_path, ref_maps):
    spectrum = cl_numpy(np.zeros((1, PIXELS, PIXELS)), PIXEL_RAD)
    signal = ref_maps_spectrum = cl_numpy(ref_maps, PIXEL_RAD).cl.mean(axis=0)
    noisy = spectrum.ell > 500
    noise = np.where(noisy, 2.0, 0.3) * NOISE_FRACTION * signal
    lim = GeneratorLimits(noise_edges=spectrum.edges, noise_ell=spectrum.ell, noise_cl=noise,
                          noise_cl_err=0.1 * noise, noise_n_maps=4)
    m = validate_cosmo(ref_maps, maps(20, seed=9), PIXEL_RAD, tmp_path, plots=False, ref_limits=lim)
    assert m["ell_valid"]["bins"] == list(range(int(np.argmax(noisy))))
    ratio = np.array(m["ell_valid"]["noise_to_signal"])
    # noise/signal with signal = reference mean − its noise
    np.testing.assert_allclose(ratio, noise / (ref_maps_spectrum - noise), rtol=1e-6)
    assert m["power_spectrum"]["noise"]["ref"]["how"] == "measured on these bins"
    # noise measured on another binning is interpolated onto the validation's bins
    other = cl_numpy(np.zeros((1, PIXELS, PIXELS)), PIXEL_RAD, bins=7)
    coarse = GeneratorLimits(noise_edges=other.edges, noise_ell=other.ell, noise_cl=np.full(7, 1e-12),
                             noise_cl_err=np.full(7, 1e-13))
    m2 = validate_cosmo(ref_maps, maps(20, seed=9), PIXEL_RAD, tmp_path / "b", plots=False, test_limits=coarse)
    assert m2["power_spectrum"]["noise"]["test"]["how"].startswith("interpolated")
    np.testing.assert_allclose(m2["power_spectrum"]["noise"]["test"]["cl"], 1e-12, rtol=1e-9)


def test_smoothing_scale_changes_peaks_and_minkowski_but_not_the_spectrum(tmp_path, ref_maps):
    test = maps(20, seed=10)
    a = validate_cosmo(ref_maps, test, PIXEL_RAD, tmp_path / "a", plots=False, smoothing_arcmin=0.0)
    b = validate_cosmo(ref_maps, test, PIXEL_RAD, tmp_path / "b", plots=False, smoothing_arcmin=10.0)
    assert a["power_spectrum"] == b["power_spectrum"] and a["pixel_histogram"] == b["pixel_histogram"]
    assert a["smoothing"]["border_pixels"] == 0 and b["smoothing"]["border_pixels"] == 5  # ceil(3·10′/6.56′)
    assert b["thresholds"]["sigma_ref"] < a["thresholds"]["sigma_ref"] == pytest.approx(
        a["thresholds"]["sigma_ref_unsmoothed"])
    assert a["peaks"] != b["peaks"]
    with pytest.raises(ValueError, match="smoothing_arcmin"):
        validate_cosmo(ref_maps, test, PIXEL_RAD, tmp_path / "c", plots=False, smoothing_arcmin=40.0)


def test_cli_reads_a_pm_files_shot_noise_and_resolution_and_takes_the_smoothing_flag(tmp_path, ref_maps):
    spec, cfg = CosmoMapSpec(pixels=PIXELS), PMConfig(n_particles_side=8)
    noise = shot_noise(spec, cfg, np.random.default_rng(0), n_maps=4)
    attrs = cosmo_attrs("pm", COSMOGAN_COSMOLOGY, 1.0, 3.5, PIXELS, seed=0,
                        **pm_limit_attrs(noise, resolution_ell(spec, cfg), RESOLUTION_CRITERION))
    write_cosmo_file(tmp_path / "pm.h5", ref_maps, attrs)
    write_maps(tmp_path / "test.h5", maps(30, seed=4), "lognormal")
    res = run_cli("validate", "cosmo", "--ref", str(tmp_path / "pm.h5"), "--test", str(tmp_path / "test.h5"),
                  "--out", str(tmp_path / "val"), "--smoothing-arcmin", "1.5")
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert res.stderr.count("hpcgen: warning:") == len(m["warnings"]) >= 1  # 48 reference maps: halves of 24
    assert m["smoothing"]["sigma_arcmin"] == 1.5
    assert m["ell_valid"]["declared"]["ref"]["ell_max"] == pytest.approx(resolution_ell(spec, cfg)[1])
    ref_noise = m["power_spectrum"]["noise"]["ref"]
    assert ref_noise["how"] == "measured on these bins" and ref_noise["cl_poisson"] == pytest.approx(noise.cl_poisson)
    np.testing.assert_allclose(ref_noise["cl"], noise.cl, rtol=1e-12)
    assert "test" not in m["power_spectrum"]["noise"]  # a lognormal file declares nothing
    bad = run_cli("validate", "cosmo", "--ref", str(tmp_path / "pm.h5"), "--test", str(tmp_path / "test.h5"),
                  "--out", str(tmp_path / "val2"), "--smoothing-arcmin", "-1")
    assert bad.returncode == 2 and "--smoothing-arcmin" in bad.stderr and bad.stderr.count("\n") == 1
