"""Monte Carlo baselines. Each simulator takes arrays, a geometry and a numpy Generator and returns arrays.

Simulators never open files and never touch MPI: the ``simulate`` job (hpcgen/jobs) does both.
"""

from __future__ import annotations

from typing import Callable

CALO_GENERATORS = ("cascade", "gflash")


def calo_simulator(name: str) -> Callable:
    """Return ``simulate(energies_gev, geometry, rng) -> CaloShowers`` for a generator name (lazy import)."""
    if name == "cascade":
        from hpcgen.sim.calo_cascade import simulate_cascade

        return simulate_cascade
    if name == "gflash":
        from hpcgen.sim.calo_gflash import simulate_gflash

        return simulate_gflash
    raise ValueError(f"unknown calorimeter generator {name!r}; allowed: {', '.join(CALO_GENERATORS)}")
