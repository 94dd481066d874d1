"""``hpcgen simulate calo``: run a calorimeter Monte Carlo over MPI ranks into a sharded HDF5 data set.

Rank r simulates its share of the showers with the stream ``stream(seed, r)`` (energies first, then the showers,
chunk after chunk), so the same seed and rank count reproduce the same file. Sharding, failure handling and the
virtual merge are those of ``hpcgen.jobs.sharded_run``.
"""

from __future__ import annotations

from pathlib import Path

from hpcgen.config import SimulateCaloConfig
from hpcgen.data.calo_file import calo_attrs, calo_specs
from hpcgen.dist.world import World
from hpcgen.jobs.sharded_run import placement, prepare_output, run_sharded, split_counts
from hpcgen.seeding import stream
from hpcgen.sim import calo_simulator


def simulate_calo(cfg: SimulateCaloConfig, world: World) -> Path:
    """Generate ``cfg.n`` showers over ``world`` and return the merged file's path (on every rank)."""
    index, size = placement(world, cfg.shard)
    prepare_output(cfg.out, cfg.overwrite, world, cfg.shard)
    counts = split_counts(cfg.n, size)
    offset = sum(counts[:index])
    rng = stream(cfg.seed, index)
    energies = cfg.energy.sample(offset, counts[index], rng)
    tune = {"gflash_tune": cfg.gflash_tune or "literature"} if cfg.generator == "gflash" else {}
    simulate = calo_simulator(cfg.generator, **tune)
    attrs = calo_attrs(cfg.generator, cfg.geometry, cfg.seed, energy_spec=cfg.energy.text,
                       world_size=size, **tune)

    def produce(start: int, count: int) -> dict:
        e = energies[start:start + count]
        return {"ECAL": simulate(e, cfg.geometry, rng).ecal_gev, "energy": e}

    return run_sharded(cfg.out, cfg.n, world, calo_specs(cfg.geometry.shape), attrs, produce, cfg.chunk_size,
                       cfg.progress, desc=cfg.generator, unit="shower",
                       slot=cfg.shard)
