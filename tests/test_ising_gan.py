"""The temperature-conditioned Ising DCGAN: exact ±1 output with a straight-through gradient, a discriminator exactly
invariant to the spin flip and to lattice translations (circular padding), exactly symmetrised generation, the
Ising fidelity monitor, `hpcgen train ising` (one process with the monitor, resume, two ranks on both engines),
`hpcgen generate` into a file `hpcgen validate ising` accepts, and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hpcgen.data.ising_file import ising_attrs, open_ising, write_ising_file
from hpcgen.fidelity.ising import summarise
from hpcgen.fidelity.monitor import ISING_TARGETS, quick_score_ising
from hpcgen.models import build_gan, count_parameters, flops_per_sample, ising_sampler, model_summary
from hpcgen.models import ising_dcgan
from hpcgen.physics import ising_observables as obs
from hpcgen.seeding import stream
from hpcgen.sim.ising import run_chain

from conftest import mpirun_cmd, require_horovod, run_cli

L = 8
TEMPS = (2.0, 3.0)
THIN = 10  # sweeps; Metropolis τ_int ≤ 3.6 sweeps at L = 8 for these T: ≈ independent samples


def metropolis(seed: int, n: int, size: int = L, temps=TEMPS) -> tuple[np.ndarray, np.ndarray]:
    spins = [run_chain("metropolis", size, T, n, THIN, 300, stream(seed, 0, t)).spins for t, T in enumerate(temps)]
    return np.concatenate(spins), np.repeat(np.asarray(temps, dtype=np.float64), n)


def write_ising(path: Path, n: int = 24, size: int = L, temps=TEMPS, seed: int = 0) -> Path:
    spins, temperature = metropolis(seed, n, size, temps)
    k = len(temps)  # τ attributes of the right shape: the trainer does not read them
    attrs = ising_attrs("metropolis", size, seed, temps, thin=THIN, thermalise=300, tau_int_E=np.full(k, 1.0),
                        tau_int_E_err=np.full(k, 0.1), tau_int_absM=np.full(k, 1.5),
                        tau_int_absM_err=np.full(k, 0.1), pilot_sweeps=4096, tau_reliable=True)
    return write_ising_file(path, spins, temperature, attrs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _batch(b: int = 6, seed: int = 0, size: int = L):
    gen = torch.Generator().manual_seed(seed)
    spins = torch.where(torch.rand(b, size, size, generator=gen) < 0.5, 1.0, -1.0)
    temperature = 1.5 + 2.0 * torch.rand(b, generator=gen)
    return spins, temperature, torch.randn(b, 64, generator=gen)


# --- the networks -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 16])
def test_networks_map_noise_and_temperature_to_lattices_and_lattices_to_one_logit(size):
    g, d = build_gan("ising", L=size)
    spins, t, z = _batch(size=size)
    out = g(z, t)
    assert out.shape == (6, size, size) and d(spins, t).shape == (6,) and d(out, t).shape == (6,)
    hot, cold = torch.full((6,), 3.5), torch.full((6,), 1.5)
    assert not torch.equal(g.tanh_output(z, hot), g.tanh_output(z, cold))  # conditioned on T
    assert not torch.allclose(d(spins, hot), d(spins, cold))
    with pytest.raises(ValueError, match="multiple of 4"):
        build_gan("ising", L=10)
    with pytest.raises(ValueError, match="temperature must have shape"):
        g(z, t[:3])


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_generator_emits_exactly_plus_minus_one_the_sign_of_its_tanh_field(mode):
    g, _ = build_gan("ising", L=L)
    g.train(mode == "train")
    _, t, z = _batch(64)
    field = g.tanh_output(z, t)
    spins = g(z, t)
    assert field.abs().max() < 1 and not torch.isin(field, torch.tensor([-1.0, 1.0])).all()  # the read-out matters
    assert torch.equal(spins, torch.where(field >= 0, 1.0, -1.0))
    assert torch.isin(spins, torch.tensor([-1.0, 1.0])).all()


def test_straight_through_gradient_is_the_tanh_gradient():
    g, _ = build_gan("ising", L=L)
    _, t, z = _batch()
    weights = torch.randn(6, L, L, generator=torch.Generator().manual_seed(2))

    def grads(out):
        g.zero_grad()
        (weights * out).sum().backward()
        return [p.grad.clone() for p in g.parameters() if p.grad is not None]

    through_sign, through_tanh = grads(g(z, t)), grads(g.tanh_output(z, t))
    assert len(through_sign) == len(through_tanh) == len(list(g.parameters()))
    assert any(x.abs().sum() > 0 for x in through_sign)
    for a, b in zip(through_sign, through_tanh):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bernoulli_readout_draws_each_spin_with_mean_equal_to_the_field_and_its_gradient_is_the_fields():
    g, _ = build_gan("ising", L=L, readout="bernoulli")
    _, t, z = _batch()
    with pytest.raises(ValueError, match="needs site_uniforms"):
        g(z, t)
    field = g.tanh_output(z, t).detach()
    gen = torch.Generator().manual_seed(3)
    draws = torch.stack([g(z, t, torch.rand(6, L, L, generator=gen)).detach() for _ in range(4000)])
    assert torch.isin(draws, torch.tensor([-1.0, 1.0])).all()
    # E[s | φ] = φ: over 4000 draws the per-site mean has standard error ≤ 1/√4000 ≈ 0.016
    assert (draws.mean(0) - field).abs().max() < 6 / 4000**0.5
    assert not torch.equal(draws[0], draws[1])  # the uniforms matter, not only the field's sign
    u = torch.rand(6, L, L, generator=gen)
    torch.testing.assert_close(g(z, t, u), torch.where(u < (1 + g.tanh_output(z, t)) / 2, 1.0, -1.0))
    weights = torch.randn(6, L, L, generator=gen)

    def grads(out):
        g.zero_grad()
        (weights * out).sum().backward()
        return [p.grad.clone() for p in g.parameters()]

    for a, b in zip(grads(g(z, t, u)), grads(g.tanh_output(z, t))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_sampler_draws_the_bernoulli_readouts_uniforms_after_the_noise():
    g, _ = build_gan("ising", L=L, readout="bernoulli")
    g.eval()
    temperature = np.full(50, 3.0)
    out = ising_sampler(g, {"L": L, "readout": "bernoulli"}, torch.device("cpu"), torch.Generator().manual_seed(5))(
        temperature)
    gen = torch.Generator().manual_seed(5)
    z, u = torch.randn(50, g.latent_dim, generator=gen), torch.rand(50, L, L, generator=gen)
    with torch.no_grad():
        raw = g(z, torch.as_tensor(temperature, dtype=torch.float32), u).numpy().astype(np.int8)
    for i in range(50):  # each sample is a flip and translation of the generator's draw from those uniforms
        assert any(np.array_equal(out[i], sign * np.roll(raw[i], (-a, -b), axis=(0, 1)))
                   for sign in (1, -1) for a in range(L) for b in range(L))


def test_discriminator_is_exactly_flip_invariant_in_training_and_eval_mode():
    _, d = build_gan("ising", L=L)
    spins, t, _ = _batch()
    d.eval()
    torch.testing.assert_close(d(spins, t), d(-spins, t), rtol=0, atol=1e-6)
    # the network before the orbit average is not invariant: the average over {s, −s} makes D so
    rt = ising_dcgan.reduced_temperature(t)
    assert (d._logit(spins, rt) - d._logit(-spins, rt)).abs().max() > 1e-4
    d.train()  # spectral norm updates its power iteration per call: s and −s in one call share the weights
    both = d(torch.cat([spins, -spins]), torch.cat([t, t]))
    torch.testing.assert_close(both[:6], both[6:], rtol=0, atol=1e-6)


def test_discriminator_is_invariant_to_every_lattice_translation_because_it_pads_circularly(monkeypatch):
    _, d = build_gan("ising", L=L)
    d.eval()
    spins, t, _ = _batch()
    ref = d(spins, t)
    for shift in [(1, 0), (0, 1), (3, 5), (7, 2)]:
        torch.testing.assert_close(d(torch.roll(spins, shift, dims=(1, 2)), t), ref, rtol=0, atol=1e-5)
    # the same network with zero padding (a lattice with a boundary) is not translation invariant
    def zero_padded(self, h):
        p = self.dilation[0]
        return F.conv2d(F.pad(h, (p, p, p, p)), self.weight, self.bias, dilation=self.dilation)

    monkeypatch.setattr(ising_dcgan.CircularConv2d, "forward", zero_padded)
    assert (d(torch.roll(spins, (1, 0), dims=(1, 2)), t) - d(spins, t)).abs().max() > 1e-4


def test_generator_convolutions_commute_with_translations_of_the_lattice():
    g, _ = build_gan("ising", L=L)
    _, t, _ = _batch()
    h = torch.randn(6, ising_dcgan.G_CHANNELS[0], L // 4, L // 4, generator=torch.Generator().manual_seed(3))
    e = g.embed(ising_dcgan.reduced_temperature(t))
    # one cell of the L/4 grid is 4 lattice sites after the two ×2 upsamplings
    shifted = g.body(torch.roll(h, (1, 0), dims=(2, 3)), e)
    torch.testing.assert_close(shifted, torch.roll(g.body(h, e), (4, 0), dims=(1, 2)))


def test_sampler_emits_int8_spins_each_a_random_flip_and_translation_of_the_generator_output():
    g, _ = build_gan("ising", L=L)
    g.eval()
    n = 400
    temperature = np.linspace(1.5, 3.5, n)
    out = ising_sampler(g, {"L": L}, torch.device("cpu"), torch.Generator().manual_seed(5))(temperature)
    assert out.dtype == np.int8 and out.shape == (n, L, L) and set(np.unique(out).tolist()) == {-1, 1}
    z = torch.randn(n, g.latent_dim, generator=torch.Generator().manual_seed(5))  # the sampler's first draw
    with torch.no_grad():
        raw = g(z, torch.as_tensor(temperature, dtype=torch.float32)).numpy().astype(np.int8)
    flips, shifts = [], set()
    for i in range(n):
        found = [(sign, a, b) for sign in (1, -1) for a in range(L) for b in range(L)
                 if np.array_equal(out[i], sign * np.roll(raw[i], (-a, -b), axis=(0, 1)))]
        assert found, f"sample {i} is not a flip and translation of the generator's output"
        if raw[i].sum() != 0:  # m ≠ 0: whether it was flipped is unambiguous
            flips.append(np.sign(out[i].sum()) != np.sign(raw[i].sum()))
        shifts.update((a, b) for _, a, b in found)
    assert 0.4 < np.mean(flips) < 0.6 and len(flips) > n // 2
    assert len(shifts) > L * L // 2


def test_flops_and_parameters_follow_the_layer_arithmetic_and_T_C_is_the_exact_one():
    from hpcgen.physics.ising_exact import T_C

    assert ising_dcgan.T_C == T_C
    g, d = build_gan("ising", L=16)
    summary = model_summary("ising", L=16)
    assert summary["generator_params"] == count_parameters(g) and summary["discriminator_params"] == count_parameters(d)
    linear = sum(m.in_features * m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear))
    sizes = {id(g.up[0]): 8, id(g.up[1]): 16, id(g.out): 16}  # each convolution runs at its lattice side
    conv = sum(9 * c.in_channels * c.out_channels * sizes[id(c)] ** 2 for c in (*g.up, g.out))
    assert summary["generator_flops_per_sample"] == 2 * (linear + conv)
    assert flops_per_sample(g, "ising") == summary["generator_flops_per_sample"] and g.training
    # the Bernoulli read-out draws and compares; it adds no multiply-adds
    assert flops_per_sample(build_gan("ising", L=16, readout="bernoulli")[0], "ising") == 2 * (linear + conv)
    with pytest.raises(ValueError, match="expects an IsingGenerator"):
        flops_per_sample(build_gan("cosmo", image_size=16)[0], "ising")


# --- the monitor's score ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ref_sample():
    return summarise(*metropolis(seed=1, n=3000), "ref", max_configs=200)


def test_quick_score_passes_an_independent_sample_and_fails_one_with_flipped_spins(ref_sample):
    spins, temperature = metropolis(seed=2, n=3000)
    same = quick_score_ising(ref_sample, summarise(spins, temperature, "same", max_configs=200), classifier=True)
    assert set(ISING_TARGETS) <= set(same) and set(same["targets_resolvable"]) == set(ISING_TARGETS)
    for t, row in same["per_temperature"].items():
        sel_r, sel_t = ref_sample.temperature == float(t), temperature == float(t)
        # an independent Monte Carlo sample is within each target or within the reference's own scatter
        for key, target in ISING_TARGETS.items():
            k = key.split("_max")[0]
            assert abs(row[f"{k}_rel_err"]) <= max(target, row[f"{k}_floor_p95"]), (t, k, row)
        # the estimators of hpcgen.physics.ising_observables
        expect = obs.energy_per_site(spins[sel_t]).mean() / ref_sample.energy[sel_r].mean() - 1
        assert row["E_rel_err"] == pytest.approx(expect, rel=1e-12)
        expect = obs.susceptibility_per_site(obs.abs_magnetisation_per_site(spins[sel_t]), float(t), L) / \
            obs.susceptibility_per_site(ref_sample.abs_magnetisation[sel_r], float(t), L) - 1
        assert row["chi_rel_err"] == pytest.approx(expect, rel=1e-12)
    flipped = np.where(np.random.default_rng(3).random(spins.shape) < 0.05, -spins, spins).astype(np.int8)
    wrong = quick_score_ising(ref_sample, summarise(flipped, temperature, "wrong", max_configs=200), classifier=True)
    assert wrong["E_max_abs_rel_err"] > ISING_TARGETS["E_max_abs_rel_err"] and not wrong["meets_targets"]
    assert wrong["AUC_pooled"] > same["AUC_pooled"] + 0.1 and abs(same["AUC_pooled"] - 0.5) < 0.1


# --- training, generation, validation ---------------------------------------------------------------------------
def _train(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "ising", "--data", str(data), "--out", str(out), "--steps", str(steps), "--batch-size", "4",
            "--checkpoint-every", "1", "--seed", "3", "--no-progress", *extra]


@pytest.fixture(scope="module")
def ising_files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ising_gan")
    write_ising(root / "train.h5", n=24, seed=0)
    write_ising(root / "held_out.h5", n=16, seed=1)
    write_ising(root / "l16.h5", n=8, size=16, seed=2)
    write_ising(root / "l10.h5", n=8, size=10, seed=2)
    write_ising(root / "hot.h5", n=8, temps=(2.0, 4.0), seed=3)
    return root


@pytest.fixture(scope="module")
def trained(ising_files) -> Path:
    """One step of `hpcgen train ising` (the run directory the generate and resume tests start from)."""
    res = run_cli(*_train(ising_files / "train.h5", ising_files / "run", 1))
    assert res.returncode == 0, res.stderr[-2000:]
    return ising_files / "run"


def test_train_ising_writes_the_monitor_scores_into_metrics(ising_files, tmp_path):
    res = run_cli(*_train(ising_files / "train.h5", tmp_path / "run", 2, "--eval-data",
                          str(ising_files / "held_out.h5"), "--eval-every", "2"))
    assert res.returncode == 0 and "trained ising to step 2" in res.stdout, res.stderr[-2000:]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [x["eval"] for x in lines if "eval" in x]
    assert [x["step"] for x in lines if "eval" in x] == [0, 2] and [x["step"] for x in lines if "loss_D" in x] == [1, 2]
    for e in evals:
        assert set(ISING_TARGETS) | {"meets_targets", "AUC_pooled"} <= set(e) and e["temperatures"] == list(TEMPS)
        assert all(r["n_ref"] == r["n_test"] == 16 for r in e["per_temperature"].values())
    assert evals[0] != evals[1]  # the generator changed between the scores
    # the paperwork a shipped run gets from benchmarks/ising_gan.sh: its monitor curve and its provenance
    from hpcgen.bench.shipped_gan import plot_training_curve, write_provenance

    assert plot_training_curve(tmp_path / "run", "ising").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prov = write_provenance(tmp_path / "run", Path(__file__).resolve().parents[1], 4).read_text()
    assert "Ising DCGAN checkpoint run@2" in prov and f"L = {L}, bernoulli read-out, feature matching 1.0" in prov
    assert "8 configurations seen" in prov and f"configuration classifier AUC {evals[-1]['AUC_pooled']:.3g}" in prov
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["model_options"] == {"L": L, "readout": "bernoulli"} and ckpt["data_meta"]["temperatures"] == list(TEMPS)


def test_resume_refuses_training_data_of_another_lattice_size(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    res = run_cli(*_train(trained.parent / "l16.h5", run, 2, "--resume"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "holds an Ising GAN for 8×8 lattices, but --data has L = 16" in res.stderr
    res = run_cli(*_train(trained.parent / "train.h5", run, 2, "--resume", "--spin-readout", "sign"))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "holds an Ising GAN with the bernoulli read-out; resume it with --spin-readout bernoulli" in res.stderr


def test_a_resumed_ising_run_ends_bit_identical_to_an_uninterrupted_one(trained, tmp_path):
    run, straight = tmp_path / "run", tmp_path / "straight"
    shutil.copytree(trained, run)
    res = run_cli(*_train(trained.parent / "train.h5", run, 2, "--resume"))
    assert res.returncode == 0 and "trained ising to step 2" in res.stdout, res.stderr[-2000:]
    res = run_cli(*_train(trained.parent / "train.h5", straight, 2))
    assert res.returncode == 0, res.stderr[-2000:]
    resumed, uninterrupted = (torch.load(r / "checkpoint.pt", weights_only=False)["state"] for r in (run, straight))
    assert resumed["ema_updates"] == uninterrupted["ema_updates"] == 2  # the weight average is kept and resumed
    for net in ("G", "D", "G_ema"):
        for k, v in uninterrupted[net].items():
            assert torch.equal(resumed[net][k], v), f"{net}.{k} differs after resuming"


def test_generate_writes_an_ising_file_that_validate_ising_accepts(trained, tmp_path):
    gen = tmp_path / "gen.h5"
    res = run_cli("generate", "--checkpoint", str(trained), "--n", "20", "--temperatures", "2.0,3.0", "--batch-size",
                  "16", "--out", str(gen), "--no-progress")
    assert res.returncode == 0 and "20 configurations at each of 2 temperatures" in res.stdout, res.stderr[-2000:]
    with open_ising(gen) as f:
        a = f.attrs
        assert a["generator"] == "gan:run@1" and a["algorithm"] == "gan" and a["trained_on"] == "metropolis"
        assert f.spins.shape == (40, L, L) and f.spins.dtype == np.int8
        assert f.temperature.tolist() == [2.0] * 20 + [3.0] * 20
        assert np.all(a["tau_int_E"] == 0.5) and np.all(a["tau_int_absM_err"] == 0) and np.all(a["thin"] == 1)
    res = run_cli("validate", "ising", "--ref", str(trained.parent / "held_out.h5"), "--test", str(gen), "--out",
                  str(tmp_path / "val"), "--no-classifier", "--resamples", "4", "--bootstrap", "10")
    assert res.returncode == 0, res.stderr[-2000:]
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert metrics["temperatures"] == list(TEMPS) and metrics["test"]["algorithm"] == "gan"


@pytest.mark.parametrize("make_args, words", [
    (lambda d: ["generate", "--checkpoint", str(d / "run"), "--n", "2", "--temperatures", "0,2", "--out",
                str(d / "g.h5")], "--temperatures: expected A:B:K"),
    (lambda d: ["generate", "--checkpoint", str(d / "run"), "--n", "2", "--temperatures=-1:2:3", "--out",
                str(d / "g.h5")], "temperatures > 0"),
    (lambda d: ["generate", "--checkpoint", str(d / "run"), "--n", "2", "--energy-gev", "20", "--out",
                str(d / "g.h5")], "--energy-gev: only applies to a 3DGAN checkpoint; this one is an ising"),
    (lambda d: _train(d / "calo.h5", d / "r", 1), "schema is 'hpcgen.calo/1', expected 'hpcgen.ising/1'"),
    (lambda d: _train(d / "l10.h5", d / "r", 1), "L that is a multiple of 4 (e.g. 16, 32, 64), got L = 10"),
    (lambda d: _train(d / "train.h5", d / "r", 1, "--sigma8-conditioning"), "--sigma8-conditioning: only applies"),
    (lambda d: _train(d / "train.h5", d / "r", 1, "--spin-readout", "coin"), "--spin-readout: expected sign or bernoulli, got 'coin'"),
    (lambda d: ["train", "calo", "--data", str(d / "calo.h5"), "--out", str(d / "r"), "--steps", "1",
                "--spin-readout", "sign"], "--spin-readout: only applies to `train ising`"),
    (lambda d: _train(d / "train.h5", d / "r", 1, "--eval-data", str(d / "l16.h5"), "--eval-every", "1"),
     "holds 16×16 configurations, the training data 8×8"),
    (lambda d: _train(d / "train.h5", d / "r", 1, "--eval-data", str(d / "hot.h5"), "--eval-every", "1"),
     "temperature 4 outside the training range [2, 3]"),
])
def test_bad_ising_input_is_one_line_exit_2(trained, calo_file, tmp_path, make_args, words):
    d = tmp_path
    for name in ("train.h5", "l16.h5", "l10.h5", "hot.h5"):
        os.symlink(trained.parent / name, d / name)
    os.symlink(trained, d / "run")
    os.symlink(calo_file, d / "calo.h5")
    res = run_cli(*make_args(d))
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert not (d / "g.h5").exists() and not (d / "r" / "checkpoint.pt").exists()


@pytest.mark.mpi
@pytest.mark.parametrize("engine", ["ddp", "horovod"])
def test_two_rank_ising_training_keeps_parameters_identical_on_both_ranks(ising_files, tmp_path, engine):
    if engine == "horovod":
        require_horovod()
    cmd = mpirun_cmd(2, *_train(ising_files / "train.h5", tmp_path / "run", 3, "--engine", engine,
                                "--batch-size", "2"))
    cmd[1:1] = ["-x", f"MASTER_PORT={free_port()}"]  # never the default 29500 a concurrent run may hold
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="1", HPCGEN_NO_PROGRESS="1"))
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    digests = summary["param_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1] and summary["params_identical_across_ranks"]
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3]
    assert all(m["world_size"] == 2 and m["engine"] == engine for m in lines)
    assert all(np.isfinite([m["loss_D"], m["loss_G"]]).all() for m in lines)


def test_feature_matching_compares_moments_within_each_temperature_only():
    from hpcgen.train.tasks import per_temperature_moment_gap

    gen = torch.Generator().manual_seed(4)
    temperature = torch.tensor([2.0] * 6 + [3.0] * 4 + [3.5])  # 3.5: one sample, no spread: left out
    real = torch.randn(11, 2, generator=gen)
    assert per_temperature_moment_gap(real, real, temperature) == 0
    within = real[torch.tensor([5, 4, 3, 2, 1, 0, 9, 8, 7, 6, 10])]  # shuffled inside each temperature
    assert per_temperature_moment_gap(within, real, temperature) < 1e-12
    across = real[torch.tensor([0, 1, 2, 3, 4, 9, 6, 7, 8, 5, 10])]  # one swap between 2.0 and 3.0
    assert per_temperature_moment_gap(across, real, temperature) > 1e-3
    shifted = real.clone()
    shifted[6:10, 1] += 0.5  # |m| at T = 3.0 off by 0.5: gap = (4/10) · (0.5² / 2 features)
    torch.testing.assert_close(per_temperature_moment_gap(shifted, real, temperature), torch.tensor(0.4 * 0.125))
    spread = real.clone()
    spread[:6, 0] = real[:6, 0].mean() + 2 * (real[:6, 0] - real[:6, 0].mean())  # e at T = 2.0 twice as wide
    expected = 0.6 * (real[:6, 0].std() ** 2) / 2
    torch.testing.assert_close(per_temperature_moment_gap(spread, real, temperature), expected)
