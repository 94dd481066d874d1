"""2D Ising model Monte Carlo on a periodic L×L lattice (J = 1, no field, k_B = 1): Metropolis and Wolff.

H = −Σ_⟨ij⟩ s_i s_j, s = ±1; a chain at temperature T samples exp(−H/T). Two Markov chains, both numba kernels that
draw from the chain's own ``numpy.random.Generator`` (numba advances the generator's state in place, so a chain is
reproducible from its stream and independent of every other stream):

- ``metropolis``: single-spin Metropolis (Metropolis et al. 1953, J. Chem. Phys. 21, 1087) in checkerboard order:
  one sweep visits every site of one sublattice ((i + j) even), then of the other, flipping s with probability
  min(1, e^{−ΔE/T}), ΔE = 2 s Σ_nb s ∈ {−8, −4, 0, 4, 8}. A uniform number is drawn only when ΔE > 0. (For odd L
  the two "sublattices" touch across the boundary; a sequential sweep in any fixed order still satisfies balance.)
- ``wolff``: single-cluster updates (Wolff 1989, Phys. Rev. Lett. 62, 361): grow a cluster from a uniformly random
  seed site over aligned neighbours, each bond added with p = 1 − e^{−2/T}, and flip it.

**Wolff sweep.** A sweep is r = L²/⟨|C|⟩ cluster flips, ⟨|C|⟩ the mean cluster size at this temperature, so that a
sweep flips L² spins on average; r ≥ 1 is real and sweep k ends after cluster ⌊k·r⌋ (e.g. 2, 3, 2, 3, … clusters
for r = 2.5). ⟨|C|⟩ is *calibrated* once per chain, before anything is measured: ``IsingChain.thermalise`` of a
chain without a given ``clusters_per_sweep`` counts clusters and flipped spins over the second half of its
thermalisation (at least ``MIN_CALIBRATION_SWEEPS``; there a sweep ends with the cluster that brings the flipped
spins to the next multiple of L²) and fixes r. The measured sweeps must not end on a rule that looks at the
cluster sizes: "stop when L² spins have been flipped" ends sweeps preferentially after large clusters, and the
states after large clusters are not Boltzmann distributed (an inspection paradox; *measured*: at L = 4, T_c it gives
e = −1.687 against the exact −1.566). A fixed schedule of cluster counts keeps every measurement at a time that
does not depend on the chain, which is unbiased. τ_int of a Wolff chain is in these sweeps; the job records r.

After every sweep the chain records the energy and the (signed) magnetisation per site with the estimators of
``hpcgen.physics.ising_observables``; a sample is the configuration after every ``thin``-th sweep. Chains start
cold (all +1): below T_c that is close to equilibrium, and it avoids the long-lived striped states that a hot
start can freeze into under Metropolis; thermalisation sweeps come first (``run_chain``).

Simulators never touch files or MPI (``hpcgen.jobs.simulate_ising`` does both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from hpcgen.physics.autocorrelation import TauInt, integrated_autocorrelation_time
from hpcgen.physics.ising_observables import lattice_bond_sum, lattice_spin_sum

ALGORITHMS = ("metropolis", "wolff")
MIN_L = 4
MIN_CALIBRATION_SWEEPS = 100
SWEEP_DEFINITIONS = {
    "metropolis": "one Metropolis update of every site, checkerboard order",
    "wolff": "r = L^2/<|C|> Wolff cluster flips (sweep k ends after cluster floor(k r)), <|C|> the mean cluster "
             "size calibrated during thermalisation: L^2 flipped spins per sweep on average",
}


@njit(cache=True)
def _metropolis_sweep(s, accept4, accept8, rng) -> None:
    L0, L1 = s.shape
    for parity in range(2):
        for i in range(L0):
            up = i - 1 if i > 0 else L0 - 1
            down = i + 1 if i + 1 < L0 else 0
            for j in range((i + parity) % 2, L1, 2):
                left = j - 1 if j > 0 else L1 - 1
                right = j + 1 if j + 1 < L1 else 0
                h = s[i, j] * (s[up, j] + s[down, j] + s[i, left] + s[i, right])  # ΔE = 2h
                if h <= 0:
                    s[i, j] = -s[i, j]
                elif h == 2:
                    if rng.random() < accept4:
                        s[i, j] = -s[i, j]
                elif rng.random() < accept8:
                    s[i, j] = -s[i, j]


@njit(cache=True)
def _wolff_cluster(s, p_add, rng, stack) -> int:
    """Grow and flip one Wolff cluster; returns its size. ``stack`` holds L² site indices."""
    L0, L1 = s.shape
    seed = rng.integers(0, L0 * L1)
    i, j = seed // L1, seed % L1
    old = s[i, j]
    s[i, j] = -old  # flipped on entry: a flipped site is never added twice
    stack[0] = seed
    top, size = 1, 1
    while top > 0:
        top -= 1
        site = stack[top]
        i, j = site // L1, site % L1
        for k in range(4):
            if k == 0:
                ni, nj = (i - 1 if i > 0 else L0 - 1), j
            elif k == 1:
                ni, nj = (i + 1 if i + 1 < L0 else 0), j
            elif k == 2:
                ni, nj = i, (j - 1 if j > 0 else L1 - 1)
            else:
                ni, nj = i, (j + 1 if j + 1 < L1 else 0)
            if s[ni, nj] == old and rng.random() < p_add:
                s[ni, nj] = -old
                stack[top] = ni * L1 + nj
                top += 1
                size += 1
    return size


@njit(cache=True)
def _wolff_calibrate(s, beta, rng, n_sweeps, stack, counts) -> None:
    """``n_sweeps`` spin-counted sweeps (each ends with the cluster that brings the flipped spins to L² or more);
    adds (clusters, spins flipped) of the second half to ``counts``. For thermalisation only: nothing is measured."""
    n_sites = s.shape[0] * s.shape[1]
    p_add = 1.0 - math.exp(-2.0 * beta)
    carry = 0
    for t in range(n_sweeps):
        while carry < n_sites:
            size = _wolff_cluster(s, p_add, rng, stack)
            carry += size
            if 2 * t >= n_sweeps:
                counts[0] += 1
                counts[1] += size
        carry -= n_sites


@njit(cache=True)
def _run_sweeps(s, wolff, beta, rng, n_sweeps, thin, clusters_per_sweep, sweeps_before, stack, energy,
                magnetisation, samples, counts) -> None:
    """Advance ``n_sweeps`` sweeps; record e and m per site after each; copy every ``thin``-th state to
    ``samples`` (when it has rows). Wolff: sweep k (counted from the calibration, ``sweeps_before`` done) ends after
    cluster ⌊k·clusters_per_sweep⌋; (clusters, spins flipped) are added to ``counts``."""
    n_sites = s.shape[0] * s.shape[1]
    accept4, accept8 = math.exp(-4.0 * beta), math.exp(-8.0 * beta)
    p_add = 1.0 - math.exp(-2.0 * beta)
    for t in range(n_sweeps):
        if wolff:
            k = sweeps_before + t
            n_clusters = math.floor((k + 1) * clusters_per_sweep) - math.floor(k * clusters_per_sweep)
            for _ in range(n_clusters):
                counts[1] += _wolff_cluster(s, p_add, rng, stack)
            counts[0] += n_clusters
        else:
            _metropolis_sweep(s, accept4, accept8, rng)
        energy[t] = -lattice_bond_sum(s) / n_sites
        magnetisation[t] = lattice_spin_sum(s) / n_sites
        if samples.shape[0] > 0 and (t + 1) % thin == 0:
            samples[(t + 1) // thin - 1] = s


@dataclass(frozen=True)
class IsingSamples:
    """The output of a chain segment: ``spins`` (N, L, L) int8 taken every ``thin`` sweeps, and the energy and
    signed magnetisation per site after *every* sweep (N·thin,), float64 — the unthinned series for τ_int.
    Sample k is the state after sweep (k + 1)·thin, i.e. ``energy_per_site[(k + 1)·thin − 1]``."""

    spins: np.ndarray
    energy_per_site: np.ndarray
    magnetisation_per_site: np.ndarray
    thin: int

    @property
    def abs_magnetisation_per_site(self) -> np.ndarray:
        return np.abs(self.magnetisation_per_site)


class IsingChain:
    """One Markov chain of the L×L Ising model at ``temperature`` with its own random stream ``rng``, cold start.

    Wolff: ``clusters_per_sweep`` (r ≥ 1) fixes the sweep; None calibrates it in the first ``thermalise`` call, and
    measuring (``sweep``, ``sample``) before it is an error. ``clusters`` / ``spins_flipped`` count the measured
    Wolff sweeps' work (``spins_flipped / sweeps_measured`` ≈ L²).
    """

    def __init__(self, algorithm: str, L: int, temperature: float, rng: np.random.Generator,
                 clusters_per_sweep: float | None = None) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
        if int(L) < MIN_L:
            raise ValueError(f"L must be >= {MIN_L}, got {L}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be finite and > 0, got {temperature}")
        if clusters_per_sweep is not None and not (algorithm == "wolff" and clusters_per_sweep >= 1):
            raise ValueError(f"clusters_per_sweep is a Wolff chain's r >= 1, got {clusters_per_sweep} for {algorithm}")
        self.algorithm, self.L, self.temperature, self.rng = algorithm, int(L), float(temperature), rng
        self.spins = np.ones((self.L, self.L), dtype=np.int8)
        self.clusters_per_sweep = None if clusters_per_sweep is None else float(clusters_per_sweep)
        self._stack = np.empty(self.L * self.L, dtype=np.int64)
        self._counts = np.zeros(2, dtype=np.int64)  # measured Wolff sweeps: clusters, spins flipped
        self.sweeps_done = 0  # fixed-schedule sweeps (thermalisation after calibration included)
        self.sweeps_measured = 0

    @property
    def clusters(self) -> int:
        return int(self._counts[0])

    @property
    def spins_flipped(self) -> int:
        return int(self._counts[1])

    def _advance(self, n_sweeps: int, thin: int, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wolff = self.algorithm == "wolff"
        if wolff and self.clusters_per_sweep is None:
            raise RuntimeError("a Wolff chain calibrates its sweep in thermalise() before it can run sweeps")
        energy = np.empty(n_sweeps)
        magnetisation = np.empty(n_sweeps)
        _run_sweeps(self.spins, wolff, 1.0 / self.temperature, self.rng, n_sweeps, thin,
                    self.clusters_per_sweep or 1.0, self.sweeps_done, self._stack, energy, magnetisation, samples,
                    self._counts)
        self.sweeps_done += n_sweeps
        return energy, magnetisation

    def thermalise(self, n_sweeps: int) -> None:
        """Run ``n_sweeps`` sweeps, measuring nothing; an uncalibrated Wolff chain calibrates r here (at least
        ``MIN_CALIBRATION_SWEEPS``, module docstring)."""
        if self.algorithm == "wolff" and self.clusters_per_sweep is None:
            counts = np.zeros(2, dtype=np.int64)
            _wolff_calibrate(self.spins, 1.0 / self.temperature, self.rng, max(int(n_sweeps), MIN_CALIBRATION_SWEEPS),
                             self._stack, counts)
            self.clusters_per_sweep = max(1.0, self.L * self.L * counts[0] / counts[1])
            return
        self._advance(int(n_sweeps), 1, np.empty((0, self.L, self.L), dtype=np.int8))
        self._counts[:] = 0

    def sweep(self, n_sweeps: int) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``n_sweeps`` measured sweeps; returns (energy, signed magnetisation) per site after each."""
        out = self._advance(int(n_sweeps), 1, np.empty((0, self.L, self.L), dtype=np.int8))
        self.sweeps_measured += int(n_sweeps)
        return out

    def sample(self, n_samples: int, thin: int) -> IsingSamples:
        """``n_samples`` configurations, one after every ``thin`` sweeps, with the unthinned e and m series."""
        if n_samples < 0 or thin < 1:
            raise ValueError(f"need n_samples >= 0 and thin >= 1, got {n_samples}, {thin}")
        spins = np.empty((n_samples, self.L, self.L), dtype=np.int8)
        energy, magnetisation = self._advance(n_samples * thin, thin, spins)
        self.sweeps_measured += n_samples * thin
        return IsingSamples(spins, energy, magnetisation, int(thin))


def run_chain(algorithm: str, L: int, temperature: float, n_samples: int, thin: int, thermalise: int,
              rng: np.random.Generator, clusters_per_sweep: float | None = None) -> IsingSamples:
    """A cold start, ``thermalise`` sweeps discarded (Wolff: calibrating the sweep unless ``clusters_per_sweep`` is
    given), then ``n_samples`` samples ``thin`` sweeps apart."""
    chain = IsingChain(algorithm, L, temperature, rng, clusters_per_sweep)
    chain.thermalise(thermalise)
    return chain.sample(n_samples, thin)


@dataclass(frozen=True)
class PilotResult:
    """τ_int (in sweeps) of the energy and of |m| from a pilot chain, its measured length in sweeps and, for Wolff,
    the calibrated clusters per sweep r (None for Metropolis)."""

    tau_energy: TauInt
    tau_abs_magnetisation: TauInt
    sweeps: int
    clusters_per_sweep: float | None

    @property
    def tau_max(self) -> float:
        return max(self.tau_energy.tau, self.tau_abs_magnetisation.tau)

    @property
    def reliable(self) -> bool:
        return self.tau_energy.reliable and self.tau_abs_magnetisation.reliable


def pilot_run(algorithm: str, L: int, temperature: float, rng: np.random.Generator, thermalise: int = 1000,
              min_sweeps: int = 4096, max_sweeps: int = 1 << 20) -> PilotResult:
    """Measure τ_int of e and |m| (in sweeps) on a chain of its own (and calibrate the Wolff sweep).

    After ``thermalise`` sweeps, measure a segment of ``min_sweeps`` sweeps; while the two estimates are not both
    reliable (a window found and N ≥ 1000 τ_int, ``hpcgen.physics.autocorrelation.RELIABLE_LENGTH``), discard it
    and measure a segment twice as long, up to ``max_sweeps`` (then ``reliable`` is False). The discarded segments
    serve as further thermalisation, so a slow chain, which needs a long pilot, also relaxes for longer.
    """
    if min_sweeps < 2 or max_sweeps < min_sweeps:
        raise ValueError(f"need 2 <= min_sweeps <= max_sweeps, got {min_sweeps}, {max_sweeps}")
    chain = IsingChain(algorithm, L, temperature, rng)
    chain.thermalise(thermalise)
    n = int(min_sweeps)
    while True:
        energy, magnetisation = chain.sweep(n)
        result = PilotResult(integrated_autocorrelation_time(energy),
                             integrated_autocorrelation_time(np.abs(magnetisation)), n, chain.clusters_per_sweep)
        if result.reliable or n >= max_sweeps:
            return result
        n = min(2 * n, int(max_sweeps))
