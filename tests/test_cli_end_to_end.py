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
    # same generator, different seeds: statistically compatible sampling fractions
    assert metrics["separation_power"]["sampling_fraction"] < 0.3
    assert (tmp_path / "val" / "report.md").read_text().count(".png") >= 3
    res = run_cli("export", "calochallenge", str(tmp_path / "ref.h5"), str(tmp_path / "cc.h5"))
    assert res.returncode == 0, res.stderr
    with h5py.File(tmp_path / "cc.h5", "r") as h5:
        assert h5["showers"].shape == (40, 25 ** 3)
        assert set(np.unique(h5["incident_energies"][:, 0])) == {20000.0, 80000.0}
