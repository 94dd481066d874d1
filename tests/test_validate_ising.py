"""validate_ising and `hpcgen validate ising`: two independent Metropolis samples pass every floor with AUC ≈ 0.5, a
sample with 5 % of its spins flipped fails and is classified; exact-curve pulls (Kaufman E and C_v at every L, the
enumeration's |M|, χ, U4 at L = 4); temperatures matched exactly; bad files are one line, exit 2, nothing written;
report and plots."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from hpcgen.cli import main
from hpcgen.data.ising_file import ising_attrs, write_ising_file
from hpcgen.fidelity.classifier import ClassifierConfig
from hpcgen.fidelity.ising import IsingFidelityConfig
from hpcgen.jobs.report_common import SCHEMA
from hpcgen.jobs.validate_ising import PLOTS, validate_ising
from hpcgen.physics.ising_exact import T_C, enumeration_observables, kaufman_partition
from hpcgen.seeding import stream
from hpcgen.sim.ising import run_chain

L = 8
TEMPS = (2.0, 2.3, 3.0)
N_PER_T = 400
THIN = 10  # sweeps; Metropolis τ_int ≤ 3.6 sweeps at L = 8 for these T (pilot_run), so ≥ 2τ: ≈ independent
THERMALISE = 500
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A small classifier: every test stays within seconds on a shared 2-core machine.
FAST = IsingFidelityConfig(bootstrap=100, classifier=ClassifierConfig(
    hidden=32, seeds=2, folds=5, epochs=30, patience=6, batch=128, lr=2e-3), classifier_resamples=10)
NO_CLASSIFIER = IsingFidelityConfig(bootstrap=100, classifier_enabled=False)


def metropolis(seed: int, size: int = L, temps=TEMPS, n: int = N_PER_T) -> tuple[np.ndarray, np.ndarray]:
    """``n`` configurations per temperature, each temperature its own chain (stream(seed, 0, t))."""
    spins = [run_chain("metropolis", size, T, n, THIN, THERMALISE, stream(seed, 0, t)).spins
             for t, T in enumerate(temps)]
    return np.concatenate(spins), np.repeat(np.asarray(temps, dtype=np.float64), n)


def flip_fraction(spins: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A clearly wrong sample: each spin flipped with probability ``fraction`` (uncorrelated noise)."""
    flip = np.random.default_rng(seed).random(spins.shape) < fraction
    return np.where(flip, -spins, spins).astype(np.int8)


def write(path, spins: np.ndarray, temperature: np.ndarray, seed: int = 0):
    temps = np.unique(temperature)
    n = temps.size  # τ attributes are placeholders of the right shape: validation does not read them
    attrs = ising_attrs("metropolis", spins.shape[1], seed, temps, thin=THIN, thermalise=THERMALISE,
                        tau_int_E=np.full(n, 2.0), tau_int_E_err=np.full(n, 0.2), tau_int_absM=np.full(n, 3.0),
                        tau_int_absM_err=np.full(n, 0.3), pilot_sweeps=4096, tau_reliable=True)
    return write_ising_file(path, spins, temperature, attrs)


@pytest.fixture(scope="module")
def ref():
    return metropolis(seed=10)


@pytest.fixture(scope="module")
def same(ref):
    return metropolis(seed=11)


@pytest.fixture(scope="module")
def floor_cache():
    """The classifier floors of ``ref`` with FAST, trained once for both test samples."""
    return {}


@pytest.fixture(scope="module")
def same_run(tmp_path_factory, ref, same, floor_cache):
    out = tmp_path_factory.mktemp("same")
    return out, validate_ising(*ref, *same, out, "metropolis-A", "metropolis-B", "a.h5", "b.h5", config=FAST,
                               floor_cache=floor_cache)


@pytest.fixture(scope="module")
def wrong_run(ref, floor_cache):
    spins, temperature = metropolis(seed=13)
    return validate_ising(*ref, flip_fraction(spins, 0.05, seed=1), temperature, None, "metropolis", "5% flipped",
                          config=FAST, floor_cache=floor_cache)


def rows(m: dict, key: str) -> dict:
    return {r["temperature"]: r for r in m["verdict"] if r["key"] == key}


# -------------------------------------------------------------------------------- verdict, floors, classifier
def test_independent_samples_are_within_every_floor_and_unclassifiable(same_run):
    _, m = same_run
    assert m["temperatures"] == list(TEMPS)
    keys = [r["key"] for r in m["verdict"]]
    assert keys == ["E", "absM", "Cv", "chi", "U4", "G", "AUC"] * len(TEMPS) + ["AUC"]
    for r in m["verdict"]:
        assert r["floor_p50"] <= r["floor_p95"] and r["within_floor_p95"] is True, r
    for T, r in rows(m, "AUC").items():
        assert abs(r["value"] - 0.5) < 0.1 and r["floor_p95"] < 0.65, (T, r)
    for e in m["per_temperature"]:  # halves of 200: the whole-sample differences are errors' size
        assert e["half_size"] == N_PER_T // 2 and e["classifier"]["n_per_class"] == N_PER_T // 2
        for k in ("E", "absM", "Cv", "chi", "U4"):
            o = e["observables"][k]
            assert abs(o["test"] - o["ref"]) < 4 * np.hypot(o["ref_err"], o["test_err"]), (e["temperature"], k, o)
    assert m["classifier_pooled"]["n_per_class"] == len(TEMPS) * N_PER_T // 2


def test_a_sample_with_flipped_spins_fails_its_rows_and_is_classified(wrong_run):
    m = wrong_run
    for key, temps in (("E", TEMPS), ("G", (2.0, 2.3)), ("absM", (2.0, 2.3)), ("AUC", (*TEMPS, None))):
        for T in temps:  # at T = 3 the floors of |M| and of G's long-distance tail are wide (≈ 15 %)
            r = rows(m, key)[T]
            assert r["within_floor_p95"] is False and r["value"] > r["floor_p95"], (key, T, r)
    auc = rows(m, "AUC")
    for T in (2.0, 2.3, None):  # None: pooled. At T = 3 the L² spin inputs dilute e, |m| (docs/ising.md): > p95 only
        assert auc[T]["value"] > auc[T]["floor_p95"] + 0.1 and auc[T]["value"] > 0.6, (T, auc[T])
    for e in m["per_temperature"]:  # E is higher: the flips break bonds
        assert e["observables"]["E"]["rel_diff"] < -0.1 and e["exact"]["E"]["test_pull"] > 10


def test_bootstrap_errors_match_the_spread_of_independent_samples(ref, same):
    """Over four independent samples the whole-sample E and |M| scatter with the bootstrap errors (not ≫, not ≪)."""
    from hpcgen.fidelity.ising import bootstrap_errors, observables, summarise

    values, errors = [], []
    for spins, temperature in (ref, same, metropolis(seed=14, temps=(2.3,)), metropolis(seed=15, temps=(2.3,))):
        s = summarise(spins, temperature, "sample")
        idx = np.flatnonzero(temperature == 2.3)
        values.append([observables(s, idx, 2.3)[k] for k in ("E", "absM")])
        errors.append([bootstrap_errors(s, idx, 2.3, 100, np.random.default_rng(0))[k] for k in ("E", "absM")])
    spread, error = np.std(values, axis=0, ddof=1), np.mean(errors, axis=0)
    assert np.all(spread / error > 0.3) and np.all(spread / error < 3.0), (spread, error)


# ---------------------------------------------------------------------------------------------- exact values
def test_exact_pulls_of_correct_samples_are_small_and_kaufman_at_this_L(same_run):
    _, m = same_run
    for e in m["per_temperature"]:
        T = e["temperature"]
        assert set(e["exact"]) == {"E", "Cv"}  # |M|, χ, U4: enumeration at L = 4 only
        k = kaufman_partition(T, L, L)
        assert e["exact"]["E"]["value"] == pytest.approx(k.energy_per_site, abs=1e-12)
        assert e["exact"]["Cv"]["value"] == pytest.approx(k.specific_heat_per_site, abs=1e-12)
        assert "Kaufman" in e["exact"]["E"]["source"]
        for x in e["exact"].values():
            assert abs(x["ref_pull"]) < 4 and abs(x["test_pull"]) < 4, (T, x)


def test_L4_compares_every_observable_with_the_enumeration():
    temps = (T_C, 3.0)
    m = validate_ising(*metropolis(seed=20, size=4, temps=temps), *metropolis(seed=21, size=4, temps=temps), None,
                       config=NO_CLASSIFIER)
    assert m["L"] == 4 and m["temperatures"] == list(temps) and not rows(m, "AUC")
    for e in m["per_temperature"]:
        ex = enumeration_observables(e["temperature"], 4)
        assert set(e["exact"]) == {"E", "Cv", "absM", "chi", "U4"}
        for k, want in (("absM", ex.abs_magnetisation_per_site), ("chi", ex.susceptibility_per_site),
                        ("U4", ex.binder_cumulant), ("E", ex.energy_per_site), ("Cv", ex.specific_heat_per_site)):
            assert e["exact"][k]["value"] == pytest.approx(want, abs=1e-9), k
            assert abs(e["exact"][k]["ref_pull"]) < 4 and abs(e["exact"][k]["test_pull"]) < 4, (e["temperature"], k)
        assert "enumeration" in e["exact"]["U4"]["source"]
    assert m["exact_curves"]["enumeration"] is not None


def test_temperatures_are_matched_exactly_as_stored(ref, same):
    spins, temperature = same
    shifted = np.where(temperature == 3.0, np.nextafter(3.0, 4.0), temperature)  # 3.0 + 1 ulp is another T
    m = validate_ising(*ref, spins, shifted, None, config=NO_CLASSIFIER)
    assert m["temperatures"] == [2.0, 2.3] and m["test"]["temperatures"][-1] != 3.0
    with pytest.raises(ValueError, match=r"share none with the reference's \{2, 2.3, 3\}"):
        validate_ising(*ref, spins, temperature + 0.1, None, config=NO_CLASSIFIER)


# ------------------------------------------------------------------------------------------- report and plots
def test_report_opens_with_the_verdict_table_and_plots_exist(same_run):
    out, m = same_run
    assert json.loads((out / "metrics.json").read_text()) == m
    assert m["schema"] == SCHEMA and m["domain"] == "ising"
    assert m["ref"]["file"] == "a.h5" and m["ref"]["label"] == "metropolis-A" and m["ref"]["n"] == 3 * N_PER_T
    lines = (out / "report.md").read_text().splitlines()
    assert lines[0].startswith("# Ising validation: metropolis-B vs metropolis-A (8×8)")
    assert lines[2] == "| metric | value | floor p50 | floor p95 | within floor p95 |"
    table = lines[4:4 + len(m["verdict"])]
    assert all(line.startswith(f"| {r['metric'].replace('|', chr(92) + '|')} |") for line, r in zip(table, m["verdict"]))
    assert m["plots"] == list(PLOTS.values())
    for name in m["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC and f"![{name}]({name})" in "\n".join(lines)
    curves = m["exact_curves"]
    assert len(curves["kaufman"]["E"]) == len(curves["temperature"]) and curves["enumeration"] is None


# ------------------------------------------------------------------------------------------------- the command
FAST_FLAGS = ["--classifier-hidden", "16", "--classifier-seeds", "1", "--folds", "3", "--classifier-resamples", "2",
              "--resamples", "5", "--bootstrap", "20"]


def test_cli_validate_ising_end_to_end_with_real_files(tmp_path, ref, same, capsys):
    write(tmp_path / "ref.h5", *ref)
    write(tmp_path / "test.h5", *same, seed=1)
    code = main(["validate", "ising", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "test.h5"),
                 "--out", str(tmp_path / "val"), "--max-configs", "100", *FAST_FLAGS])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "report.md" in out.out and "pooled classifier AUC" in out.out and "verdict rows within the floor" in out.out
    m = json.loads((tmp_path / "val" / "metrics.json").read_text())
    assert m["ref"]["file"] == str(tmp_path / "ref.h5") and m["ref"]["algorithm"] == "metropolis"
    assert m["config"]["max_configs"] == 100 and m["config"]["resamples"] == 5
    assert all(e["classifier"]["n_per_class"] == 50 for e in m["per_temperature"])  # 100 per T → halves of 50
    assert all((tmp_path / "val" / p).read_bytes()[:8] == PNG_MAGIC for p in m["plots"])


def _corrupt(path, how: str) -> None:
    with h5py.File(path, "r+") as h5:
        if how == "schema":
            h5.attrs["schema"] = "hpcgen.cosmo/1"
        elif how == "dtype":
            data = h5["spins"][...]
            del h5["spins"]
            h5["spins"] = data.astype(np.float32)
        elif how == "values":
            h5["spins"][3, 1, 1] = 0


@pytest.mark.parametrize("how, words", [
    ("schema", "schema is 'hpcgen.cosmo/1', expected 'hpcgen.ising/1'"),
    ("dtype", "dtype float32, expected int8 with values ±1"),
    ("values", "must hold only +1 and -1, found 0 in configuration 3"),
    ("L", "configurations are 4x4 spins but the reference's"),
    ("temperatures", "share none with"),
])
def test_bad_files_are_one_line_exit_2_nothing_written(tmp_path, capsys, how, words):
    spins, temperature = metropolis(seed=30, temps=(2.0, 3.0), n=20)
    write(tmp_path / "ref.h5", spins, temperature)
    if how == "L":
        write(tmp_path / "test.h5", *metropolis(seed=31, size=4, temps=(2.0, 3.0), n=20))
    else:
        write(tmp_path / "test.h5", spins, temperature + (0.5 if how == "temperatures" else 0.0))
        _corrupt(tmp_path / "test.h5", how)
    code = main(["validate", "ising", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "test.h5"),
                 "--out", str(tmp_path / "val"), "--no-classifier"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and words in err and str(tmp_path / "test.h5") in err, err
    if how == "temperatures":
        assert "{2, 3}" in err and "{2.5, 3.5}" in err
    assert not (tmp_path / "val").exists()


def test_bad_flag_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    spins, temperature = metropolis(seed=32, temps=(2.0,), n=20)
    write(tmp_path / "ref.h5", spins, temperature)
    code = main(["validate", "ising", "--ref", str(tmp_path / "ref.h5"), "--test", str(tmp_path / "ref.h5"),
                 "--out", str(tmp_path / "val"), "--folds", "2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--folds: expected >= 3, got 2" in err
    assert not (tmp_path / "val").exists()


def test_a_shared_floor_cache_changes_nothing_but_the_cost(ref):
    """Classifier floors depend on the reference and the config only: reused for a second test sample (and keyed by
    the temperatures, so a test sharing other temperatures does not get them) they equal freshly trained ones."""
    tiny = IsingFidelityConfig(bootstrap=10, resamples=3, classifier=ClassifierConfig(
        hidden=8, seeds=1, folds=3, epochs=5, patience=2, batch=128), classifier_resamples=2)
    spins, temperature = ref
    small_ref = (spins[::4], temperature[::4])  # 100 configurations at each temperature
    cache: dict = {}
    validate_ising(*small_ref, *metropolis(seed=40, temps=(2.0, 2.3), n=60), None, config=tiny, floor_cache=cache)
    second = metropolis(seed=41, temps=(2.0, 3.0), n=60)
    shared = validate_ising(*small_ref, *second, None, config=tiny, floor_cache=cache)
    fresh = validate_ising(*small_ref, *second, None, config=tiny)
    assert len(cache) == 5 and shared["verdict"] == fresh["verdict"]  # 3 temperatures, 2 pooled sets
    assert shared["classifier_pooled"]["floor_values"] == fresh["classifier_pooled"]["floor_values"]
