"""2D Ising Monte Carlo (hpcgen.sim.ising) against exact results, and critical slowing down measured: τ_int against L.

Why: the Ising Monte Carlo is the reference the GAN and the throughput benchmark are judged by, so its correctness
and its cost per independent sample are stated here with numbers, both algorithms in one run, on one pinned core.

Section 1, exact checks (rows ``section = "exact"``), both algorithms (metropolis, wolff), one chain per
(algorithm, L, T) with its own stream, a cold start and ``thermalise`` discarded sweeps (Wolff: calibrating its
sweep there, docs/ising.md). Per observable: the MC value ± σ, the exact value and the pull (MC − exact)/σ, and
``within_3sigma``. σ of e and |m| is the τ-corrected error of the mean √(var·2τ_int/N) with τ_int from the same
series (``error_of_mean``, ``integrated_autocorrelation_time``); σ of C_v, χ and U4 is the block jackknife
(``blocked_jackknife``, 50 contiguous blocks, as tests/test_ising_mc.py does). The checks:

* L = 32, T = 1.5, 2.0, 3.5: e against Onsager's L → ∞ energy and (below T_c only) |m| against Yang's spontaneous
  magnetisation. Finite-size effects are exponentially small there: each e row records Kaufman's exact L = 32
  energy minus Onsager's, in units of σ (the tests assert < 0.05σ);
* L = 4, T = T_c: e, |m|, C_v, χ, U4 against exact enumeration of the 2^16 states;
* L = 16 and 32, T = T_c: e and C_v against Kaufman's exact finite-lattice partition function.

Binder crossing (rows ``section = "binder"``, Wolff): U4 of L = 8 and 16 at T_c − 0.05, T_c, T_c + 0.05 (block
jackknife each) and the difference U4(16) − U4(8) ± the two errors in quadrature: > 3σ below, within 3σ at T_c,
< −3σ above (the tests' criterion; ``passes``).

Section 2, τ_int against L at T_c (rows ``section = "tau"``): per algorithm and L = 8, 16, 32, 64, 128, ``chains``
independent chains (stream per chain), τ_int of |m| and of e in sweeps (Wolff sweeps: r = L²/⟨|C|⟩ clusters,
L² flipped spins on average) by the project's Madras–Sokal estimator, with errors, windows and ``reliable`` flags.
A chain runs ``target_n_over_tau``·τ_guess sweeps (at least ``min_sweeps``; τ_guess from the previous L with
z = 2.17 for Metropolis, from the first chain for the others at the same L) and is extended on the same chain
until both estimates are reliable (N ≥ 1000 τ̂ and a window found), up to ``max_sweeps``. The row's τ is the mean
over chains; its error is the larger of the chains' spread (std/√k) and the estimator's √(Σσ²)/k. z: weighted least
squares of ln τ on ln L (weights (τ/σ_τ)²), per algorithm and observable, over all L and over L ≥ 16, with the
slope's standard error (and that error × √(χ²/dof) where χ²/dof > 1), in the top-level ``fits``. Before Metropolis
at L = 128 the script estimates its cost (τ extrapolated from L = 32, 64; ns per update measured at L = 64) and drops
that size if it would exceed ``max_cost_s`` (300 s); ``config.tau.cost_check`` says what happened.

Streams: ``hpcgen.seeding.stream(seed, section, algorithm index, L, round(T·10⁶), chain)``, section 1 = exact,
2 = binder, 3 = tau; algorithm index 0 = metropolis, 1 = wolff. Cost (measured on the 2-core development host under
load): the default run took 261 s of CPU on one core (398 s wall), 154 s of it Metropolis at L = 128 (one chain of
1.03 × 10⁶ sweeps); ``--quick`` (tiny sizes, for tests/test_bench_ising_mc.py) ≈ 5 s of CPU. Writes
benchmarks/results/ising_mc.json (schema hpcgen.bench/1, kind ``ising_mc``) and the plot beside it (same name,
.png: τ_int(|m|) against L with the fitted lines, and the pulls of the exact checks); ``hpcgen report`` renders the
same tables. docs/ising.md ("Exact checks and critical slowing down, measured") discusses the numbers.

    python benchmarks/bench_ising_mc.py [--seed 20240601] [--quick] [--out PATH]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy/numba load their thread pools

import argparse
import math
import time
from pathlib import Path

import numpy as np

from bench_common import pin_to_one_core, summarise, write_result

from hpcgen.sim.ising import ALGORITHMS  # its order fixes the algorithm index of the streams

SIGMAS = 3.0
SECTION_KEYS = {"exact": 1, "binder": 2, "tau": 3}
Z_GUESS = {"metropolis": 2.17, "wolff": 0.25}  # only to size the next L's chains (and the L = 128 cost check)
TAU_GUESS_L8 = {"metropolis": 4.0, "wolff": 1.2}

FULL = {
    "onsager": {"L": 32, "temperatures": [1.5, 2.0, 3.5], "sweeps": 40000, "thermalise": 1000},
    "enumeration": {"L": 4, "sweeps": 400000, "thermalise": 1000},
    "kaufman": {"L": [16, 32], "sweeps": 100000, "thermalise": 2000},
    "jackknife_blocks": 50,
    "binder": {"L": [8, 16], "dT": 0.05, "sweeps": 80000, "thermalise": 500},
    "tau": {"L": [8, 16, 32, 64, 128],
            "chains": {"metropolis": {"8": 4, "16": 4, "32": 4, "64": 4, "128": 1},
                       "wolff": {"8": 4, "16": 4, "32": 4, "64": 4, "128": 4}},
            "target_n_over_tau": 1300, "min_sweeps": {"metropolis": 100000, "wolff": 20000},
            "max_sweeps": 4_000_000, "min_thermalise": 1000, "thermalise_taus": 20, "max_cost_s": 300.0},
}
# the same plan at test size (seconds of CPU; nothing in it is reliable)
QUICK = {
    **FULL,
    "onsager": {**FULL["onsager"], "sweeps": 3000, "thermalise": 300},
    "enumeration": {**FULL["enumeration"], "sweeps": 20000, "thermalise": 300},
    "kaufman": {**FULL["kaufman"], "sweeps": 4000, "thermalise": 300},
    "jackknife_blocks": 20,
    "binder": {**FULL["binder"], "sweeps": 4000, "thermalise": 200},
    "tau": {**FULL["tau"], "L": [8, 16, 32], "chains": {a: {"8": 2, "16": 2, "32": 2} for a in ALGORITHMS},
            "target_n_over_tau": 0, "min_sweeps": {"metropolis": 3000, "wolff": 2000}, "max_sweeps": 3000,
            "min_thermalise": 200},
}

LITERATURE = [
    {"quantity": "dynamic exponent z, τ_int ∝ L^z at T_c, 2D Ising, single-spin-flip dynamics", "algorithm": "metropolis",
     "value": 2.17, "units": "sweeps", "source": "[lit] M. P. Nightingale, H. W. J. Blöte 1996, Phys. Rev. Lett. 76, 4548"},
    {"quantity": "dynamic exponent z, τ_int ∝ L^z at T_c, 2D Ising, Wolff single-cluster algorithm",
     "algorithm": "wolff", "value": 0.25, "units": "Wolff sweeps (L² flipped spins)",
     "source": "[lit] P. D. Coddington, C. F. Baillie 1992, Phys. Rev. Lett. 68, 962 (not re-read here; "
               "hpcgen/bench/throughput_ising.py quotes the same ≈ 0.25, marked unverified)"},
    {"quantity": "Binder cumulant U4 at T_c, L → ∞ (the crossing value)", "value": 0.611,
     "source": "[lit] G. Kamieniarz, H. W. J. Blöte 1993, J. Phys. A 26, 201 (as cited in docs/ising.md)"},
]


def temperature_key(t: float) -> int:
    return round(t * 1e6)


def chain_stream(seed: int, section: str, algorithm: str, L: int, t: float, chain: int = 0):
    from hpcgen.seeding import stream

    return stream(seed, SECTION_KEYS[section], ALGORITHMS.index(algorithm), L, temperature_key(t), chain)


def measured_series(seed, section, algorithm, L, t, sweeps, thermalise, chain=0):
    """One cold chain: ``thermalise`` sweeps discarded, then ``sweeps`` measured; (e, m, chain, CPU seconds)."""
    from hpcgen.sim.ising import IsingChain

    t0 = time.process_time()
    c = IsingChain(algorithm, L, t, chain_stream(seed, section, algorithm, L, t, chain))
    c.thermalise(thermalise)
    e, m = c.sweep(sweeps)
    return e, m, c, time.process_time() - t0


def pull(value: float, error: float, exact: float) -> float:
    """(MC − exact)/σ."""
    return float((value - exact) / error)


def check_row(check, algorithm, L, t, observable, value, error, exact, source, method, sweeps, thermalise, cpu_s,
              chain, **extra) -> dict:
    p = pull(value, error, exact)
    return {"section": "exact", "check": check, "algorithm": algorithm, "L": L, "temperature": t,
            "observable": observable, "value": float(value), "error": float(error), "error_method": method,
            "exact": float(exact), "exact_source": source, "pull": p, "within_3sigma": bool(abs(p) < SIGMAS),
            "sweeps": sweeps, "thermalise": thermalise,
            "clusters_per_sweep": chain.clusters_per_sweep, "cpu_s": summarise([cpu_s]), **extra}


def mean_row(check, algorithm, L, t, observable, x, exact, source, sweeps, thermalise, cpu_s, chain, **extra):
    """A row for a mean (e or |m|): σ = √(var·2τ_int/N), τ_int of the same series."""
    from hpcgen.physics.autocorrelation import error_of_mean, integrated_autocorrelation_time

    tau = integrated_autocorrelation_time(x)
    return check_row(check, algorithm, L, t, observable, x.mean(), error_of_mean(x, tau.tau), exact, source,
                     "tau-corrected error of the mean", sweeps, thermalise, cpu_s, chain,
                     tau_int_sweeps=tau.tau, tau_int_reliable=tau.reliable, **extra)


def jackknife_row(check, algorithm, L, t, observable, estimator, x, exact, source, sweeps, thermalise, cpu_s, chain,
                  n_blocks):
    from hpcgen.physics.autocorrelation import blocked_jackknife, integrated_autocorrelation_time

    value, error = blocked_jackknife(estimator, (x,), n_blocks=n_blocks)
    tau = integrated_autocorrelation_time(x if observable == "C_v" else np.abs(x)).tau  # e, or |m| (χ, U4)
    block = len(x) // n_blocks
    return check_row(check, algorithm, L, t, observable, value, error, exact, source,
                     f"block jackknife, {n_blocks} blocks", sweeps, thermalise, cpu_s, chain,
                     block_sweeps=block, block_over_tau_int=block / tau)


def exact_rows(plan: dict, seed: int) -> list[dict]:
    from hpcgen.physics import ising_observables as obs
    from hpcgen.physics.ising_exact import (
        T_C,
        enumeration_observables,
        kaufman_partition,
        onsager_energy_per_site,
        yang_magnetisation,
    )

    nb = plan["jackknife_blocks"]
    rows = []
    for algorithm in ALGORITHMS:
        p = plan["onsager"]
        L = p["L"]
        for t in p["temperatures"]:
            e, m, chain, cpu = measured_series(seed, "exact", algorithm, L, t, p["sweeps"], p["thermalise"])
            row = mean_row("onsager", algorithm, L, t, "e", e, onsager_energy_per_site(t),
                           "Onsager 1944, L → ∞", p["sweeps"], p["thermalise"], cpu, chain)
            shift = kaufman_partition(t, L).energy_per_site - row["exact"]
            row.update(kaufman_minus_onsager=shift, kaufman_minus_onsager_over_sigma=shift / row["error"])
            rows.append(row)
            if t < T_C:
                rows.append(mean_row("yang", algorithm, L, t, "abs_m", np.abs(m), yang_magnetisation(t),
                                     "Yang 1952, L → ∞", p["sweeps"], p["thermalise"], cpu, chain))
            print(f"  {algorithm:10s} L={L} T={t:.3f}: " + "  ".join(
                f"{r['observable']} pull {r['pull']:+.2f}" for r in rows[-2:] if r["temperature"] == t), flush=True)

        p = plan["enumeration"]
        L = p["L"]
        ex = enumeration_observables(T_C, L)
        e, m, chain, cpu = measured_series(seed, "exact", algorithm, L, T_C, p["sweeps"], p["thermalise"])
        a = np.abs(m)
        src = f"exact enumeration, {L}×{L} torus"
        common = (p["sweeps"], p["thermalise"], cpu, chain)
        rows.append(mean_row("enumeration", algorithm, L, T_C, "e", e, ex.energy_per_site, src, *common))
        rows.append(mean_row("enumeration", algorithm, L, T_C, "abs_m", a, ex.abs_magnetisation_per_site, src,
                             *common))
        rows.append(jackknife_row("enumeration", algorithm, L, T_C, "C_v",
                                  lambda x, L=L: obs.specific_heat_per_site(x, T_C, L), e, ex.specific_heat_per_site, src,
                                  *common, nb))
        rows.append(jackknife_row("enumeration", algorithm, L, T_C, "chi",
                                  lambda x, L=L: obs.susceptibility_per_site(x, T_C, L), a, ex.susceptibility_per_site,
                                  src, *common, nb))
        rows.append(jackknife_row("enumeration", algorithm, L, T_C, "U4", obs.binder_cumulant, m,
                                  ex.binder_cumulant, src, *common, nb))
        print(f"  {algorithm:10s} L={L} T_c: " + "  ".join(f"{r['observable']} {r['pull']:+.2f}" for r in rows[-5:]),
              flush=True)

        p = plan["kaufman"]
        for L in p["L"]:
            k = kaufman_partition(T_C, L)
            e, _, chain, cpu = measured_series(seed, "exact", algorithm, L, T_C, p["sweeps"], p["thermalise"])
            src = f"Kaufman 1949, exact {L}×{L} torus"
            common = (p["sweeps"], p["thermalise"], cpu, chain)
            rows.append(mean_row("kaufman", algorithm, L, T_C, "e", e, k.energy_per_site, src, *common))
            rows.append(jackknife_row("kaufman", algorithm, L, T_C, "C_v",
                                      lambda x, L=L: obs.specific_heat_per_site(x, T_C, L), e,
                                      k.specific_heat_per_site, src, *common, nb))
            print(f"  {algorithm:10s} L={L} T_c (Kaufman): e {rows[-2]['pull']:+.2f}  C_v {rows[-1]['pull']:+.2f}",
                  flush=True)
    return rows


def binder_rows(plan: dict, seed: int) -> list[dict]:
    from hpcgen.physics.autocorrelation import blocked_jackknife
    from hpcgen.physics.ising_exact import T_C
    from hpcgen.physics.ising_observables import binder_cumulant

    p, nb = plan["binder"], plan["jackknife_blocks"]
    small, large = p["L"]
    rows = []
    for offset, expected in ((-p["dT"], "> 0"), (0.0, "= 0"), (p["dT"], "< 0")):
        t = T_C + offset
        u, cpu = {}, []
        for L in (small, large):
            _, m, _, c = measured_series(seed, "binder", "wolff", L, t, p["sweeps"], p["thermalise"])
            value, error = blocked_jackknife(binder_cumulant, (m,), n_blocks=nb)
            u[L] = {"value": value, "error": error}
            cpu.append(c)
        diff = u[large]["value"] - u[small]["value"]
        err = math.hypot(u[small]["error"], u[large]["error"])
        pl = diff / err
        passes = {"> 0": pl > SIGMAS, "= 0": abs(pl) < SIGMAS, "< 0": pl < -SIGMAS}[expected]
        rows.append({"section": "binder", "algorithm": "wolff", "temperature": t, "T_minus_Tc": offset,
                     "L_small": small, "L_large": large, "U4_small": u[small], "U4_large": u[large],
                     "difference": diff, "difference_error": err, "pull": pl, "expected_sign": expected,
                     "passes": bool(passes), "sweeps": p["sweeps"], "thermalise": p["thermalise"],
                     "error_method": f"block jackknife, {nb} blocks; difference error in quadrature",
                     "cpu_s": summarise(cpu)})
        print(f"  binder T_c{offset:+.2f}: U4({large}) − U4({small}) = {diff:+.4f} ± {err:.4f} "
              f"(expected {expected}: {'ok' if passes else 'FAIL'})", flush=True)
    return rows


def tau_chain(seed, algorithm, L, chain_index, tau_guess, p) -> dict:
    """One chain at T_c sized from ``tau_guess`` and extended until τ_int of e and |m| are reliable."""
    from hpcgen.physics.autocorrelation import RELIABLE_LENGTH, integrated_autocorrelation_time
    from hpcgen.physics.ising_exact import T_C
    from hpcgen.sim.ising import MIN_CALIBRATION_SWEEPS, IsingChain

    t0 = time.process_time()
    thermalise = max(p["min_thermalise"], math.ceil(p["thermalise_taus"] * tau_guess))
    c = IsingChain(algorithm, L, T_C, chain_stream(seed, "tau", algorithm, L, T_C, chain_index))
    c.thermalise(thermalise)
    sim_cpu = time.process_time() - t0  # the sweeps alone (τ estimation excluded): the cost per update
    n = min(p["max_sweeps"], max(p["min_sweeps"][algorithm], math.ceil(p["target_n_over_tau"] * tau_guess)))
    es, ms, segments = [], [], []
    while True:
        t1 = time.process_time()
        e, m = c.sweep(n)
        sim_cpu += time.process_time() - t1
        es.append(e)
        ms.append(np.abs(m))
        segments.append(n)
        total = sum(segments)
        te, tm = integrated_autocorrelation_time(np.concatenate(es)), integrated_autocorrelation_time(np.concatenate(ms))
        if (te.reliable and tm.reliable) or total >= p["max_sweeps"]:
            break
        need = math.ceil(1.2 * RELIABLE_LENGTH * max(te.tau, tm.tau))  # a reliable length with a 20 % margin
        n = min(p["max_sweeps"] - total, max(need - total, total // 4))
    cpu = time.process_time() - t0
    if algorithm == "metropolis":  # sweeps_done counts the thermalisation sweeps too
        updates = c.sweeps_done * L * L
    else:  # the chain counts the measured sweeps' flips; its calibration sweeps flip ≈ L² spins each
        updates = c.spins_flipped + max(thermalise, MIN_CALIBRATION_SWEEPS) * L * L
    out = {"thermalise": thermalise, "sweeps": total, "segments": segments, "cpu_s": cpu,
           "clusters_per_sweep": c.clusters_per_sweep, "ns_per_update": 1e9 * sim_cpu / updates}
    for name, est in (("abs_m", tm), ("e", te)):
        out[name] = {"tau": est.tau, "error": est.error, "window": est.window, "n": est.n,
                     "converged": est.converged, "reliable": est.reliable}
    return out


def combine_chains(chains: list[dict], name: str) -> dict:
    """Mean τ over chains; error = max(spread std/√k, estimator √(Σσ²)/k) (k = 1: the estimator's)."""
    taus = np.array([c[name]["tau"] for c in chains])
    errs = np.array([c[name]["error"] for c in chains])
    k = len(taus)
    est = float(math.sqrt((errs**2).sum()) / k)
    spread = float(taus.std(ddof=1) / math.sqrt(k)) if k > 1 else None
    return {"tau": float(taus.mean()), "error": max(est, spread or 0.0), "error_estimator": est,
            "error_spread": spread, "error_used": "spread" if spread is not None and spread > est else "estimator"}


def fit_z(Ls, taus, errors) -> dict | None:
    """Weighted least squares ln τ = ln A + z ln L, weights (τ/σ_τ)²; None below two points."""
    if len(Ls) < 2:
        return None
    x, y = np.log(np.asarray(Ls, float)), np.log(np.asarray(taus, float))
    w = (np.asarray(taus, float) / np.asarray(errors, float)) ** 2
    a = np.array([[w.sum(), (w * x).sum()], [(w * x).sum(), (w * x * x).sum()]])
    cov = np.linalg.inv(a)
    intercept, z = cov @ np.array([(w * y).sum(), (w * x * y).sum()])
    chi2 = float((w * (y - intercept - z * x) ** 2).sum())
    dof = len(Ls) - 2
    z_err = float(math.sqrt(cov[1, 1]))
    return {"z": float(z), "z_err": z_err, "amplitude": float(math.exp(intercept)), "chi2": chi2, "dof": dof,
            "z_err_scaled": z_err * math.sqrt(max(1.0, chi2 / dof)) if dof > 0 else z_err}


def tau_rows(plan: dict, seed: int) -> tuple[list[dict], list[dict], dict]:
    from hpcgen.physics.ising_exact import T_C

    p = plan["tau"]
    rows, cost_check = [], {}
    for algorithm in ALGORITHMS:
        measured: dict[int, dict] = {}
        for L in p["L"]:
            k = p["chains"][algorithm][str(L)]
            if measured:
                L0 = max(measured)
                tau_guess = measured[L0]["tau_max"] * (L / L0) ** Z_GUESS[algorithm]
            else:
                tau_guess = TAU_GUESS_L8[algorithm] * (L / 8) ** Z_GUESS[algorithm]
            if algorithm == "metropolis" and L >= 128 and len(measured) >= 2:
                (La, ma), (Lb, mb) = sorted(measured.items())[-2:]
                z_eff = math.log(mb["tau_max"] / ma["tau_max"]) / math.log(Lb / La)
                tau_pred = mb["tau_max"] * (L / Lb) ** max(z_eff, Z_GUESS[algorithm])
                sweeps = max(p["min_sweeps"][algorithm], p["target_n_over_tau"] * tau_pred)
                estimate = k * (sweeps + p["thermalise_taus"] * tau_pred) * L * L * mb["ns_per_update"] * 1e-9
                keep = estimate <= p["max_cost_s"]
                cost_check = {"L": L, "tau_predicted": tau_pred, "z_used": max(z_eff, Z_GUESS[algorithm]),
                              "sweeps_predicted": sweeps, "ns_per_update_at": Lb,
                              "ns_per_update": mb["ns_per_update"], "estimated_cpu_s": estimate,
                              "limit_s": p["max_cost_s"], "kept": keep}
                print(f"  cost check metropolis L={L}: τ ≈ {tau_pred:.0f}, ≈ {estimate:.0f} s CPU "
                      f"({'kept' if keep else 'dropped'})", flush=True)
                if not keep:
                    continue
                tau_guess = tau_pred
            chains = []
            for i in range(k):
                chains.append(tau_chain(seed, algorithm, L, i, tau_guess, p))
                tau_guess = max(chains[0]["abs_m"]["tau"], chains[0]["e"]["tau"])
            cpu = [c["cpu_s"] for c in chains]
            for name in ("abs_m", "e"):
                comb = combine_chains(chains, name)
                per = [c[name] for c in chains]
                rows.append({"section": "tau", "algorithm": algorithm, "L": L, "temperature": T_C,
                             "observable": name, **comb, "n_chains": k,
                             "reliable": all(c["reliable"] for c in per),
                             "tau_chains": summarise([c["tau"] for c in per]),
                             "windows": [c["window"] for c in per], "sweeps": [c["n"] for c in per],
                             "min_n_over_tau": min(c["n"] / c["tau"] for c in per),
                             "chains": per, "thermalise": [c["thermalise"] for c in chains],
                             "clusters_per_sweep": [c["clusters_per_sweep"] for c in chains]
                             if algorithm == "wolff" else None,
                             "cpu_s_per_chain": summarise(cpu),
                             "ns_per_update": summarise([c["ns_per_update"] for c in chains])})
            m_row, e_row = rows[-2], rows[-1]
            measured[L] = {"tau_max": max(m_row["tau"], e_row["tau"]),
                           "ns_per_update": m_row["ns_per_update"]["median"]}
            print(f"  τ {algorithm:10s} L={L:4d}: |m| {m_row['tau']:8.3f} ± {m_row['error']:.3f}  "
                  f"e {e_row['tau']:8.3f} ± {e_row['error']:.3f}  ({k} chain(s) × {m_row['sweeps'][0]} sweeps, "
                  f"reliable {m_row['reliable'] and e_row['reliable']}, {sum(cpu):.1f} s CPU)", flush=True)
    fits = []
    for algorithm in ALGORITHMS:
        for name in ("abs_m", "e"):
            pts = sorted((r["L"], r["tau"], r["error"]) for r in rows
                         if r["algorithm"] == algorithm and r["observable"] == name)
            for L_min in (min(p["L"]), 16):
                sel = [q for q in pts if q[0] >= L_min]
                f = fit_z([q[0] for q in sel], [q[1] for q in sel], [q[2] for q in sel])
                fits.append({"algorithm": algorithm, "observable": name, "L_min": L_min,
                             "L": [q[0] for q in sel], **(f or {"z": None, "note": "fewer than two sizes"})})
    return rows, fits, cost_check


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for the test), nothing reliable")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ising_mc.json")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL

    from hpcgen.bench.report import ising_mc_figure
    from hpcgen.bench.results import load_result
    from hpcgen.physics.ising_exact import T_C
    from hpcgen.sim.ising import SWEEP_DEFINITIONS

    core = pin_to_one_core()
    print(f"config: {'quick' if args.quick else 'full'} plan, seed {args.seed}, 1 core (#{core})", flush=True)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    rows = exact_rows(plan, args.seed)
    rows += binder_rows(plan, args.seed)
    t_rows, fits, cost_check = tau_rows(plan, args.seed)
    rows += t_rows
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    dropped = [] if cost_check.get("kept", True) else [f"metropolis L={cost_check['L']}"]
    config = {"quick": args.quick, "seed": args.seed, "critical_temperature": T_C, "sigmas": SIGMAS,
              **{k: v for k, v in plan.items() if k != "tau"},
              "tau": {**plan["tau"], "temperature": T_C, "cost_check": cost_check, "dropped": dropped},
              "sweep_definitions": SWEEP_DEFINITIONS, "start": "cold (all +1)",
              "streams": "hpcgen.seeding.stream(seed, section, algorithm index, L, round(T*1e6), chain); section "
                         "1 exact, 2 binder, 3 tau; algorithm 0 metropolis, 1 wolff",
              "errors": "e, |m|: sqrt(var*2*tau_int/N), tau_int (Madras-Sokal, c = 6) of the same series; C_v, chi, "
                        "U4: block jackknife; tau rows: mean over chains, error max(std/sqrt(k), "
                        "sqrt(sum sigma^2)/k)",
              "cpu_s": "process time of a whole chain (thermalisation included) on one pinned core of a shared host; "
                       "rows from one chain share it",
              "ns_per_update": "tau rows: process time of the sweeps alone per attempted spin update (Metropolis) "
                               "or per flipped spin (Wolff; its calibration sweeps counted as L^2 flips each)",
              "pinned_core": core, "omp_num_threads": os.environ["OMP_NUM_THREADS"],
              "numba_num_threads": os.environ["NUMBA_NUM_THREADS"]}
    n_exact = [r for r in rows if r["section"] == "exact"]
    summary = {"exact_checks": len(n_exact), "exact_within_3sigma": sum(r["within_3sigma"] for r in n_exact),
               "max_abs_pull": max(abs(r["pull"]) for r in n_exact),
               "binder_passes": all(r["passes"] for r in rows if r["section"] == "binder"),
               "tau_all_reliable": all(r["reliable"] for r in rows if r["section"] == "tau")}
    print(f"  {summary}\n  total {wall:.0f} s wall, {cpu:.0f} s CPU")
    write_result(args.out, "ising_mc", config, rows, literature=LITERATURE, fits=fits, summary=summary,
                 wall_s=wall, cpu_s=cpu,
                 note="CPU seconds are process time on one pinned core of a shared 2-core host under load")
    png = args.out.with_suffix(".png")
    ising_mc_figure(load_result(args.out), png)  # the plot is made from the written file alone
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
