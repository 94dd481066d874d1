"""2D Ising Monte Carlo (hpcgen.sim.ising) against exact results, the τ_int estimator, the hpcgen.ising/1 file and
`hpcgen simulate ising` (docs/ising.md).

Monte Carlo checks use the τ-corrected error of the mean (``error_of_mean``) or a blocked jackknife and allow 3σ;
every chain has a fixed seed, so a pass is reproducible. Exact formulas are checked against each other to 1e-10.
"""

from __future__ import annotations

import math
import subprocess

import h5py
import numpy as np
import pytest
from scipy.signal import lfilter

from hpcgen.data.ising_file import ising_attrs, open_ising, write_ising_file
from hpcgen.data.sharded import shard_path
from hpcgen.errors import UserError
from hpcgen.physics.autocorrelation import (blocked_jackknife, error_of_mean, independent_samples_per_s,
                                            integrated_autocorrelation_time, thin_from_tau)
from hpcgen.physics.ising_exact import (T_C, enumeration_observables, kaufman_partition, onsager_energy_per_site,
                                        yang_magnetisation)
from hpcgen.physics.ising_observables import (abs_magnetisation_per_site, binder_cumulant, energy_per_site,
                                              magnetisation_per_site, specific_heat_per_site, spin_correlation,
                                              susceptibility_per_site)
from hpcgen.seeding import stream
from hpcgen.sim.ising import ALGORITHMS, IsingChain, pilot_run, run_chain

from conftest import mpirun_cmd, run_cli

SIGMAS = 3.0


def measured_chain(algorithm: str, L: int, temperature: float, sweeps: int, seed: int, thermalise: int = 1000):
    chain = IsingChain(algorithm, L, temperature, stream(seed, L, int(temperature * 1000)))
    chain.thermalise(thermalise)
    e, m = chain.sweep(sweeps)
    return chain, e, m


def assert_within(value: float, error: float, exact: float, what: str) -> None:
    assert error > 0, what
    assert abs(value - exact) < SIGMAS * error, f"{what}: {value:.6f} ± {error:.2g}, exact {exact:.6f} " \
                                                f"({(value - exact) / error:+.1f}σ)"


# ---------------------------------------------------------------- exact results against each other


@pytest.mark.parametrize("rows, cols", [(4, 4), (3, 5), (5, 3), (4, 3)])
@pytest.mark.parametrize("temperature", [0.7, 1.5, T_C, 3.5, 20.0])
def test_kaufman_partition_function_equals_exact_enumeration(rows, cols, temperature):
    exact = enumeration_observables(temperature, rows, cols)
    kaufman = kaufman_partition(temperature, rows, cols)
    assert kaufman.log_partition == pytest.approx(exact.log_partition, rel=1e-12, abs=1e-10)
    assert abs(kaufman.energy_per_site - exact.energy_per_site) < 1e-10
    assert abs(kaufman.specific_heat_per_site - exact.specific_heat_per_site) < 1e-10


@pytest.mark.parametrize("temperature", [1.0, 1.5, 2.0, 3.5, 10.0])
def test_kaufman_large_lattice_approaches_onsager_away_from_tc(temperature):
    assert abs(kaufman_partition(temperature, 256).energy_per_site - onsager_energy_per_site(temperature)) < 1e-10


def test_onsager_and_yang_known_values():
    assert onsager_energy_per_site(T_C) == pytest.approx(-math.sqrt(2.0), abs=1e-12)
    k = 1.0 / 0.6  # low-temperature series of ln Z/N = 2K + e^{-8K} + 2 e^{-12K} + O(e^{-16K})
    assert onsager_energy_per_site(0.6) == pytest.approx(-2 + 8 * math.exp(-8 * k) + 24 * math.exp(-12 * k),
                                                         abs=1e-9)
    assert yang_magnetisation(T_C) == 0.0 and yang_magnetisation(3.0) == 0.0
    assert yang_magnetisation(0.5) == pytest.approx(1 - 2 * math.exp(-16.0), abs=1e-9)  # m ≈ 1 − 2e^{−8K}
    # near T_c, 1 − sinh(2K)^{-4} ≈ 8√2 K_c t with t = 1 − T/T_c, so m ≈ (8√2 K_c)^{1/8} t^{1/8} ≈ 1.2224 t^{1/8}
    amplitude = (8 * math.sqrt(2) / T_C) ** 0.125
    assert yang_magnetisation(T_C * (1 - 1e-8)) / 1e-1 == pytest.approx(amplitude, rel=1e-6)


def test_enumeration_fluctuations_equal_temperature_derivatives():
    """C_v = d⟨e⟩/dT (fluctuation–dissipation) in the exact 4×4 values: a check of the enumeration itself."""
    h = 1e-5
    for t in (1.5, T_C, 3.0):
        de = (enumeration_observables(t + h).energy_per_site - enumeration_observables(t - h).energy_per_site) / (2 * h)
        assert enumeration_observables(t).specific_heat_per_site == pytest.approx(de, rel=1e-6)


# ---------------------------------------------------------------- observables and the autocorrelation estimator


def test_observables_of_known_configurations():
    up = np.ones((2, 6, 6), dtype=np.int8)
    checker = np.where(np.indices((6, 6)).sum(axis=0) % 2 == 0, 1, -1).astype(np.int8)[None]
    np.testing.assert_array_equal(energy_per_site(up), [-2.0, -2.0])
    np.testing.assert_array_equal(energy_per_site(checker), [2.0])
    np.testing.assert_array_equal(magnetisation_per_site(-up), [-1.0, -1.0])
    np.testing.assert_array_equal(abs_magnetisation_per_site(checker), [0.0])
    np.testing.assert_array_equal(spin_correlation(checker), [1.0, -1.0, 1.0, -1.0])
    assert binder_cumulant(np.array([0.5, -0.5])) == pytest.approx(2 / 3)
    rng = np.random.default_rng(0)
    g = spin_correlation(rng.choice(np.array([-1, 1], dtype=np.int8), size=(200, 16, 16)))
    assert g[0] == 1.0 and np.abs(g[1:]).max() < 0.01
    e = rng.normal(size=1000)
    assert specific_heat_per_site(e, 2.0, 4) == pytest.approx(16 * e.var() / 4)
    assert susceptibility_per_site(-e, 2.0, 4) == pytest.approx(16 * np.abs(e).var() / 2)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_tau_int_of_an_ar1_series_within_its_error(rho):
    n = 1 << 17
    x = lfilter([1.0], [1.0, -rho], np.random.default_rng(11).normal(size=n))
    est = integrated_autocorrelation_time(x)
    exact = (1 + rho) / (2 * (1 - rho))
    assert est.converged and est.reliable and est.window >= 6 * est.tau
    assert abs(est.tau - exact) < SIGMAS * est.error, (est, exact)
    assert est.error / est.tau < 0.05


def test_autocorrelation_helpers():
    assert integrated_autocorrelation_time(np.full(100, 3.0)).tau == 0.5
    assert [thin_from_tau(t) for t in (0.5, 0.51, 2.0, 9.5)] == [1, 2, 4, 19]
    assert independent_samples_per_s(1000.0, 2.5) == 200.0
    x = np.random.default_rng(3).normal(size=20000)  # independent: the jackknife error of the mean is σ/√N
    _, err = blocked_jackknife(np.mean, (x,), n_blocks=100)
    assert err == pytest.approx(x.std() / math.sqrt(len(x)), rel=0.3)
    assert error_of_mean(x, tau=0.5) == pytest.approx(x.std() / math.sqrt(len(x)))


# ---------------------------------------------------------------- the chains


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_chain_samples_are_the_recorded_states_and_reproducible(algorithm):
    a = run_chain(algorithm, 8, 2.5, 20, 3, 50, stream(1, 0))
    b = run_chain(algorithm, 8, 2.5, 20, 3, 50, stream(1, 0))
    c = run_chain(algorithm, 8, 2.5, 20, 3, 50, stream(2, 0))
    assert a.spins.dtype == np.int8 and a.spins.shape == (20, 8, 8) and set(np.unique(a.spins)) <= {-1, 1}
    assert len(a.energy_per_site) == len(a.magnetisation_per_site) == 60
    np.testing.assert_array_equal(energy_per_site(a.spins), a.energy_per_site[2::3])
    np.testing.assert_array_equal(magnetisation_per_site(a.spins), a.magnetisation_per_site[2::3])
    np.testing.assert_array_equal(a.spins, b.spins)
    assert not np.array_equal(a.spins, c.spins)


def test_wolff_sweep_flips_L2_spins_on_average():
    hot = IsingChain("wolff", 8, 1e6, stream(5, 0))  # clusters of one spin: a sweep is exactly L² clusters
    hot.thermalise(100)
    hot.sweep(50)
    assert hot.clusters_per_sweep == 64.0 and hot.spins_flipped == 50 * 64
    chain, _, _ = measured_chain("wolff", 16, T_C, 4000, seed=6)
    assert 1.0 < chain.clusters_per_sweep < 4.0
    assert chain.spins_flipped / chain.sweeps_measured == pytest.approx(256, rel=0.1)
    with pytest.raises(RuntimeError, match="calibrates"):
        IsingChain("wolff", 8, 2.0, stream(5, 1)).sweep(1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_energy_and_magnetisation_agree_with_onsager_and_yang(algorithm):
    """L = 32 away from T_c: finite-size effects are exponentially small (checked with Kaufman's exact L = 32)."""
    for t in (1.5, 2.0, 3.5):
        _, e, m = measured_chain(algorithm, 32, t, 20000, seed=7)
        err = error_of_mean(e)
        assert abs(kaufman_partition(t, 32).energy_per_site - onsager_energy_per_site(t)) < 0.05 * err
        assert_within(e.mean(), err, onsager_energy_per_site(t), f"{algorithm} e(T={t})")
        if t < T_C:
            assert_within(np.abs(m).mean(), error_of_mean(np.abs(m)), yang_magnetisation(t), f"{algorithm} |m|(T={t})")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_L4_at_tc_agrees_with_exact_enumeration(algorithm):
    exact = enumeration_observables(T_C, 4)
    _, e, m = measured_chain(algorithm, 4, T_C, 200000, seed=8)
    a = np.abs(m)
    assert_within(e.mean(), error_of_mean(e), exact.energy_per_site, f"{algorithm} e")
    assert_within(a.mean(), error_of_mean(a), exact.abs_magnetisation_per_site, f"{algorithm} |m|")
    checks = [(lambda x: specific_heat_per_site(x, T_C, 4), e, exact.specific_heat_per_site, "C_v"),
              (lambda x: susceptibility_per_site(x, T_C, 4), a, exact.susceptibility_per_site, "chi"),
              (binder_cumulant, m, exact.binder_cumulant, "U4")]
    for estimator, series, value, name in checks:
        est, err = blocked_jackknife(estimator, (series,), n_blocks=50)
        assert_within(est, err, value, f"{algorithm} {name}")


def test_binder_cumulants_of_two_sizes_cross_at_tc():
    """U4(L=16) − U4(L=8) is > 0 below T_c, < 0 above and 0 at T_c, each within 3σ (Wolff, 40000 sweeps)."""
    diffs = []
    for t in (T_C - 0.05, T_C, T_C + 0.05):
        u = [blocked_jackknife(binder_cumulant, (measured_chain("wolff", L, t, 40000, seed=9, thermalise=500)[2],),
                               n_blocks=50) for L in (8, 16)]
        diffs.append((u[1][0] - u[0][0], math.hypot(u[0][1], u[1][1])))
    (below, s_below), (at, s_at), (above, s_above) = diffs
    assert below > SIGMAS * s_below and above < -SIGMAS * s_above, diffs
    assert abs(at) < SIGMAS * s_at, diffs
    assert 0.59 < binder_cumulant(measured_chain("wolff", 16, T_C, 4000, seed=10)[2]) < 0.64  # U* ≈ 0.611


def test_tau_int_at_tc_grows_with_L_for_metropolis_not_for_wolff():
    """Effective dynamic exponent z = ln(τ_|M|(32)/τ_|M|(8))/ln 4: Metropolis z ≈ 2.17, Wolff (per sweep) z ≲ 0.25."""
    z = {}
    for algorithm, sweeps in (("metropolis", 100000), ("wolff", 20000)):
        tau = [integrated_autocorrelation_time(np.abs(measured_chain(algorithm, L, T_C, sweeps, seed=12)[2]))
               for L in (8, 32)]
        assert all(t.converged for t in tau), tau
        z[algorithm] = (math.log(tau[1].tau / tau[0].tau) / math.log(4),
                        math.hypot(tau[0].error / tau[0].tau, tau[1].error / tau[1].tau) / math.log(4))
    assert z["metropolis"][0] - SIGMAS * z["metropolis"][1] > 1.5, z
    assert z["wolff"][0] + SIGMAS * z["wolff"][1] < 0.5, z


def test_pilot_run_measures_tau_and_calibrates_wolff():
    p = pilot_run("metropolis", 8, 3.0, stream(13, 0), thermalise=100, min_sweeps=256)
    assert p.reliable and p.sweeps >= 1000 * p.tau_max and p.clusters_per_sweep is None
    q = pilot_run("wolff", 8, 3.0, stream(13, 1), thermalise=100, min_sweeps=256, max_sweeps=256)
    assert q.sweeps == 256 and q.clusters_per_sweep > 1.0


# ---------------------------------------------------------------- the file


def _attrs(temps, **kw):
    n = len(temps)
    return ising_attrs("metropolis", 4, 3, temps, thin=2, thermalise=100, tau_int_E=np.full(n, 1.5),
                       tau_int_E_err=np.full(n, 0.1), tau_int_absM=np.full(n, 2.0), tau_int_absM_err=np.full(n, 0.2),
                       pilot_sweeps=4096, tau_reliable=True, **kw)


def test_file_round_trip(tmp_path):
    spins = run_chain("metropolis", 4, 2.0, 6, 1, 10, stream(0, 0)).spins
    temps = np.array([2.0, 3.0])
    path = write_ising_file(tmp_path / "s.h5", spins, np.repeat(temps, 3), _attrs(temps))
    with open_ising(path) as f:
        assert len(f) == 6 and f.L == 4 and f.spins.dtype == np.int8
        np.testing.assert_array_equal(f.spins[...], spins)
        np.testing.assert_array_equal(f.temperature, [2, 2, 2, 3, 3, 3])
        np.testing.assert_array_equal(f.temperatures, temps)
        np.testing.assert_array_equal(f.per_temperature("tau_int_absM"), [2.0, 2.0])
        assert f.attrs["algorithm"] == "metropolis" and f.attrs["schema"] == "hpcgen.ising/1"


def _corrupt(path, how):
    with h5py.File(path, "r+") as h5:
        if how == "schema":
            h5.attrs["schema"] = "hpcgen.cosmo/1"
        elif how == "dtype":
            data = h5["spins"][...]
            del h5["spins"]
            h5["spins"] = data.astype(np.float32)
        elif how == "values":
            h5["spins"][1, 0, 0] = 0
        elif how == "temperature":
            h5["temperature"][2] = 2.5
        elif how == "attr":
            del h5.attrs["tau_int_E"]
        elif how == "shape":
            h5.attrs["L"] = 5


@pytest.mark.parametrize("how, words", [
    ("schema", "schema is 'hpcgen.cosmo/1', expected 'hpcgen.ising/1'"),
    ("dtype", "dtype float32, expected int8"),
    ("values", "only +1 and -1, found 0 in configuration 1"),
    ("temperature", "2.5 at index 2, which is not one of"),
    ("attr", "missing root attribute 'tau_int_E'"),
    ("shape", "expected (N, 5, 5)"),
])
def test_invalid_files_are_one_line_errors(tmp_path, how, words):
    temps = np.array([2.0, 3.0])
    path = write_ising_file(tmp_path / "s.h5", np.ones((4, 4, 4), np.int8), np.repeat(temps, 2), _attrs(temps))
    _corrupt(path, how)
    with pytest.raises(UserError) as info:
        open_ising(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and words in message, message


# ---------------------------------------------------------------- the command


def test_simulate_ising_in_one_process_applies_the_thinning_rule(tmp_path):
    res = run_cli("simulate", "ising", "--algorithm", "wolff", "--L", "8", "--temperatures", "2.0:3.0:2", "--n", "5",
                  "--pilot-sweeps", "512", "--seed", "4", "--out", str(tmp_path / "w.h5"))
    assert res.returncode == 0, res.stderr[-3000:]
    with open_ising(tmp_path / "w.h5") as f:
        assert len(f) == 10 and f.L == 8
        np.testing.assert_array_equal(f.temperature, [2.0] * 5 + [3.0] * 5)
        tau = np.maximum(f.per_temperature("tau_int_E"), f.per_temperature("tau_int_absM"))
        np.testing.assert_array_equal(f.per_temperature("thin"), [math.ceil(2 * t) for t in tau])
        np.testing.assert_array_equal(f.per_temperature("thermalise"), [1000, 1000])
        assert (f.per_temperature("wolff_clusters_per_sweep") >= 1).all() and f.per_temperature("tau_reliable").all()
        assert (f.per_temperature("pilot_sweeps") >= 1000 * tau).all()


def test_job_validation_knows_the_simulators_choices():
    from hpcgen.jobs import simulate_ising
    from hpcgen.sim import ising

    assert simulate_ising.ISING_ALGORITHMS == ising.ALGORITHMS and simulate_ising.MIN_L == ising.MIN_L


@pytest.mark.parametrize("args, words", [
    (["--algorithm", "heatbath"], "--algorithm: expected one of metropolis, wolff, got 'heatbath'"),
    (["--L", "3"], "--L: expected a lattice side"),
    (["--temperatures", "0,2.5"], "--temperatures: expected A:B:K"),
    (["--temperatures=-1.5"], "--temperatures: expected A:B:K"),
    (["--temperatures", "3.0:2.0:4"], "A < B"),
    (["--temperatures", "warm"], "--temperatures"),
    (["--n", "0"], "--n: expected a number of configurations per temperature >= 1"),
    (["--thin", "0"], "--thin: expected auto or a number of sweeps >= 1"),
    (["--thin", "often"], "--thin: expected auto"),
])
def test_bad_ising_input_is_one_line_exit_2_nothing_written(tmp_path, args, words):
    base = {"--algorithm": "metropolis", "--L": "8", "--temperatures": "2.0", "--n": "2"}
    for a in args:
        base.pop(a.split("=")[0], None)
    flat = [x for kv in base.items() for x in kv]
    res = run_cli("simulate", "ising", *flat, *args, "--out", str(tmp_path / "s.h5"))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], res.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.mpi
def test_two_ranks_write_a_valid_file_equal_to_the_shards_run_alone(tmp_path):
    common = ["simulate", "ising", "--algorithm", "metropolis", "--L", "8", "--temperatures", "2.0,Tc,4.0", "--n",
              "3", "--pilot-sweeps", "256", "--seed", "21"]
    res = subprocess.run(mpirun_cmd(2, *common, "--out", str(tmp_path / "a.h5")), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    alone = tmp_path / "alone"
    alone.mkdir()
    res = run_cli(*common, "--shard", "1/2", "--out", str(alone / "a.h5"), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    with open_ising(tmp_path / "a.h5") as f:
        assert len(f) == 9 and f.attrs["world_size"] == 2 and f.h5["spins"].is_virtual
        np.testing.assert_array_equal(f.temperature, np.repeat([2.0, T_C, 4.0], 3))
        assert (f.per_temperature("thin") >= 1).all() and f.per_temperature("tau_reliable").all()
        spins, tau = f.spins[...], f.per_temperature("tau_int_absM")
    with h5py.File(shard_path(tmp_path / "a.h5", 0), "r") as r0, h5py.File(shard_path(alone / "a.h5", 1), "r") as r1:
        assert len(r0["spins"]) == 5 and len(r1["spins"]) == 4  # 9 configurations: rank 0 takes the extra one
        np.testing.assert_array_equal(spins, np.concatenate([r0["spins"][...], r1["spins"][...]]))
        np.testing.assert_array_equal(tau, r1.attrs["tau_int_absM"])  # the pilots do not depend on the rank count
