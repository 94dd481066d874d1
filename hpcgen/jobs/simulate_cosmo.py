"""``hpcgen simulate cosmo``: weak-lensing convergence maps from a Monte Carlo, sharded over MPI ranks.

Rank r makes its share of the maps with the stream ``stream(seed, r)``, chunk after chunk, and writes them through
the same sharded writer and virtual merge as the calorimeter (``hpcgen.jobs.sharded_run``) in the
``hpcgen.cosmo/1`` schema. Same seed and rank count → identical file.

A PM file also records what its maps resolve (the optional ``pm_*`` attributes of ``hpcgen.data.cosmo_file``): the
particle shot noise measured with ``NOISE_MAPS`` maps of uniformly random particles through the same lens planes
(:func:`hpcgen.sim.cosmo_pm.shot_noise`, its own random stream, the same on every rank and shard) and the ℓ range of
the box and the particle/mesh resolution; ``hpcgen validate cosmo`` restricts its C_ℓ claims with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hpcgen.config import check_sample_run
from hpcgen.data.cosmo_file import cosmo_attrs, cosmo_specs
from hpcgen.data.sharded import ShardSlot
from hpcgen.dist.world import World
from hpcgen.errors import UserError
from hpcgen.jobs.sharded_run import placement, prepare_output, run_sharded
from hpcgen.seeding import stream
from hpcgen.sim.cosmo_spec import CosmoMapSpec

COSMO_GENERATORS = ("pm", "lognormal")
NOISE_MAPS = 16
NOISE_STREAM = 2**32 - 1  # stream(seed, NOISE_STREAM): never a rank's or shard's stream


@dataclass(frozen=True)
class SimulateCosmoConfig:
    generator: str
    n: int
    seed: int
    out: Path
    spec: CosmoMapSpec = field(default_factory=CosmoMapSpec)
    pm: object = None  # hpcgen.sim.cosmo_pm.PMConfig for --generator pm
    chunk: int = 0
    overwrite: bool = False
    progress: bool = True
    shard: ShardSlot | None = None  # write only this shard (a Slurm array task); merge later

    def __post_init__(self) -> None:
        if self.generator not in COSMO_GENERATORS:
            raise UserError(f"--generator: expected one of {', '.join(COSMO_GENERATORS)}, got {self.generator!r}")
        check_sample_run(self.n, self.seed, self.chunk, self.out, "maps")

    @property
    def chunk_size(self) -> int:
        if self.chunk:
            return self.chunk
        # PM: one chunk = the maps one N-body realisation yields, so no realisation is run for a single map
        return 16 if self.generator == "lognormal" else int(getattr(self.pm, "maps_per_realisation", 1))


def simulate_cosmo(cfg: SimulateCosmoConfig, world: World) -> Path:
    index, size = placement(world, cfg.shard)
    prepare_output(cfg.out, cfg.overwrite, world, cfg.shard)
    rng = stream(cfg.seed, index)
    spec = cfg.spec
    if cfg.generator == "lognormal":
        from hpcgen.sim.cosmo_lognormal import simulate_lognormal

        def make(count: int):
            return simulate_lognormal(count, spec, rng)
        extra = {}
    else:
        from hpcgen.data.cosmo_file import pm_limit_attrs
        from hpcgen.sim.cosmo_pm import RESOLUTION_CRITERION, resolution_ell, shot_noise, simulate_pm

        def make(count: int):
            return simulate_pm(count, spec, cfg.pm, rng)
        noise = shot_noise(spec, cfg.pm, stream(cfg.seed, NOISE_STREAM), n_maps=NOISE_MAPS)
        extra = {"pm_config": repr(cfg.pm),
                 **pm_limit_attrs(noise, resolution_ell(spec, cfg.pm), RESOLUTION_CRITERION)}
    attrs = cosmo_attrs(cfg.generator, spec.cosmology.to_dict(), spec.z_source, spec.field_deg, spec.pixels,
                        cfg.seed, world_size=size, **extra)

    def produce(start: int, count: int) -> dict:
        return {"kappa": make(count)}

    return run_sharded(cfg.out, cfg.n, world, cosmo_specs(spec.pixels, spec.pixels), attrs, produce,
                       cfg.chunk_size, cfg.progress, desc=cfg.generator, unit="map",
                       slot=cfg.shard)
