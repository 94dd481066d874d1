"""Rank-sharded reading for data-parallel training.

Each epoch, one global permutation of the N samples is drawn from ``stream(seed, epoch)`` — identical on every
rank — and rank r takes positions r, r + W, r + 2W, … of it. Over one epoch the W ranks therefore cover every
sample exactly once, and the split changes from epoch to epoch.

When N is not divisible by W, the first ``N mod W`` ranks hold one sample more than the others (no padding, no
dropping). A lock-step trainer that needs the same number of batches on every rank uses
``steps_per_epoch(n, W, batch)`` (= ⌊⌊N/W⌋ / batch⌋) and so leaves at most W·batch samples unused *in that
epoch*; the reshuffle puts different samples in the unused tail each epoch, so none is lost over a run.
This fixes two bugs of the original 3DGAN Horovod code: every rank reading all the data, and a discarded shuffle.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from hpcgen.seeding import stream


def epoch_indices(n: int, rank: int, world_size: int, seed: int, epoch: int) -> np.ndarray:
    """Indices (in epoch order) that ``rank`` of ``world_size`` reads in ``epoch``; disjoint across ranks."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside [0, {world_size})")
    perm = stream(seed, epoch).permutation(n)
    return perm[rank::world_size]


def steps_per_epoch(n: int, world_size: int, batch_size: int) -> int:
    """Number of full batches every rank can take in lock step."""
    return (n // world_size) // batch_size


class ShardedReader:
    """Iterate one rank's batches: ``for images, cond in reader.epoch(e): ...``.

    ``images`` is an (N, ...) array or h5py dataset (``ECAL`` or ``kappa``), ``conditions`` an (N,) array (primary
    energy or σ8). Batches are numpy float32. Within a batch the samples are read in increasing file order (h5py
    needs sorted indices); the batch composition follows the shuffled epoch order. ``start_batch`` resumes an
    epoch part-way (checkpoint restart) with exactly the batches an uninterrupted run would have seen.
    """

    def __init__(self, images, conditions: np.ndarray, rank: int, world_size: int, batch_size: int, seed: int,
                 drop_uneven: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(conditions) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(conditions)} conditions")
        self.images, self.conditions = images, np.asarray(conditions, dtype=np.float32)
        self.n = int(images.shape[0])
        self.rank, self.world_size = rank, world_size
        self.batch_size, self.seed, self.drop_uneven = batch_size, seed, drop_uneven

    def __len__(self) -> int:
        """Batches per epoch on this rank (lock-step count when ``drop_uneven``)."""
        if self.drop_uneven:
            return steps_per_epoch(self.n, self.world_size, self.batch_size)
        mine = len(range(self.rank, self.n, self.world_size))
        return -(-mine // self.batch_size)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        idx = epoch_indices(self.n, self.rank, self.world_size, self.seed, epoch)
        for b in range(start_batch, len(self)):
            sel = np.sort(idx[b * self.batch_size:(b + 1) * self.batch_size])
            yield np.asarray(self.images[sel], dtype=np.float32), self.conditions[sel]
