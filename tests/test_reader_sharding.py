"""Rank-sharded reading: disjoint, complete coverage per epoch, reshuffled per epoch, for 1, 2 and 3 ranks."""

from __future__ import annotations

import numpy as np
import pytest

from hpcgen.data.calo_file import open_calo
from hpcgen.data.reader import ShardedReader, epoch_indices, steps_per_epoch


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("n", [12, 13, 14])
def test_ranks_cover_every_sample_exactly_once_per_epoch(world_size, n):
    for epoch in range(3):
        parts = [epoch_indices(n, r, world_size, seed=5, epoch=epoch) for r in range(world_size)]
        allidx = np.concatenate(parts)
        assert sorted(allidx.tolist()) == list(range(n))  # every index once: disjoint and complete
        sizes = sorted(len(p) for p in parts)
        assert sizes[-1] - sizes[0] <= 1  # the first n mod W ranks get one more
        assert sum(len(p) == n // world_size + 1 for p in parts) == n % world_size


def test_epochs_are_reshuffled_and_reproducible_from_seed_and_epoch():
    a0 = epoch_indices(100, 0, 2, seed=1, epoch=0)
    assert not np.array_equal(a0, epoch_indices(100, 0, 2, seed=1, epoch=1))
    assert not np.array_equal(a0, epoch_indices(100, 0, 2, seed=2, epoch=0))
    np.testing.assert_array_equal(a0, epoch_indices(100, 0, 2, seed=1, epoch=0))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_reader_batches_read_the_rank_subset_in_lock_step(calo_file, world_size):
    with open_calo(calo_file) as cf:
        ref = cf.ecal[...]
        readers = [ShardedReader(cf.ecal, cf.energy_gev, r, world_size, batch_size=2, seed=9) for r in range(world_size)]
        assert len({len(rd) for rd in readers}) == 1 == 1 and len(readers[0]) == steps_per_epoch(12, world_size, 2)
        seen = []
        for rd in readers:
            for ecal, energy in rd.epoch(0):
                assert ecal.shape == (2, 25, 25, 25) and energy.shape == (2,)
                for row, e in zip(ecal, energy):
                    match = np.flatnonzero((ref == row).all(axis=(1, 2, 3)))
                    assert len(match) == 1 and cf.energy_gev[match[0]] == e
                    seen.append(int(match[0]))
        assert len(seen) == len(set(seen))  # no sample read twice in one epoch across ranks
        assert len(seen) == world_size * steps_per_epoch(12, world_size, 2) * 2


def test_resuming_an_epoch_part_way_yields_the_remaining_batches_exactly(calo_file):
    with open_calo(calo_file) as cf:
        rd = ShardedReader(cf.ecal, cf.energy_gev, 1, 2, batch_size=2, seed=4)
        full = list(rd.epoch(3))
        tail = list(rd.epoch(3, start_batch=1))
        assert len(full) == 3 and len(tail) == 2
        for (a, ea), (b, eb) in zip(full[1:], tail):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(ea, eb)
