"""Produce N samples over MPI ranks into a sharded HDF5 data set — the engine behind ``simulate`` and ``generate``.

Rank r produces samples ``offset_r .. offset_r + n_r − 1`` (n split as evenly as possible) by calling
``produce(start, count)`` chunk by chunk and appends them to ``<name>.r<r>.h5.tmp``. All ranks advance in rounds
of one chunk; after each round one Allreduce carries (samples done, ranks failed), which drives the rank-0 progress
bar and stops every rank promptly when one fails — no hang, non-zero exit, no file under a final name. On success
shards are renamed and rank 0 writes ``<name>.h5`` with virtual datasets over them.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from hpcgen.data.sharded import (DatasetSpec, ShardSlot, ShardWriter, existing_shards, shard_path, tmp_path,
                                 write_virtual_merge)
from hpcgen.dist.world import World
from hpcgen.errors import UserError


class GenerationFailed(RuntimeError):
    """Some rank failed; every rank raises this after cleaning up its temporary shard."""


def split_counts(n: int, size: int) -> list[int]:
    return [n // size + (1 if r < n % size else 0) for r in range(size)]


def placement(world: World, slot: ShardSlot | None) -> tuple[int, int]:
    """(index, count) of this process's share: its MPI rank and size, or its shard slot (then alone in its world)."""
    if slot is None:
        return world.rank, world.size
    if world.size != 1:
        raise UserError(f"--shard: one process writes one shard, but {world.size} MPI ranks were started; "
                        "launch each shard as a single process (one Slurm array task each)")
    return slot.index, slot.count


def prepare_output(out: Path, overwrite: bool, world: World, slot: ShardSlot | None = None) -> None:
    """Rank 0 checks (and with overwrite clears) the destination; all ranks agree before any work.

    With a ``slot`` only that shard is checked or cleared (other array tasks write the others concurrently).
    """
    problem = None
    if slot is not None:
        mine = shard_path(out, slot.index)
        if mine.exists() and not overwrite:
            raise UserError(f"--out: {mine} already exists; pass --overwrite to replace it")
        mine.unlink(missing_ok=True)
        return
    if world.rank == 0:
        try:
            stale = existing_shards(out)
            if (out.exists() or stale) and not overwrite:
                what = out if out.exists() else stale[0]
                problem = f"--out: {what} already exists; pass --overwrite to replace it"
            elif overwrite:
                for p in [out, tmp_path(out), *stale]:
                    p.unlink(missing_ok=True)
        except OSError as exc:
            problem = f"--out: cannot prepare {out} ({exc.strerror}: {exc.filename})"
    problem = world.bcast(problem)
    if problem:
        raise UserError(problem)


def run_sharded(out: Path, n: int, world: World, specs: tuple[DatasetSpec, ...], attrs: dict,
                produce: Callable[[int, int], dict[str, np.ndarray]], chunk: int, progress: bool = True,
                desc: str = "samples", unit: str = "sample", slot: ShardSlot | None = None) -> Path:
    """Write ``n`` samples made by ``produce(rank_local_start, count) -> {dataset: array}`` over ``world``.

    ``desc`` names the work on rank 0's progress bar (the ranks or the shard are appended).

    ``prepare_output`` must have run first. Returns the merged file's path on every rank — or, with a ``slot``,
    the path of the one shard written (merge later with :func:`hpcgen.data.sharded.merge_shards`).
    """
    index, size = placement(world, slot)
    counts = split_counts(n, size)
    mine = counts[index]
    rounds = -(-max(counts) // chunk)
    bar = None
    if world.rank == 0 and progress:
        from tqdm import tqdm

        where = f"x{size} ranks" if slot is None else f"shard {index}/{size}"
        bar = tqdm(total=n if slot is None else mine, unit=unit, desc=f"{desc} {where}", file=sys.stderr,
                   mininterval=0.5, dynamic_ncols=True)
    failed_here, t0 = False, time.perf_counter()
    writer = None
    try:
        writer = ShardWriter(out, index, specs, attrs, expected_n=mine)
    except Exception:
        failed_here = True
        print(f"hpcgen: rank {world.rank}: cannot create its shard:\n{traceback.format_exc()}", file=sys.stderr,
              flush=True)
    try:
        for r in range(rounds):
            lo, hi = min(r * chunk, mine), min((r + 1) * chunk, mine)
            if hi > lo and not failed_here:
                try:
                    writer.append(**produce(lo, hi - lo))
                except Exception:  # reported here, then agreed on collectively below
                    failed_here = True
                    print(f"hpcgen: rank {world.rank}: failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            done, failed = world.allreduce_sum([0 if failed_here else hi - lo, float(failed_here)])
            if bar is not None:
                bar.update(int(done))
            if failed:
                raise GenerationFailed(f"{int(failed)} of {world.size} ranks failed; no output written")
        written = writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    if slot is not None:
        return written
    world.barrier()
    if world.rank == 0:
        shards = [shard_path(out, r) for r in range(world.size)]
        write_virtual_merge(out, shards, specs, dict(attrs, wall_s=time.perf_counter() - t0))
    world.barrier()
    return out
