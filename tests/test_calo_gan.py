"""The calorimeter GAN that reaches fidelity: conditioning, a fidelity gain from a tiny run, bf16 against fp32."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from hpcgen.data.calo_file import open_calo
from hpcgen.models import build_gan
from hpcgen.models.calo_factorised import physics_features

from conftest import hpcgen_cmd, write_small_calo

SF = 1.8  # a sampling fraction in network units (GeV × 100), as the trainer measures it on cascade data


def _run(cmd, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def _factorised(**kw):
    return build_gan("calo", arch="factorised", sampling_fraction=SF, threshold=2e-3, **kw)


def test_factorised_generator_starts_with_the_visible_energy_of_the_data_at_every_energy():
    g, _ = _factorised()
    energies = torch.tensor([10.0, 50.0, 100.0, 200.0, 500.0])
    x = g(torch.randn(5, g.latent_dim), energies)
    assert x.shape == (5, 25, 25, 25) and bool((x >= 0).all())
    torch.testing.assert_close(x.sum(dim=(1, 2, 3)), SF * energies, rtol=1e-5, atol=0)


def test_factorised_networks_fit_any_calorimeter_and_reject_the_other_architectures_options():
    g, d = build_gan("calo", arch="factorised", image_shape=(8, 9, 11), sampling_fraction=1.0, threshold=1e-3)
    x = g(torch.randn(3, g.latent_dim), torch.tensor([10.0, 20.0, 30.0]))
    assert x.shape == (3, 8, 9, 11)
    assert d(x, torch.tensor([10.0, 20.0, 30.0])).shape == (3,)
    with pytest.raises(ValueError, match="belong to arch '3dgan'"):
        build_gan("calo", arch="factorised", dropout=0.1)
    with pytest.raises(ValueError, match="belong to arch 'factorised'"):
        build_gan("calo", threshold=1.0)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_gan("calo", arch="vae")


def test_physics_features_match_the_numpy_observables():
    from hpcgen.physics.shower_features import energy_moments

    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, (4, 6, 7, 8)) * (rng.random((4, 6, 7, 8)) < 0.5)
    e = np.array([10.0, 20.0, 30.0, 40.0])
    f = physics_features(torch.tensor(x), torch.tensor(e), log_sf=0.0, threshold=0.5,
                         readout="straight-through").double().numpy()
    m = energy_moments(x.astype(np.float32))
    np.testing.assert_allclose(f[:, 0], np.log(x.sum(axis=(1, 2, 3)) / e), rtol=1e-5)
    np.testing.assert_allclose(f[:, 8:], m.profile_z / m.total[:, None], rtol=1e-5)
    z = np.arange(8) - 3.5
    pz = m.profile_z / m.total[:, None]
    np.testing.assert_allclose(f[:, 3], (pz * z).sum(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f[:, 6], np.sqrt((pz * z**2).sum(1) - (pz * z).sum(1) ** 2), rtol=1e-4)
    np.testing.assert_allclose(np.expm1(f[:, 7]), (x > 0.5).sum(axis=(1, 2, 3)), rtol=1e-5)  # the exact count
    soft = physics_features(torch.tensor(x), torch.tensor(e), log_sf=0.0, threshold=0.5).double().numpy()
    assert np.abs(np.expm1(soft[:, 7]) - (x > 0.5).sum(axis=(1, 2, 3))).max() > 0.5  # the soft count is not exact


def test_straight_through_readout_is_exact_forward_and_passes_the_soft_gradient():
    from hpcgen.models.calo_factorised import hit_indicator, soft_hits

    x = torch.tensor([0.2, 0.9, 1.1, 5.0], requires_grad=True)
    hard = hit_indicator(x, 1.0, "straight-through")
    assert hard.tolist() == [0.0, 0.0, 1.0, 1.0]
    hard.sum().backward()
    g_st = x.grad.clone()
    x.grad = None
    soft_hits(x, 1.0).sum().backward()
    torch.testing.assert_close(g_st, x.grad)
    assert (g_st > 0).all()
    with pytest.raises(ValueError, match="readout must be one of soft, straight-through"):
        hit_indicator(x, 1.0, "hard")


def _visible_energy_slope(path: Path) -> float:
    """Least-squares slope b of E_vis = a + b·E_p (GeV/GeV); the small calorimeter leaks, so a ≠ 0."""
    with open_calo(path) as f:
        e = np.asarray(f.energy_gev, dtype=np.float64)
        vis = np.asarray(f.ecal[...], dtype=np.float64).sum(axis=(1, 2, 3))
    return float(np.polyfit(e, vis, 1)[0])


@pytest.mark.slow
def test_after_a_short_training_generated_visible_energy_follows_the_primary_energy(tmp_path):
    """The 3DGAN trained on main misses this (slope −0.0005 against the data's 0.0068); the default recipe must not."""
    data = write_small_calo(tmp_path / "train.h5", n=256)
    run = tmp_path / "run"
    res = _run(hpcgen_cmd("train", "calo", "--data", str(data), "--out", str(run), "--steps", "60",
                          "--batch-size", "16", "--seed", "1"))
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "gan.h5"
    res = _run(hpcgen_cmd("generate", "--checkpoint", str(run), "--n", "200", "--energy-gev", "10,100",
                          "--seed", "2", "--out", str(out)))
    assert res.returncode == 0, res.stderr[-2000:]
    with open_calo(out) as f:
        e = np.asarray(f.energy_gev)
        vis = np.asarray(f.ecal[...], dtype=np.float64).sum(axis=(1, 2, 3))
    slope_gan = (vis[e == 100].mean() - vis[e == 10].mean()) / 90.0
    slope_data = _visible_energy_slope(data)
    assert slope_gan == pytest.approx(slope_data, rel=0.20)


@pytest.mark.slow
def test_a_tiny_training_run_improves_a_fidelity_metric(tmp_path):
    data = write_small_calo(tmp_path / "train.h5", n=512, seed=0)
    held_out = write_small_calo(tmp_path / "held_out.h5", n=256, seed=1)
    run = tmp_path / "run"
    res = _run(hpcgen_cmd("train", "calo", "--data", str(data), "--out", str(run), "--steps", "300",
                          "--batch-size", "16", "--lr", "1e-3", "--eval-data", str(held_out), "--eval-every", "150",
                          "--seed", "0"))
    assert res.returncode == 0, res.stderr[-2000:]
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert [e["step"] for e in evals] == [0, 150, 300]
    # the fitted start has the response and the mean shape right, but every shower is the mean shape; what training
    # must teach first is the shower-to-shower spread of the centroids and widths (measured: median S/floor of the
    # six moments 4.1 at step 0, 1.7 at 150 and 2.4 at 300 on this setup)
    moments = [f"S_{a}_{m}_mm" for a in ("x", "y", "depth") for m in ("mean", "std")]
    first, last = (float(np.median([e["eval"]["S_over_floor"][k] for k in moments])) for e in (evals[0], evals[-1]))
    assert last < 0.75 * first
    assert evals[-1]["samples_seen"] == 300 * 16 and evals[-1]["wall_s"] > evals[0]["wall_s"]
    # the paperwork a shipped run gets from benchmarks/calo_gan.sh: its monitor curve and its provenance
    from hpcgen.bench.shipped_gan import plot_training_curve, write_provenance

    assert plot_training_curve(run).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prov = write_provenance(run, Path(__file__).resolve().parents[1], 16).read_text()
    assert "checkpoint run@300" in prov and "1 ranks x 1 thread" in prov and "4800 showers seen" in prov
    assert f"last at step 300: high-level classifier AUC {evals[-1]['eval']['AUC_high_level']:.3g}" in prov


def _trained_like(seed: int = 0):
    """A factorised pair with weights moved off their initialisation (so the response head and noise inputs act)."""
    torch.manual_seed(seed)
    g, d = _factorised()
    with torch.no_grad():
        for p in g.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return g.eval(), d.eval()


def test_bf16_generator_matches_fp32_on_a_fixed_input():
    """Stated tolerance: E_vis within 1 %, layer fractions within 0.01 absolute, centroids and widths within
    0.05 cells — well inside the per-shower spread of the data (σ(E_vis)/E_vis ≈ 2–6 %, widths ≈ 1 cell)."""
    g, _ = _trained_like()
    z, e = torch.randn(16, g.latent_dim), torch.tensor([10.0, 50.0, 100.0, 500.0] * 4)
    with torch.no_grad():
        torch.manual_seed(1)
        x32 = g(z, e)
        torch.manual_seed(1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x16 = g(z, e)
    assert x16.dtype == torch.float32  # the softmax and the energy product stay fp32
    f32, f16 = physics_features(x32, e, 0.0, 2e-3), physics_features(x16, e, 0.0, 2e-3)
    torch.testing.assert_close(x16.sum(dim=(1, 2, 3)), x32.sum(dim=(1, 2, 3)), rtol=1e-2, atol=0)
    torch.testing.assert_close(f16[:, 1:7], f32[:, 1:7], rtol=0, atol=0.05)
    torch.testing.assert_close(f16[:, 8:], f32[:, 8:], rtol=0, atol=0.01)
