"""The user's path through the CLI as one process: simulate → validate → export, with real files."""

from __future__ import annotations

import json

import h5py
import numpy as np

from conftest import run_cli


def test_simulate_validate_export_as_a_single_process(tmp_path):
    for name, seed in (("ref.h5", 1), ("test.h5", 2)):
        res = run_cli("simulate", "calo", "--generator", "gflash", "--n", "40", "--energy-gev", "20,80",
                      "--seed", str(seed), "--out", str(tmp_path / name))
        assert res.returncode == 0, res.stderr
        assert (tmp_path / name.replace(".h5", ".r0.h5")).exists()
    res = run_cli("validate", "calo", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "test.h5"),
                  "--out", str(tmp_path / "val"))
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert metrics["schema"] == "hpcgen.validate/1" and metrics["domain"] == "calo"
    assert metrics["ref"]["n"] == 40 and metrics["test"]["n"] == 40
    # same generator, different seeds: the classifier cannot tell them apart, E_vis/E_p agrees
    pooled = metrics["groups"][-1]["metrics"]
    assert pooled["AUC_high_level"]["value"] < 0.7
    assert pooled["S_e_vis_over_e_p"]["value"] <= 1.5 * pooled["S_e_vis_over_e_p"]["floor_p95"]
    assert (tmp_path / "val" / "report.md").read_text().count(".png") >= 3
    assert "wide floor" in res.stderr  # 20 showers per half: the floor's width is stated
    res = run_cli("export", "calochallenge", str(tmp_path / "ref.h5"), str(tmp_path / "cc.h5"))
    assert res.returncode == 0, res.stderr
    with h5py.File(tmp_path / "cc.h5", "r") as h5:
        assert h5["showers"].shape == (40, 25 ** 3)
        assert set(np.unique(h5["incident_energies"][:, 0])) == {20000.0, 80000.0}


def test_files_of_different_geometries_or_disjoint_energies_are_one_line_errors_naming_both(tmp_path):
    def sim(name, energy, *extra):
        res = run_cli("simulate", "calo", "--generator", "gflash", "--n", "12", "--energy-gev", energy, "--seed", "1",
                      "--out", str(tmp_path / name), *extra)
        assert res.returncode == 0, res.stderr
        return tmp_path / name

    a, b = sim("a.h5", "20"), sim("b.h5", "80")
    c = sim("c.h5", "20", "--impact-jitter-mm", "2.0")
    for ref, test, words in ((a, b, "share none"), (a, c, "geometry")):
        res = run_cli("validate", "calo", "--ref", str(ref), "--test", str(test), "--out", str(tmp_path / "v"))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, res.stderr
        assert words in lines[0] and str(ref) in lines[0] and str(test) in lines[0]
        assert not (tmp_path / "v").exists()
