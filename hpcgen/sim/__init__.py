"""Monte Carlo baselines. Each simulator takes arrays, a geometry and a numpy Generator and returns arrays.

Simulators never open files and never touch MPI: the ``simulate`` job (hpcgen/jobs) does both.
"""

from __future__ import annotations

from typing import Callable

CALO_GENERATORS = ("cascade", "gflash")


GFLASH_TUNE_NAMES = ("literature", "cascade")


def calo_simulator(name: str, gflash_tune: str = "literature") -> Callable:
    """Return ``simulate(energies_gev, geometry, rng) -> CaloShowers`` for a generator name (lazy import).

    ``gflash_tune`` picks GFlash's parameter set (``hpcgen.sim.calo_gflash.gflash_params``).
    """
    if name == "cascade":
        from hpcgen.sim.calo_cascade import simulate_cascade

        return simulate_cascade
    if name == "gflash":
        import functools

        from hpcgen.sim.calo_gflash import gflash_params, simulate_gflash

        return functools.partial(simulate_gflash, params=gflash_params(gflash_tune))
    raise ValueError(f"unknown calorimeter generator {name!r}; allowed: {', '.join(CALO_GENERATORS)}")
