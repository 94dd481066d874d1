"""``hpcgen simulate calo``: run a calorimeter Monte Carlo over MPI ranks into a sharded HDF5 data set.

Rank r simulates showers ``offset_r .. offset_r + n_r − 1`` (n split as evenly as possible) with the stream
``stream(seed, r)`` and appends them to ``<name>.r<r>.h5.tmp``. All ranks advance in rounds of one chunk; after
each round one Allreduce carries (showers done, ranks failed), which drives the rank-0 progress bar and stops every
rank promptly when one fails — no hang, non-zero exit, no file under a final name. On success shards are renamed
and rank 0 writes ``<name>.h5`` with virtual datasets over them.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import numpy as np

from hpcgen.config import SimulateCaloConfig
from hpcgen.data.calo_file import calo_attrs, calo_specs
from hpcgen.data.sharded import ShardWriter, existing_shards, shard_path, tmp_path, write_virtual_merge
from hpcgen.dist.world import World
from hpcgen.errors import UserError
from hpcgen.seeding import stream
from hpcgen.sim import calo_simulator


class SimulationFailed(RuntimeError):
    """Some rank failed; every rank raises this after cleaning up its temporary shard."""


def split_counts(n: int, size: int) -> list[int]:
    return [n // size + (1 if r < n % size else 0) for r in range(size)]


def _prepare_output(cfg: SimulateCaloConfig, world: World) -> None:
    """Rank 0 checks (and with --overwrite clears) the destination; all ranks agree before any work."""
    problem = None
    if world.rank == 0:
        try:
            stale = existing_shards(cfg.out)
            if (cfg.out.exists() or stale) and not cfg.overwrite:
                what = cfg.out if cfg.out.exists() else stale[0]
                problem = f"--out: {what} already exists; pass --overwrite to replace it"
            elif cfg.overwrite:
                for p in [cfg.out, tmp_path(cfg.out), *stale]:
                    p.unlink(missing_ok=True)
        except OSError as exc:
            problem = f"--out: cannot prepare {cfg.out} ({exc.strerror}: {exc.filename})"
    problem = world.bcast(problem)
    if problem:
        raise UserError(problem)


def simulate_calo(cfg: SimulateCaloConfig, world: World) -> Path:
    """Generate ``cfg.n`` showers over ``world`` and return the merged file's path (on every rank)."""
    _prepare_output(cfg, world)
    counts = split_counts(cfg.n, world.size)
    offset = sum(counts[:world.rank])
    mine = counts[world.rank]
    rng = stream(cfg.seed, world.rank)
    energies = cfg.energy.sample(offset, mine, rng)
    tune = {"gflash_tune": cfg.gflash_tune or "literature"} if cfg.generator == "gflash" else {}
    simulate = calo_simulator(cfg.generator, **tune)
    attrs = calo_attrs(cfg.generator, cfg.geometry, cfg.seed, energy_spec=cfg.energy.text,
                       world_size=world.size, **tune)

    chunk = cfg.chunk_size
    rounds = -(-max(counts) // chunk)
    bar = None
    if world.rank == 0 and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.n, unit="shower", desc=f"{cfg.generator} x{world.size} ranks", file=sys.stderr,
                   mininterval=0.5, dynamic_ncols=True)
    failed_here, done_total, t0 = False, 0, time.perf_counter()
    writer = None
    try:
        writer = ShardWriter(cfg.out, world.rank, calo_specs(cfg.geometry.shape), attrs, expected_n=mine)
    except Exception:
        failed_here = True
        print(f"hpcgen: rank {world.rank}: cannot create its shard:\n{traceback.format_exc()}", file=sys.stderr,
              flush=True)
    try:
        for r in range(rounds):
            lo, hi = min(r * chunk, mine), min((r + 1) * chunk, mine)
            if hi > lo and not failed_here:
                try:
                    showers = simulate(energies[lo:hi], cfg.geometry, rng)
                    writer.append(ECAL=showers.ecal_gev, energy=energies[lo:hi])
                except Exception:  # reported here, then agreed on collectively below
                    failed_here = True
                    print(f"hpcgen: rank {world.rank}: simulation failed:\n{traceback.format_exc()}",
                          file=sys.stderr, flush=True)
            done, failed = world.allreduce_sum([0 if failed_here else hi - lo, float(failed_here)])
            done_total += int(done)
            if bar is not None:
                bar.update(int(done))
            if failed:
                raise SimulationFailed(f"{int(failed)} of {world.size} ranks failed; no output written")
        writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    world.barrier()
    if world.rank == 0:
        shards = [shard_path(cfg.out, r) for r in range(world.size)]
        write_virtual_merge(cfg.out, shards, calo_specs(cfg.geometry.shape), dict(attrs, wall_s=time.perf_counter() - t0))
    world.barrier()
    return cfg.out
