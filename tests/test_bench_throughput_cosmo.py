"""Throughput at fidelity for the weak-lensing generators: PM N-body, lognormal and a (tiny, real) CosmoGAN run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcgen.bench.results import check_result
from hpcgen.bench.throughput_cosmo import FIDELITY_KEYS, CosmoThroughputConfig, headline, run_cosmo_throughput
from hpcgen.dist.world import World
from hpcgen.errors import UserError

from conftest import run_cli, write_small_calo, write_small_cosmo


def _train(tmp: Path, domain: str) -> Path:
    data = (write_small_cosmo(tmp / "cosmo.h5", n=8, size=32) if domain == "cosmo"
            else write_small_calo(tmp / "calo.h5", n=8))
    run = tmp / f"{domain}_run"
    res = run_cli("train", domain, "--data", str(data), "--batch-size", "2", "--steps", "1", "--out", str(run),
                  "--device", "cpu", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    return run


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cosmo_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("cosmo"), "cosmo")


def _cfg(out: Path, checkpoint: Path, **kw) -> CosmoThroughputConfig:
    base = {"pm_particles_side": 16, "pm_steps": 10, "gan_batches": (1, 4), "seconds": 0.1, "repeats": 2,
            "fidelity_n": 4, "seed": 1}
    return CosmoThroughputConfig(out=out, checkpoint=checkpoint, **(base | kw))


def test_every_generator_gets_a_rate_and_a_fidelity_against_pm(tmp_path, cosmo_run):
    lines = []
    result = run_cosmo_throughput(_cfg(tmp_path / "tp.json", cosmo_run), World(), log=lines.append)
    check_result(result, "run_cosmo_throughput")
    check_result(json.loads((tmp_path / "tp.json").read_text()), "tp.json")
    cfg = result["config"]
    assert cfg["domain"] == "cosmo" and cfg["reference"] == "pm" and cfg["fidelity_n"] == 4
    assert cfg["map_spec"]["pixels"] == 32 and cfg["map_spec"]["field_deg"] == 3.5
    assert cfg["matmul_peak_flops_per_s"] > 0
    assert set(cfg["fidelity_floor"]) == set(FIDELITY_KEYS)
    assert cfg["fidelity_floor"]["max_abs_rel_err_power_spectrum_full"] > 0  # two independent PM samples differ
    # 16³ particles: the shot noise exceeds 10 % of the signal in every bin, so no C_ℓ claim is valid
    assert cfg["fidelity_ell_valid_range"] is None and cfg["pm"]["plane_mesh_side"] == 64
    assert cfg["fidelity_floor"]["max_abs_rel_err_power_spectrum"] is None

    rows = result["rows"]
    gan = "gan:" + cosmo_run.name + "@1"
    main = {r["generator"]: r for r in rows if r.get("scan") != "batch"}
    assert set(main) == {"pm", "lognormal", gan}
    assert main["pm"]["kind_of_generator"] == "mc" and main[gan]["kind_of_generator"] == "gan"
    assert main[gan]["flops_per_sample"] > 0 and main[gan]["fraction_of_matmul_peak"] > 0
    assert sorted(r["batch"] for r in rows if r.get("scan") == "batch") == [1, 4]
    for r in rows:
        assert r["samples_per_s"]["median"] > 0 and r["samples_per_s"]["n"] == 2
        assert r["energy_gev"] is None and r["device"] == "cpu" and r["batch"] >= 1
        assert set(r["fidelity"]) == set(FIDELITY_KEYS)
    assert all(v == 0 for v in main["pm"]["fidelity"].values())
    for name in ("lognormal", gan):
        assert main[name]["fidelity"]["max_abs_rel_err_power_spectrum_full"] > 0
        assert main[name]["fidelity"]["max_abs_rel_err_power_spectrum"] is None  # no valid ℓ bin (above)
        assert 0 < main[name]["fidelity"]["ks_pixel_histogram"] <= 1

    head = headline(result)
    assert head[1:] == lines[-len(head) + 1:]  # logged after the run
    for name in main:
        assert any(line.startswith(name) for line in head[1:]), name
    assert any("floor" in line for line in head)
    assert head[-1].endswith("resolves: none (n/a)")


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="--checkpoint") as exc:
        _cfg(tmp_path / "tp.json", tmp_path / "nowhere")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("field, value, flag", [("pixels", 40, "--pixels"), ("fidelity_n", 1, "--fidelity-n"),
                                                ("gan_batches", (0,), "--gan-batches"), ("repeats", 0, "--repeats"),
                                                ("pm_particles_side", 2, "--pm-particles-side")])
def test_bad_settings_are_one_line_errors_naming_the_flag(tmp_path, cosmo_run, field, value, flag):
    with pytest.raises(UserError, match=flag) as exc:
        _cfg(tmp_path / "tp.json", cosmo_run, **{field: value})
    assert "\n" not in str(exc.value)


def test_pixels_other_than_the_gans_are_refused(tmp_path, cosmo_run):
    with pytest.raises(UserError, match="--pixels: the GAN .* makes 32×32 maps") as exc:
        run_cosmo_throughput(_cfg(tmp_path / "tp.json", cosmo_run, pixels=64), World(), log=lambda line: None)
    assert "\n" not in str(exc.value)


def test_a_calorimeter_checkpoint_is_refused(tmp_path):
    run = _train(tmp_path, "calo")
    with pytest.raises(UserError, match="--checkpoint: .* is a calo run") as exc:
        run_cosmo_throughput(_cfg(tmp_path / "tp.json", run), World(), log=lambda line: None)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "tp.json").exists()
